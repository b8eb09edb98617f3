import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { Effect, Fiber, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { DagMetrics, Poh, Presence, Storage, Transaction } from "../src/dag/index.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"

const nodes = [{ id: "poh-1", region: "eu-central", address: "127.0.0.1:50051" }]

/** `ObservabilityTest` with the DAG's metrics registered on its registry. */
const DagTest = DagMetrics.layer().pipe(Layer.provideMerge(ObservabilityTest))

const Workflows = Layer.mergeAll(
  Poh.layerInProcess("poh-test"),
  Storage.layerMemory,
  Presence.layerStatic({ nodes, failureRatio: 0 })
).pipe(Layer.provideMerge(DagTest))

const tx = (region = "eu-central") =>
  Schema.decodeUnknownSync(Transaction.Transaction)({ from: "alice", to: "bob", amount: 5, region })

const finishedTree = Effect.gen(function*() {
  const spans = yield* Testing.TestSpans.use((test) => test.finished)
  return { spans, tree: Testing.formatTree(Testing.spanTree(spans)) }
})

describe("Transaction.commit", () => {
  it.effect("is one trace: presence, PoH request with the sequencer under it, storage", () =>
    Effect.gen(function*() {
      const stored = yield* Transaction.commit(tx()).pipe(Effect.withSpan("POST /tx", { kind: "server" }))
      const { spans, tree } = yield* finishedTree
      assert.deepStrictEqual(tree, [
        "POST /tx",
        "  Presence.onlineNodes",
        "  Poh.request",
        "    Poh.sequence",
        "  Storage.persist"
      ])
      assert.strictEqual(new Set(spans.map((span) => span.spanContext().traceId)).size, 1)
      const byName = new Map(spans.map((span) => [span.name, span]))
      assert.strictEqual(byName.get("POST /tx")?.kind, SpanKind.SERVER)
      assert.strictEqual(byName.get("Poh.request")?.kind, SpanKind.INTERNAL)
      assert.strictEqual(byName.get("Poh.request")?.attributes["dag.region"], "eu-central")
      assert.strictEqual(byName.get("Presence.onlineNodes")?.attributes["dag.presence.online"], 1)
      assert.strictEqual(byName.get("Poh.sequence")?.attributes["poh.seq"], stored.ack.seq)
      assert.strictEqual(byName.get("Storage.persist")?.attributes["dag.tx.id"], stored.id)
      assert.strictEqual(byName.get("Storage.persist")?.status.code, SpanStatusCode.OK)
      assert.strictEqual(byName.get("POST /tx")?.resource.attributes["service.name"], "test")
    }).pipe(Effect.provide(Workflows)))

  it.effect("a typed failure sets ERROR on its span, with the error's tag as error.type", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const first = yield* Transaction.commit(tx(), "tx-dup")
      // Another transaction under the same id (the same one again would be answered as stored).
      const error = yield* Effect.flip(storage.persist(new Storage.StoredTransaction({ ...first, amount: 6 })))
      assert.strictEqual(error._tag, "DuplicateTransaction")
      const { spans } = yield* finishedTree
      const failed = spans.filter((span) => span.name === "Storage.persist").at(-1)!
      assert.strictEqual(failed.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(failed.attributes["error.type"], "DuplicateTransaction")
      assert.strictEqual(failed.status.message, "transaction tx-dup is already stored")
      assert.strictEqual(failed.events[0]?.name, "exception")
    }).pipe(Effect.provide(Workflows)))

  it.effect("a PoH timeout fails with PohTimeout, counts status=timeout and marks Poh.request ERROR", () =>
    Effect.gen(function*() {
      const poh = yield* Poh.Poh
      const fiber = yield* Effect.forkChild(Effect.flip(poh.request({ txId: "slow", region: "us-east" })))
      yield* TestClock.adjust("20 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "PohTimeout")
      assert.strictEqual(yield* Testing.metricValue("poh_requests_total", { region: "us-east", status: "timeout" }), 1)
      assert.strictEqual(yield* Testing.metricValue("poh_requests_total", { status: "ok" }), 0)
      assert.strictEqual(yield* Testing.metricValue("poh_ack_total"), 0)
      const { spans } = yield* finishedTree
      const request = spans.find((span) => span.name === "Poh.request")
      assert.strictEqual(request?.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(request?.attributes["error.type"], "PohTimeout")
    }).pipe(Effect.provide(
      Poh.layer({ timeout: "20 millis" }).pipe(
        Layer.provide(Layer.succeed(Poh.PohClient, Poh.PohClient.of({ stamp: () => Effect.never }))),
        Layer.provideMerge(DagTest)
      )
    )))
})

describe("metrics of the workflows", () => {
  it.live("each commit moves every counter and histogram by exactly one", () =>
    Effect.gen(function*() {
      const n = 3
      for (let i = 0; i < n; i++) yield* Transaction.commit(tx())
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "eu-central", status: "ok" }), n)
      assert.strictEqual(yield* value("poh_ack_total", { region: "eu-central" }), n)
      assert.strictEqual(yield* value("poh_approval_latency_seconds_count", { region: "eu-central" }), n)
      assert.strictEqual(yield* value("tx_committed_total", { region: "eu-central" }), n)
      assert.strictEqual(yield* value("presence_calls_total", { region: "eu-central", outcome: "success" }), n)
      assert.strictEqual(
        yield* value("storage_latency_seconds_count", { operation: "insert", collection: "transactions" }),
        n
      )
      assert.isAbove(yield* value("poh_approval_latency_seconds_sum"), 0)
      assert.strictEqual(yield* value("poh_approval_latency_seconds_bucket", { le: "+Inf" }), n)
    }).pipe(Effect.provide(Workflows)))

  it.effect("a failing presence look-up counts outcome=failure and the transaction still commits", () =>
    Effect.gen(function*() {
      const stored = yield* Transaction.commit(tx("us-west"))
      assert.strictEqual(stored.region, "us-west")
      assert.strictEqual(yield* Testing.metricValue("presence_calls_total", { outcome: "failure" }), 1)
      assert.strictEqual(yield* Testing.metricValue("presence_calls_total", { outcome: "success" }), 0)
      assert.strictEqual(yield* Testing.metricValue("tx_committed_total", { region: "us-west" }), 1)
    }).pipe(Effect.provide(Layer.mergeAll(
      Poh.layerInProcess(),
      Storage.layerMemory,
      Presence.layerStatic({ nodes, failureRatio: 1 })
    ).pipe(Layer.provideMerge(DagTest)))))

  it.effect("regions outside the configured list are recorded as other", () =>
    Effect.gen(function*() {
      const metrics = yield* DagMetrics.DagMetrics
      for (const region of ["mars", "x".repeat(10_000), "eu-central\"} 1\n", "EU-CENTRAL"]) {
        yield* metrics.recordPohRequest(region, "ok")
      }
      yield* metrics.recordPohRequest("ap-south", "ok")
      const { registry } = yield* Metrics.Metrics
      const { values } = yield* Effect.promise(() => registry.getSingleMetric("poh_requests_total")!.get())
      assert.deepStrictEqual(
        values.map((sample) => [sample.labels.region, sample.value]),
        [["other", 4], ["ap-south", 1]]
      )
    }).pipe(Effect.provide(DagMetrics.layer().pipe(Layer.provideMerge(Metrics.layerTest)))))

  it.effect("a latency observed inside a sampled span carries it as the exemplar", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      const dag = yield* DagMetrics.DagMetrics
      const span = yield* Effect.currentSpan.pipe(
        Effect.tap(() => dag.recordPohAck("eu-central", 0.003)),
        Effect.withSpan("approve")
      )
      const text = yield* metrics.render("openmetrics")
      const line = text.split("\n").find((candidate) =>
        candidate.startsWith("poh_approval_latency_seconds_bucket{le=\"0.005\",region=\"eu-central\",node=\"other\"}")
      )
      assert.strictEqual(line, `poh_approval_latency_seconds_bucket{le="0.005",region="eu-central",node="other"} 1 # {trace_id="${span.traceId}",span_id="${span.spanId}"} 0.003 ${line?.split(" ").at(-1)}`)
      assert.notInclude(yield* metrics.render("prometheus"), "trace_id")
    }).pipe(Effect.provide(DagTest)))
})
