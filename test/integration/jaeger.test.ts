/**
 * ObservabilityLive against the real Jaeger v2 that globalSetup starts: a
 * program configured through the environment, as a user's process is, exports
 * its spans over OTLP gRPC when its layer closes, and Jaeger's HTTP query API
 * then shows the trace of SPEC §5 with its attributes.
 */
import { randomUUID } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import { inject } from "vitest"
import { DagMetrics, Poh, Presence, Storage, Transaction } from "../../src/dag/index.ts"
import { Metrics, MetricsServer, ObservabilityLive, Testing, type Tracing } from "../../src/index.ts"
import { byName, fetchTrace, parents, tag } from "./Jaeger.ts"

/** Unique per test run, so that nothing another run exported to a shared Jaeger is mistaken for ours. */
const serviceName = `dag-it-${randomUUID().slice(0, 8)}`

const nodes = [{ id: "poh-1", region: "eu-central", address: "127.0.0.1:50051" }]

const tx = Schema.decodeUnknownSync(Transaction.Transaction)({
  from: "alice",
  to: "bob",
  amount: 5,
  region: "eu-central"
})

/** The workflows over ObservabilityLive, configured only by `env` as Effect `Config` reads it. */
const Live = () =>
  Layer.mergeAll(
    Poh.layerInProcess(),
    Storage.layerMemory,
    Presence.layerStatic({ nodes, failureRatio: 0 })
  ).pipe(
    Layer.provideMerge(DagMetrics.layer()),
    Layer.provideMerge(ObservabilityLive("sending-dag")),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: inject("otlpEndpoint"),
        PROMETHEUS_BIND: "127.0.0.1:0",
        OTEL_SERVICE_NAME: serviceName
      }
    })))
  )

/**
 * Runs `self` in a program over {@link Live} and returns once the layer has
 * closed, which flushes the span batch to Jaeger. The Metrics service is
 * returned beside `self`'s result: its registry is plain memory that outlives
 * the layer, and the Tracing layer's release (the flush) is what counts the
 * exported spans into it, so it is read after the close.
 */
const runLive = <A, E>(
  self: Effect.Effect<A, E, Poh.Poh | Storage.Storage | Presence.Presence | DagMetrics.DagMetrics | Metrics.Metrics>
) =>
  Effect.gen(function*() {
    const metrics = yield* Metrics.Metrics
    const server = yield* MetricsServer.MetricsServer
    return { ...yield* self, metrics, metricsUrl: server.url }
  }).pipe(Effect.provide(Live()))

/** Runs `self` in the root span `POST /tx`, as the examples' HTTP server does; returns its result and the span ids. */
const inRootSpan = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const span = yield* Effect.orDie(Effect.currentSpan)
    return { traceId: span.traceId, spanId: span.spanId, result: yield* self }
  }).pipe(Effect.withSpan("POST /tx", { kind: "server" }))

const commitSpans = ["POST /tx", "Poh.request", "Poh.sequence", "Presence.onlineNodes", "Storage.persist"]

describe("ObservabilityLive → Jaeger", () => {
  it.live("one commit is one trace in Jaeger: span names, parents, kinds, attributes, service name", () =>
    Effect.gen(function*() {
      const { metrics, metricsUrl, result: stored, spanId, traceId } = yield* runLive(
        inRootSpan(Transaction.commit(tx))
      )
      assert.match(metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)

      const exported = (outcome: Tracing.SpanExportOutcome) =>
        Testing.metricValue("otlp_exported_spans_total", { outcome }).pipe(
          Effect.provideService(Metrics.Metrics, metrics)
        )
      assert.strictEqual(yield* exported("exported"), commitSpans.length)
      assert.strictEqual(yield* exported("failed"), 0)
      assert.strictEqual(yield* exported("dropped"), 0)

      const trace = yield* fetchTrace(traceId, commitSpans.length)
      assert.deepStrictEqual(trace.spans.map((span) => span.operationName).toSorted(), commitSpans)
      assert.deepStrictEqual(new Set(trace.spans.map((span) => span.traceID)), new Set([traceId]))
      assert.deepStrictEqual(
        new Set(trace.spans.map((span) => trace.processes[span.processID]?.serviceName)),
        new Set([serviceName])
      )
      assert.deepStrictEqual(parents(trace), {
        "POST /tx": null,
        "Presence.onlineNodes": "POST /tx",
        "Poh.request": "POST /tx",
        "Poh.sequence": "Poh.request",
        "Storage.persist": "POST /tx"
      })
      const spans = byName(trace)
      assert.strictEqual(spans.get("POST /tx")?.spanID, spanId)
      assert.deepStrictEqual(
        Object.fromEntries(commitSpans.map((name) => [name, tag(spans.get(name), "span.kind")])),
        {
          "POST /tx": "server",
          "Poh.request": "internal",
          "Poh.sequence": "internal",
          "Presence.onlineNodes": "internal",
          "Storage.persist": "internal"
        }
      )
      assert.strictEqual(tag(spans.get("Poh.request"), "dag.region"), "eu-central")
      assert.strictEqual(tag(spans.get("Presence.onlineNodes"), "dag.region"), "eu-central")
      assert.strictEqual(tag(spans.get("Storage.persist"), "dag.tx.id"), stored.id)
      assert.strictEqual(tag(spans.get("Poh.sequence"), "poh.seq"), stored.ack.seq)
      for (const span of trace.spans) assert.isUndefined(tag(span, "error"), `${span.operationName} is not an error`)
    }))

  it.live("a failed Storage.persist reaches Jaeger as an ERROR span with error.type and the exception", () =>
    Effect.gen(function*() {
      const id = `dup-${randomUUID()}`
      const { traceId, result: error } = yield* runLive(
        Effect.andThen(Transaction.commit(tx, id), inRootSpan(Effect.flip(Transaction.commit(tx, id))))
      )
      assert.strictEqual(error._tag, "DuplicateTransaction")

      const trace = yield* fetchTrace(traceId, commitSpans.length)
      assert.deepStrictEqual(trace.spans.map((span) => span.operationName).toSorted(), commitSpans)
      const failed = byName(trace).get("Storage.persist")
      assert.strictEqual(tag(failed, "dag.tx.id"), id)
      assert.strictEqual(tag(failed, "error"), true)
      assert.strictEqual(tag(failed, "otel.status_code"), "ERROR")
      assert.strictEqual(tag(failed, "otel.status_description"), `transaction ${id} is already stored`)
      assert.strictEqual(tag(failed, "error.type"), "DuplicateTransaction")
      assert.deepInclude(failed?.logs.flatMap((log) => log.fields) ?? [], { key: "event", value: "exception" })
      for (const name of ["Presence.onlineNodes", "Poh.request", "Poh.sequence"]) {
        assert.isUndefined(tag(byName(trace).get(name), "error"), `${name} is not an error`)
      }
    }))
})
