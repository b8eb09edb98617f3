/**
 * `Http.serve`'s W3C `traceresponse` header (Trace Context Level 2): every
 * answer names the server span the tracer exported (its trace id, its span id,
 * the sampled flag as the sampler decided), whatever the status and whatever
 * `traceparent` the caller sent; no header when no tracer records the span.
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, it, layer } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { Http, Metrics, ObservabilityTest, Tracing } from "../src/index.ts"
import { takeSpans } from "./support/Spans.ts"

class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {}) {}

const Routes = Layer.mergeAll(
  HttpRouter.add("GET", "/ping", HttpServerResponse.text("pong")),
  HttpRouter.add("GET", "/conflict", Effect.fail(HttpServerResponse.text("taken", { status: 409 }))),
  HttpRouter.add("GET", "/busy", HttpServerResponse.text("busy", { status: 503 })),
  HttpRouter.add("GET", "/down", Effect.fail(new Unavailable()))
)

/** `Http.serve(Routes)` on a free loopback port over `tracing`. */
const serverOver = <A, E>(tracing: Layer.Layer<A | Metrics.Metrics, E>) =>
  Http.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
    Layer.provideMerge(tracing)
  )

/** GET `path`: the status and the `traceresponse` header. */
const send = (path: string, headers?: Record<string, string>) =>
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    return yield* Effect.promise(async () => {
      const response = await fetch(`${HttpServer.formatAddress(address)}${path}`, { headers: headers ?? {} })
      await response.arrayBuffer()
      return { status: response.status, traceresponse: response.headers.get("traceresponse") }
    })
  })

/** What `traceresponse` must say of `span`. */
const expected = (span: ReadableSpan) => {
  const { spanId, traceFlags, traceId } = span.spanContext()
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, "0")}`
}

const format = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/

const callerTrace = "0af7651916cd43dd8448eb211c80319c"
const callerSpan = "b7ad6b7169203331"

/** The one server span finished since the last call. */
const serverSpan = Effect.map(takeSpans, (spans) => {
  assert.strictEqual(spans.length, 1, `expected one span, got ${spans.map((span) => span.name).join(", ")}`)
  return spans[0]!
})

layer(serverOver(ObservabilityTest), { excludeTestServices: true })("traceresponse", (traced) => {
  traced.effect.each([
    ["/ping", 200],
    ["/conflict", 409],
    ["/busy", 503],
    ["/down", 500],
    ["/nowhere", 404]
  ] as const)("names the exported server span of a %s answer (%i)", ([path, status]) =>
    Effect.gen(function*() {
      yield* takeSpans
      const answer = yield* send(path)
      assert.strictEqual(answer.status, status)
      assert.match(answer.traceresponse ?? "", format)
      assert.strictEqual(answer.traceresponse, expected(yield* serverSpan))
    }))

  traced.effect("a failure's 5xx answer names its span, which still records the failure once", () =>
    Effect.gen(function*() {
      yield* takeSpans
      const answer = yield* send("/down")
      const span = yield* serverSpan
      assert.deepStrictEqual(answer, { status: 500, traceresponse: expected(span) })
      assert.strictEqual(span.attributes["error.type"], "Unavailable")
      assert.deepStrictEqual(
        span.events.map((event) => [event.name, event.attributes?.["exception.type"]]),
        [["exception", "Unavailable"]]
      )
    }))

  traced.effect("continues the caller's trace id, with the server span's own span id", () =>
    Effect.gen(function*() {
      yield* takeSpans
      const answer = yield* send("/ping", { traceparent: `00-${callerTrace}-${callerSpan}-01` })
      const span = yield* serverSpan
      assert.strictEqual(answer.traceresponse, expected(span))
      assert.strictEqual(answer.traceresponse?.slice(3, 35), callerTrace)
      assert.notStrictEqual(answer.traceresponse?.slice(36, 52), callerSpan)
      assert.strictEqual(span.parentSpanContext?.spanId, callerSpan)
    }))

  traced.effect("a malformed traceparent: the header names the new trace", () =>
    Effect.gen(function*() {
      yield* takeSpans
      const answer = yield* send("/ping", { traceparent: `00-${callerTrace}-${callerSpan}` })
      const span = yield* serverSpan
      assert.strictEqual(answer.traceresponse, expected(span))
      assert.notStrictEqual(answer.traceresponse?.slice(3, 35), callerTrace)
      assert.isUndefined(span.parentSpanContext)
    }))
})

/** Tracing with the default `parentbased_always_on` sampler into `exporter`. */
const parentBased = (exporter: InMemorySpanExporter) =>
  Tracing.layerProvider(new SimpleSpanProcessor(exporter), {
    resource: { serviceName: "test" },
    sampler: Tracing.makeSampler({ name: "parentbased_always_on", ratio: 1 }),
    shutdownTimeout: 0
  }).pipe(Layer.merge(Metrics.layerTest))

it.effect("the sampled flag is the sampler's decision: a caller's unsampled trace answers 00 and exports nothing", () =>
  Effect.gen(function*() {
    const exporter = new InMemorySpanExporter()
    yield* Effect.gen(function*() {
      const unsampled = yield* send("/ping", { traceparent: `00-${callerTrace}-${callerSpan}-00` })
      assert.match(unsampled.traceresponse ?? "", new RegExp(`^00-${callerTrace}-[0-9a-f]{16}-00$`))
      assert.deepStrictEqual(exporter.getFinishedSpans(), [])
      const sampled = yield* send("/ping", { traceparent: `00-${callerTrace}-${callerSpan}-01` })
      const [span] = exporter.getFinishedSpans()
      assert.isDefined(span)
      assert.strictEqual(sampled.traceresponse, expected(span!))
      assert.match(sampled.traceresponse ?? "", /-01$/)
    }).pipe(Effect.provide(serverOver(parentBased(exporter))))
  }))

/** Tracing turned off by `OTEL_SDK_DISABLED=true`, as a program's environment would. */
const disabled = Tracing.layerConfig("test").pipe(
  Layer.provideMerge(Metrics.layerTest),
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ OTEL_SDK_DISABLED: "true" })))
)

/** Whether an answer carries `traceresponse`, under each tracing set-up. */
const setups: ReadonlyArray<readonly [Layer.Layer<Metrics.Metrics, unknown>, boolean]> = [
  [ObservabilityTest, true], // the SDK records spans
  [disabled, false],
  [Metrics.layerTest, false] // Effect's default tracer keeps spans nowhere
]

it.effect("a header only where a tracer records the span: not with OTEL_SDK_DISABLED, not with Effect's default", () =>
  Effect.forEach(setups, ([tracing, present]) =>
    Effect.gen(function*() {
      // Both ways an answer comes out: a response, and a failure turned into one.
      const answers = yield* Effect.provide(Effect.all([send("/ping"), send("/down")]), serverOver(tracing))
      assert.deepStrictEqual(answers.map(({ status }) => status), [200, 500])
      for (const { traceresponse } of answers) {
        if (present) assert.match(traceresponse ?? "", format)
        else assert.isNull(traceresponse)
      }
    })))
