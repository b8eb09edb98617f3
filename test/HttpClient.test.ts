import { NodeHttpClient } from "@effect/platform-node"
import { assert, layer } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { HttpClient, HttpClientRequest } from "effect/http"
import * as TracedHttpClient from "../src/HttpClient.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import { freePort } from "../servers/Servers.ts"
import * as Recording from "./support/RecordingServer.ts"
import { takeSpans } from "./support/Spans.ts"

const Client = TracedHttpClient.layer({
  maxServerAddresses: 2,
  urlTemplate: (request) => request.url.includes("/items/") ? "/items/{id}" : undefined
}).pipe(Layer.provide(NodeHttpClient.layerUndici))

const Env = Layer.mergeAll(Client, Recording.layer).pipe(Layer.provideMerge(ObservabilityTest))

const clientSpan = (spans: ReadonlyArray<ReadableSpan>) => {
  const clients = spans.filter((span) => span.kind === SpanKind.CLIENT)
  assert.strictEqual(clients.length, 1, `expected one CLIENT span, got ${spans.map((span) => span.name).join(", ")}`)
  return clients[0]!
}

/** Sends `request`, reading its body; the response's status, or the failure's reason. */
const call = (request: HttpClientRequest.HttpClientRequest) =>
  HttpClient.execute(request).pipe(
    Effect.tap((response) => response.text),
    Effect.map((response) => response.status),
    Effect.catchTag("HttpClientError", (error) => Effect.succeed(error.reason._tag))
  )

const count = (labels: Record<string, string | number>) =>
  Testing.metricValue("http_client_request_duration_seconds_count", labels)

layer(Env, { excludeTestServices: true })("HttpClient.layer", (it) => {
  it.effect("one CLIENT span per request, child of the current span, semantic attributes, secrets redacted", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      yield* takeSpans
      const status = yield* call(HttpClientRequest.get(`${server.url}/ok?token=s3cret&page=2#part`)).pipe(
        Effect.withSpan("caller")
      )
      assert.strictEqual(status, 200)
      const spans = yield* takeSpans
      const span = clientSpan(spans)
      assert.strictEqual(span.name, "GET")
      assert.deepInclude(span.attributes, {
        "http.request.method": "GET",
        "server.address": "127.0.0.1",
        "server.port": server.port,
        "url.full": `${server.url}/ok?token=REDACTED&page=REDACTED`,
        "http.response.status_code": 200
      })
      assert.notInclude(JSON.stringify(span.attributes), "s3cret")
      assert.notStrictEqual(span.status.code, SpanStatusCode.ERROR)
      const caller = spans.find((candidate) => candidate.name === "caller")!
      assert.strictEqual(span.parentSpanContext?.spanId, caller.spanContext().spanId)
      const [received] = yield* server.take
      assert.strictEqual(received?.url, "/ok?token=s3cret&page=2", "the request itself is sent unchanged")
    }))

  it("url.full replaces user name and password, every query value, and drops the fragment", () => {
    assert.strictEqual(
      TracedHttpClient.redactUrl(new URL("https://ada:pw@example.com:8443/a/b?sig=x&flag#f")),
      "https://REDACTED:REDACTED@example.com:8443/a/b?sig=REDACTED&flag=REDACTED"
    )
    assert.strictEqual(TracedHttpClient.redactUrl(new URL("http://example.com/")), "http://example.com/")
  })

  it.effect("4xx and 5xx answers mark the span ERROR with the status code as error.type, and are counted", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      for (const code of [404, 503]) {
        yield* takeSpans
        const before = yield* count({ status_code: code })
        assert.strictEqual(yield* call(HttpClientRequest.get(`${server.url}/status/${code}`)), code)
        assert.strictEqual((yield* count({ status_code: code })) - before, 1)
        const span = clientSpan(yield* takeSpans)
        assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(span.attributes["error.type"], String(code))
        assert.strictEqual(span.attributes["http.response.status_code"], code)
      }
    }))

  it.effect("a transport failure marks the span ERROR (TransportError) and counts with an empty status_code", () =>
    Effect.gen(function*() {
      const closed = yield* Effect.promise(() => freePort())
      yield* takeSpans
      const before = yield* count({ server_address: "127.0.0.1", status_code: "" })
      assert.strictEqual(yield* call(HttpClientRequest.get(`http://127.0.0.1:${closed}/`)), "TransportError")
      const span = clientSpan(yield* takeSpans)
      assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(span.attributes["error.type"], "TransportError")
      assert.isUndefined(span.attributes["http.response.status_code"])
      assert.strictEqual((yield* count({ server_address: "127.0.0.1", status_code: "" })) - before, 1)
    }))

  it.effect("http_client_request_duration_seconds by method, server address and status, the span as exemplar", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      yield* takeSpans
      const labels = { method: "POST", server_address: "127.0.0.1", status_code: 201 }
      const before = yield* count(labels)
      for (let i = 0; i < 3; i++) yield* call(HttpClientRequest.post(`${server.url}/status/201`))
      assert.strictEqual((yield* count(labels)) - before, 3)
      const last = (yield* takeSpans).at(-1)!
      const text = yield* Metrics.Metrics.use((metrics) => metrics.render("openmetrics"))
      const bucket = text.split("\n").find((line) =>
        line.startsWith("http_client_request_duration_seconds_bucket{") && line.includes(`status_code="201"`) &&
        line.includes(last.spanContext().traceId)
      )
      assert.include(bucket, `span_id="${last.spanContext().spanId}"`)
    }))

  it.effect("server addresses past maxServerAddresses share the label `other`; other methods are _OTHER", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      for (const host of ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]) {
        yield* call(HttpClientRequest.get(`http://${host}:${server.port}/`))
      }
      const metrics = yield* Metrics.Metrics
      const { values } = yield* Effect.promise(() => TracedHttpClient.durationHistogram(metrics).get())
      const addresses = new Set(values.map((sample) => sample.labels.server_address))
      assert.deepStrictEqual([...addresses].toSorted(), ["127.0.0.1", "127.0.0.2", "other"])
      assert.strictEqual(yield* count({ server_address: "other" }), 2)
      yield* takeSpans
      yield* call(HttpClientRequest.make("PROPFIND" as "GET")(`${server.url}/`))
      const span = clientSpan(yield* takeSpans)
      assert.strictEqual(span.name, "HTTP")
      assert.deepInclude(span.attributes, { "http.request.method": "_OTHER", "http.request.method_original": "PROPFIND" })
      assert.strictEqual(yield* count({ method: "_OTHER" }), 1)
    }))

  it.effect("a known URL template names the span `<method> <template>` and is its url.template", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      yield* takeSpans
      yield* call(HttpClientRequest.get(`${server.url}/items/42`))
      const span = clientSpan(yield* takeSpans)
      assert.strictEqual(span.name, "GET /items/{id}")
      assert.strictEqual(span.attributes["url.template"], "/items/{id}")
    }))

  it.effect("Effect's TracerDisabledWhen leaves a request without span or headers; it is still counted", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      yield* takeSpans
      yield* server.take
      const before = yield* count({ method: "GET" })
      yield* call(HttpClientRequest.get(`${server.url}/health`)).pipe(
        Effect.provideService(HttpClient.TracerDisabledWhen, (request) => request.url.endsWith("/health")),
        Effect.withSpan("caller")
      )
      assert.deepStrictEqual((yield* takeSpans).map((span) => span.name), ["caller"])
      const [received] = yield* server.take
      assert.isUndefined(received?.headers.traceparent)
      assert.isUndefined(received?.headers.b3)
      assert.strictEqual((yield* count({ method: "GET" })) - before, 1)
    }))

  it.effect("trace headers the request already carries (copied from another request) are replaced, never forwarded", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      yield* takeSpans
      yield* server.take
      yield* call(HttpClientRequest.get(`${server.url}/copied`, {
        headers: { TraceParent: "00-zzzz-bad-01", tracestate: "stale=1" }
      }))
      const span = clientSpan(yield* takeSpans)
      const [received] = yield* server.take
      assert.strictEqual(received?.headers.traceparent, `00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`)
      assert.isUndefined(received?.headers.tracestate)
    }))

  it.effect("TracerPropagationEnabled = false keeps the span and the count but writes no trace header", () =>
    Effect.gen(function*() {
      const server = yield* Recording.RecordingServer
      yield* takeSpans
      yield* server.take
      const before = yield* count({ method: "GET", status_code: 200 })
      yield* call(HttpClientRequest.get(`${server.url}/quiet`)).pipe(
        Effect.provideService(HttpClient.TracerPropagationEnabled, false)
      )
      clientSpan(yield* takeSpans)
      assert.strictEqual((yield* count({ method: "GET", status_code: 200 })) - before, 1)
      const [received] = yield* server.take
      assert.isUndefined(received?.headers.traceparent)
      assert.isUndefined(received?.headers.b3)
    }))
})
