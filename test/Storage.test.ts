/**
 * `storage_latency_seconds` is the storage backends' to record: `Storage.layerMemory` and `MongoStorage.layer` time
 * each acknowledged write through `DagMetrics.recordStorageLatency`, the `Storage.persist` span as exemplar, and a
 * write that fails is not timed; `MongoMonitor` times driver commands in its own family and never this one.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Schema } from "effect"
import { type Db, MongoServerError } from "mongodb"
import { DagMetrics, Storage } from "../src/dag/index.ts"
import * as MongoStorage from "../src/dag/MongoStorage.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import * as MongoMonitor from "../src/MongoMonitor.ts"
import * as FakeMongo from "./support/Mongo.ts"

/** `ObservabilityTest` with the DAG's metrics registered on its registry. */
const DagTest = DagMetrics.layer().pipe(Layer.provideMerge(ObservabilityTest))

const insertTransactions = { operation: "insert", collection: "transactions" }

const stored = (id: string) =>
  Schema.decodeUnknownSync(Storage.StoredTransaction)({
    id,
    from: "alice",
    to: "bob",
    amount: 5,
    region: "eu-central",
    ack: { seq: 1, hash: "0".repeat(64), timestamp: "2026-01-01T00:00:00.000Z", node: "poh-test" }
  })

/** The OpenMetrics lines of `storage_latency_seconds_bucket` that carry `span` as their exemplar. */
const withExemplar = (span: ReadableSpan) =>
  Effect.map(Metrics.Metrics.use((metrics) => metrics.render("openmetrics")), (text) => {
    const { traceId, spanId } = span.spanContext()
    return text.split("\n").filter((line) =>
      line.startsWith("storage_latency_seconds_bucket{") &&
      line.includes(`# {trace_id="${traceId}",span_id="${spanId}"}`)
    )
  })

/** Persists `tx` twice: the first write acknowledged, the second a duplicate; what the storage metrics then say. */
const persistTwice = Effect.gen(function*() {
  const storage = yield* Storage.Storage
  yield* storage.persist(stored("tx-1"))
  const duplicate = yield* Effect.flip(storage.persist(stored("tx-1")))
  assert.strictEqual(duplicate._tag, "DuplicateTransaction")
  assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count", insertTransactions), 1)
  assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count"), 1)
  const persists = (yield* Testing.finishedSpans).filter((span) => span.name === "Storage.persist")
  assert.strictEqual(persists.length, 2)
  assert.lengthOf(yield* withExemplar(persists[0]!), 1, "the acknowledged write's span is the exemplar")
  assert.lengthOf(yield* withExemplar(persists[1]!), 0, "the failed write was not timed")
})

/** A stand-in `transactions` collection: inserts are acknowledged once per `_id`, then fail as MongoDB's E11000. */
const stubDb = () => {
  const ids = new Set<unknown>()
  const collection = {
    insertOne: (document: { readonly _id: unknown }) => {
      if (ids.has(document._id)) {
        return Promise.reject(
          new MongoServerError({ message: "E11000 duplicate key", code: 11000, codeName: "DuplicateKey" })
        )
      }
      ids.add(document._id)
      return Promise.resolve({ acknowledged: true, insertedId: document._id })
    },
    findOne: () => Promise.resolve(null)
  }
  return { collection: () => collection } as unknown as Db
}

describe("storage_latency_seconds", () => {
  it.effect("Storage.layerMemory times each acknowledged write, its Storage.persist span as exemplar", () =>
    persistTwice.pipe(Effect.provide(Storage.layerMemory.pipe(Layer.provideMerge(DagTest)))))

  it.effect("MongoStorage.layer times each acknowledged insert into transactions, its span as exemplar", () =>
    persistTwice.pipe(
      Effect.provide(MongoStorage.layer.pipe(
        Layer.provide(FakeMongo.layerUnconnected(stubDb())),
        Layer.provideMerge(DagTest)
      ))
    ))

  it.effect("MongoMonitor times driver commands in mongodb_command_duration_seconds, not storage_latency_seconds", () =>
    Effect.gen(function*() {
      const { client } = yield* Mongo.Mongo
      const command = { address: "127.0.0.1:27017", connectionId: 1, requestId: 7, databaseName: "dag" }
      client.emit("commandStarted", { ...command, commandName: "insert", command: { insert: "transactions" } } as never)
      client.emit(
        "commandSucceeded",
        { ...command, commandName: "insert", duration: 3, reply: { ok: 1, n: 1 } } as never
      )
      assert.strictEqual(
        yield* Testing.metricValue("mongodb_command_duration_seconds_count", {
          command: "insert",
          collection: "transactions",
          outcome: "success"
        }),
        1
      )
      assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count"), 0)
      assert.deepStrictEqual((yield* Testing.finishedSpans).map((span) => span.name), ["insert dag.transactions"])
    }).pipe(
      Effect.provide(MongoMonitor.layer.pipe(
        Layer.provideMerge(FakeMongo.layerUnconnected()),
        Layer.provideMerge(DagTest)
      ))
    ))
})
