import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { Http, Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import { takeSpans } from "./support/Spans.ts"

class Unavailable extends Schema.TaggedError<Unavailable>()("Unavailable", {}) {}

const Routes = Layer.mergeAll(
  HttpRouter.add("GET", "/ping", HttpServerResponse.json({ ok: true })),
  HttpRouter.add(
    "GET",
    "/tx/:id",
    Effect.map(HttpRouter.params, (params) => HttpServerResponse.text(params["id"] ?? ""))
  ),
  HttpRouter.add("GET", "/teapot", HttpServerResponse.text("no", { status: 418 })),
  HttpRouter.add("GET", "/busy", HttpServerResponse.text("busy", { status: 503 })),
  HttpRouter.add("GET", "/down", Effect.fail(new Unavailable()))
)

const Server = Http.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provideMerge(ObservabilityTest)
)

const send = (path: string, init?: RequestInit) =>
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    const base = HttpServer.formatAddress(address)
    return yield* Effect.promise(async () => {
      const response = await fetch(`${base}${path}`, init)
      await response.arrayBuffer()
      return response.status
    })
  })

const only = (spans: ReadonlyArray<ReadableSpan>) => {
  assert.strictEqual(spans.length, 1, `expected one span, got ${spans.map((span) => span.name).join(", ")}`)
  return spans[0]!
}

layer(Server, { excludeTestServices: true })("Http.serve", (it) => {
  it.effect("one SERVER span per request, named by method and route template, with the semantic attributes", () =>
    Effect.gen(function*() {
      yield* takeSpans
      assert.strictEqual(yield* send("/tx/abc?x=1", { headers: { "user-agent": "spec" } }), 200)
      const span = only(yield* takeSpans)
      assert.strictEqual(span.name, "GET /tx/:id")
      assert.strictEqual(span.kind, SpanKind.SERVER)
      assert.deepInclude(span.attributes, {
        "http.request.method": "GET",
        "http.route": "/tx/:id",
        "http.response.status_code": 200,
        "url.path": "/tx/abc",
        "user_agent.original": "spec"
      })
      assert.strictEqual(span.status.code, SpanStatusCode.OK)
      assert.isUndefined(span.parentSpanContext)
    }))

  it.effect("counts requests by method, route template and status; raw paths never become labels", () =>
    Effect.gen(function*() {
      const before = yield* Testing.metricValue("http_server_request_duration_seconds_count", { route: "/tx/:id" })
      for (const id of ["a", "b", "c"]) yield* send(`/tx/${id}`)
      assert.strictEqual(
        (yield* Testing.metricValue("http_server_request_duration_seconds_count", {
          method: "GET",
          route: "/tx/:id",
          status_code: "200"
        })) - before,
        3
      )
      const { registry } = yield* Metrics.Metrics
      const text = yield* Effect.promise(() => registry.getSingleMetricAsString("http_server_request_duration_seconds"))
      assert.notInclude(text, "/tx/a")
    }))

  it.effect("unknown paths answer 404 and share one route label; their spans are named by method alone", () =>
    Effect.gen(function*() {
      yield* takeSpans
      for (let i = 0; i < 200; i++) assert.strictEqual(yield* send(`/nowhere/${i}`), 404)
      const spans = yield* takeSpans
      assert.deepStrictEqual([...new Set(spans.map((span) => span.name))], ["GET"])
      const metrics = yield* Metrics.Metrics
      const { values } = yield* Effect.promise(() => Http.durationHistogram(metrics).get())
      const routes = new Set(values.map((sample) => sample.labels.route))
      assert.isTrue(routes.has(Http.unmatchedRoute))
      assert.isFalse([...routes].some((route) => String(route).startsWith("/nowhere")))
      assert.strictEqual(
        yield* Testing.metricValue("http_server_request_duration_seconds_count", { route: "unmatched", status_code: 404 }),
        200
      )
    }))

  it.effect("continues the caller's W3C trace, keeping its tracestate", () =>
    Effect.gen(function*() {
      yield* takeSpans
      yield* send("/ping", {
        headers: {
          traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
          tracestate: "vendor=abc"
        }
      })
      const span = only(yield* takeSpans)
      assert.strictEqual(span.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c")
      assert.strictEqual(span.parentSpanContext?.spanId, "b7ad6b7169203331")
      assert.strictEqual(span.spanContext().traceState?.serialize(), "vendor=abc")
    }))

  it.effect.each([
    "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
    "00-00000000000000000000000000000000-b7ad6b7169203331-01",
    "zz-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "0".repeat(4096)
  ])("a malformed traceparent starts a new trace and is not an error: %s", (traceparent: string) =>
    Effect.gen(function*() {
      yield* takeSpans
      assert.strictEqual(yield* send("/ping", { headers: { traceparent } }), 200)
      const span = only(yield* takeSpans)
      assert.isUndefined(span.parentSpanContext)
      assert.notStrictEqual(span.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c")
      assert.strictEqual(span.status.code, SpanStatusCode.OK)
    }))

  it.effect("4xx answers leave the span unset; 5xx answers and failures mark it ERROR with the error's tag", () =>
    Effect.gen(function*() {
      yield* takeSpans
      assert.strictEqual(yield* send("/teapot"), 418)
      assert.strictEqual(only(yield* takeSpans).status.code, SpanStatusCode.OK)
      assert.strictEqual(yield* send("/busy"), 503)
      assert.strictEqual(only(yield* takeSpans).status.code, SpanStatusCode.ERROR)
      assert.strictEqual(yield* send("/down"), 500)
      const failed = only(yield* takeSpans)
      assert.strictEqual(failed.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(failed.attributes["error.type"], "Unavailable")
      assert.strictEqual(
        yield* Testing.metricValue("http_server_request_duration_seconds_count", { route: "/down", status_code: 500 }),
        1
      )
    }))

  it.effect("a non-standard method is labelled _OTHER", () =>
    Effect.gen(function*() {
      yield* send("/ping", { method: "PROPFIND" })
      assert.strictEqual(
        yield* Testing.metricValue("http_server_request_duration_seconds_count", { method: "_OTHER" }),
        1
      )
    }))
})

/** The same app over a plain `Metrics.layerTest`: no tracing, no other instrumentation. */
const Plain = Http.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provideMerge(Metrics.layerTest)
)

layer(Plain, { excludeTestServices: true })("Http.serve on a plain Metrics.layerTest", (it) => {
  it.effect("registers http_server_request_duration_seconds and no family of the DAG, gRPC or MongoDB", () =>
    Effect.gen(function*() {
      const { registry } = yield* Metrics.Metrics
      const registered = () => registry.getMetricsAsArray().map(({ name }) => name)
      assert.deepStrictEqual(registered(), ["http_server_request_duration_seconds"])
      assert.strictEqual(yield* send("/tx/abc"), 200)
      assert.strictEqual(yield* send("/down"), 500)
      assert.deepStrictEqual(registered(), ["http_server_request_duration_seconds"])
      const text = yield* Metrics.Metrics.use((metrics) => metrics.render("prometheus"))
      assert.match(text, /^# TYPE http_server_request_duration_seconds histogram$/m)
      assert.notMatch(
        text,
        /^(?:# (?:HELP|TYPE) )?(?:poh_|grpc_|mongodb_|tx_committed_total|presence_calls_total|storage_latency_seconds)/m
      )
      assert.strictEqual(yield* Testing.metricValue("http_server_request_duration_seconds_count"), 2)
    }))
})
