/**
 * The trace across a service: a request arrives at `Http.serve` with W3C
 * headers in every shape the standard allows (and some it does not), its
 * handler calls another server through the instrumented `HttpClient`, and
 * that server must get the continued trace: the client span's id and flags in
 * `traceparent`, the caller's `tracestate` as W3C Trace Context parses it,
 * and nothing else (no `b3`, nothing invalid).
 */
import { createServer } from "node:http"
import { NodeHttpClient, NodeHttpServer } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { propagation, SpanKind } from "@opentelemetry/api"
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core"
import { B3Propagator } from "@opentelemetry/propagator-b3"
import { AlwaysOnSampler, ParentBasedSampler, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { HttpClient, HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as TracedHttpClient from "../src/HttpClient.ts"
import { Http, Metrics, ObservabilityTest, Testing, Tracing } from "../src/index.ts"
import * as Recording from "./support/RecordingServer.ts"

/** `GET /forward` calls the recording server's `/downstream` and answers with its status. */
const Routes = Layer.unwrap(Effect.gen(function*() {
  const client = yield* HttpClient.HttpClient
  const downstream = yield* Recording.RecordingServer
  return HttpRouter.add(
    "GET",
    "/forward",
    client.get(`${downstream.url}/downstream`).pipe(
      Effect.flatMap((response) => Effect.as(response.text, HttpServerResponse.text("forwarded"))),
      Effect.orDie
    )
  )
}))

const App = Http.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provide(TracedHttpClient.layer().pipe(Layer.provide(NodeHttpClient.layerUndici))),
  Layer.provideMerge(Recording.layer)
)

const Env = App.pipe(Layer.provideMerge(ObservabilityTest))

/** The same app under the services' sampler, `parentbased_always_on`, spans kept nowhere. */
const ParentBased = App.pipe(
  Layer.provideMerge(Metrics.layerTest),
  Layer.provide(Tracing.layerProvider(
    { onStart: () => undefined, onEnd: () => undefined, forceFlush: async () => {}, shutdown: async () => {} },
    { resource: { serviceName: "test" }, sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), shutdownTimeout: 0 }
  ))
)

const traceId = "0af7651916cd43dd8448eb211c80319c"
const traceparent = `00-${traceId}-b7ad6b7169203331-01`

/**
 * Sends `rawHeaders` to `/forward`; returns the headers the downstream server
 * got and the finished SERVER and CLIENT spans.
 */
const forward = (rawHeaders: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    const downstream = yield* Recording.RecordingServer
    const spans = yield* Testing.TestSpans
    yield* spans.clear
    yield* downstream.take
    assert.strictEqual(yield* Recording.sendRaw(`${HttpServer.formatAddress(address)}/forward`, rawHeaders), 200)
    const received = yield* downstream.take
    assert.strictEqual(received.length, 1)
    const finished = yield* spans.finished
    const one = (kind: SpanKind): ReadableSpan => {
      const found = finished.filter((span) => span.kind === kind)
      assert.strictEqual(found.length, 1, `one span of kind ${kind}: ${finished.map((span) => span.name)}`)
      return found[0]!
    }
    return { received: received[0]!, server: one(SpanKind.SERVER), client: one(SpanKind.CLIENT) }
  })

/** Names of the headers `received` came with, lower-cased, in order. */
const headerNames = (rawHeaders: ReadonlyArray<string>) =>
  rawHeaders.filter((_, i) => i % 2 === 0).map((name) => name.toLowerCase())

const members = (n: number) => Array.from({ length: n }, (_, i) => `k${i}=v${i}`)
const key256 = `a${"b".repeat(255)}`
const tenant = `${"t".repeat(241)}@${"s".repeat(14)}`

const cases: ReadonlyArray<{ readonly name: string; readonly headers: ReadonlyArray<string>; readonly expected: string }> = [
  { name: "several members", headers: ["traceparent", traceparent, "tracestate", "foo=1,bar=2,baz=3"], expected: "foo=1,bar=2,baz=3" },
  { name: "header names in any case", headers: ["TraceParent", traceparent, "TRACESTATE", "foo=1,bar=2"], expected: "foo=1,bar=2" },
  {
    name: "several tracestate headers, combined in order",
    headers: ["traceparent", traceparent, "tracestate", "foo=1", "Tracestate", "bar=2,baz=3"],
    expected: "foo=1,bar=2,baz=3"
  },
  {
    name: "optional whitespace around members, empty members",
    headers: ["traceparent", traceparent, "tracestate", " foo=1 ,\tbar=2 ,, baz=3\t"],
    expected: "foo=1,bar=2,baz=3"
  },
  {
    name: "33 members: the 32 left-most kept",
    headers: ["traceparent", traceparent, "tracestate", members(33).join(",")],
    expected: members(32).join(",")
  },
  {
    name: "the longest valid simple key (256) and tenant key (241@14) kept, longer ones dropped",
    headers: ["traceparent", traceparent, "tracestate", `${key256}=1,${key256}c=2,foo=3`],
    expected: `${key256}=1,foo=3`
  },
  {
    name: "multi-tenant keys at their limits",
    headers: ["traceparent", traceparent, "tracestate", `${tenant}=1,t${tenant}=2,a@${"s".repeat(15)}=3`],
    expected: `${tenant}=1`
  },
  {
    name: "invalid members dropped (upper case key, no '=', ',' in a value is a new member)",
    headers: ["traceparent", traceparent, "tracestate", "Foo=1,bar,baz=2,qux=a=b"],
    expected: "baz=2"
  }
]

layer(Env, { excludeTestServices: true })("HttpClient inside Http.serve", (it) => {
  it.effect.each(cases)("tracestate continued to the next server: $name", ({ headers, expected }) =>
    Effect.gen(function*() {
      const { received, server, client } = yield* forward(headers)
      assert.strictEqual(server.spanContext().traceId, traceId)
      assert.strictEqual(client.parentSpanContext?.spanId, server.spanContext().spanId, "the call's parent is the server span")
      assert.strictEqual(received.headers.traceparent, `00-${traceId}-${client.spanContext().spanId}-01`)
      assert.strictEqual(received.headers.tracestate, expected)
      assert.deepStrictEqual(headerNames(received.rawHeaders).filter((name) => name.startsWith("trace")), [
        "traceparent",
        "tracestate"
      ])
      assert.isUndefined(received.headers.b3)
    }))

  it.effect.each([
    `00-${traceId}-b7ad6b7169203331`,
    `00-${"0".repeat(32)}-b7ad6b7169203331-01`,
    `00-${traceId}-${"0".repeat(16)}-01`,
    `zz-${traceId}-b7ad6b7169203331-01`,
    `00-${traceId.toUpperCase()}-b7ad6b7169203331-01`,
    `ff-${traceId}-b7ad6b7169203331-01`
  ])("an invalid traceparent starts a new trace; nothing of it, nor its tracestate, is forwarded: %s", (invalid) =>
    Effect.gen(function*() {
      const { received, server, client } = yield* forward(["traceparent", invalid, "tracestate", "foo=1"])
      assert.isUndefined(server.parentSpanContext)
      const newTrace = server.spanContext().traceId
      assert.notStrictEqual(newTrace.toLowerCase(), traceId)
      assert.strictEqual(client.parentSpanContext?.spanId, server.spanContext().spanId)
      assert.strictEqual(received.headers.traceparent, `00-${newTrace}-${client.spanContext().spanId}-01`)
      assert.isUndefined(received.headers.tracestate)
      assert.isUndefined(received.headers.b3)
      assert.notInclude(received.rawHeaders.join("\n").toLowerCase(), traceId)
    }))

  it.effect("without trace headers the server starts a trace and the call continues it, with no tracestate", () =>
    Effect.gen(function*() {
      const { received, server, client } = yield* forward([])
      assert.strictEqual(client.spanContext().traceId, server.spanContext().traceId)
      assert.strictEqual(received.headers.traceparent, `00-${server.spanContext().traceId}-${client.spanContext().spanId}-01`)
      assert.isUndefined(received.headers.tracestate)
      assert.isUndefined(received.headers.b3)
    }))

  it.effect("a B3 propagator registered globally adds b3: the headers come from the global propagator", () =>
    Effect.gen(function*() {
      const w3c = new W3CTraceContextPropagator()
      const withB3 = new CompositePropagator({ propagators: [w3c, new B3Propagator()] })
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          propagation.disable()
          propagation.setGlobalPropagator(withB3)
        }),
        () =>
          Effect.sync(() => {
            propagation.disable()
            propagation.setGlobalPropagator(new CompositePropagator({ propagators: [w3c, new W3CBaggagePropagator()] }))
          })
      )
      const { received, client } = yield* forward(["traceparent", traceparent, "tracestate", "foo=1"])
      assert.strictEqual(received.headers.b3, `${traceId}-${client.spanContext().spanId}-1`)
      assert.strictEqual(received.headers.tracestate, "foo=1")
    }).pipe(Effect.scoped))
})

layer(ParentBased, { excludeTestServices: true })("HttpClient inside Http.serve, parent-based sampling", (it) => {
  it.effect("an unsampled caller's call is forwarded unsampled (the client span's own flags), tracestate kept", () =>
    Effect.gen(function*() {
      const { address } = yield* HttpServer.HttpServer
      const downstream = yield* Recording.RecordingServer
      yield* downstream.take
      const incoming = `00-${traceId}-b7ad6b7169203331-00`
      yield* Recording.sendRaw(`${HttpServer.formatAddress(address)}/forward`, ["traceparent", incoming, "tracestate", "foo=1"])
      const [received] = yield* downstream.take
      assert.match(String(received?.headers.traceparent), new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`))
      assert.notInclude(String(received?.headers.traceparent), "b7ad6b7169203331")
      assert.strictEqual(received?.headers.tracestate, "foo=1")
    }))
})
