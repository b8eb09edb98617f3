/**
 * `storage_latency_seconds` is the storage backends' to record: `Storage.layerMemory` and `MongoStorage.layer` time
 * each successful write through `DagMetrics.recordStorageLatency`, the `Storage.persist` span as exemplar, and a
 * write that fails is not timed; `MongoMonitor` times driver commands in its own family and never this one. Both
 * backends persist idempotently: the same transaction again succeeds, a different one under its id does not.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Option, Schema } from "effect"
import { BSON, type Db, MongoServerError } from "mongodb"
import { DagMetrics, Poh, Storage } from "../src/dag/index.ts"
import * as MongoStorage from "../src/dag/MongoStorage.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import * as MongoMonitor from "../src/MongoMonitor.ts"
import * as FakeMongo from "./support/Mongo.ts"

/** `ObservabilityTest` with the DAG's metrics registered on its registry. */
const DagTest = DagMetrics.layer().pipe(Layer.provideMerge(ObservabilityTest))

const insertTransactions = { operation: "insert", collection: "transactions" }

const stored = (id: string, amount = 5) =>
  Schema.decodeUnknownSync(Storage.StoredTransaction)({
    id,
    from: "alice",
    to: "bob",
    amount,
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

/** Persists under one id twice: the first write acknowledged, the second (other content) a duplicate, not timed. */
const persistTwice = Effect.gen(function*() {
  const storage = yield* Storage.Storage
  yield* storage.persist(stored("tx-1"))
  const duplicate = yield* Effect.flip(storage.persist(stored("tx-1", 6)))
  assert.strictEqual(duplicate._tag, "DuplicateTransaction")
  assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count", insertTransactions), 1)
  assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count"), 1)
  const persists = (yield* Testing.finishedSpans).filter((span) => span.name === "Storage.persist")
  assert.strictEqual(persists.length, 2)
  assert.lengthOf(yield* withExemplar(persists[0]!), 1, "the acknowledged write's span is the exemplar")
  assert.lengthOf(yield* withExemplar(persists[1]!), 0, "the failed write was not timed")
})

/**
 * A stand-in `transactions` collection: inserts are acknowledged once per `_id`, then fail as MongoDB's E11000;
 * `findOne` answers the stored document, as the server would (undefined fields left out), unless `visible` is false.
 */
const stubDb = (visible = true) => {
  const documents = new Map<unknown, BSON.Document>()
  const collection = {
    insertOne: (document: { readonly _id: unknown }) => {
      if (documents.has(document._id)) {
        return Promise.reject(
          new MongoServerError({ message: "E11000 duplicate key", code: 11000, codeName: "DuplicateKey" })
        )
      }
      documents.set(document._id, BSON.deserialize(BSON.serialize(document, { ignoreUndefined: true })))
      return Promise.resolve({ acknowledged: true, insertedId: document._id })
    },
    findOne: (filter: { readonly _id: unknown }) => Promise.resolve(visible ? documents.get(filter._id) ?? null : null)
  }
  return { collection: () => collection } as unknown as Db
}

/** MongoStorage over {@link stubDb}. */
const MongoStub = (visible?: boolean) =>
  MongoStorage.layer.pipe(Layer.provide(FakeMongo.layerUnconnected(stubDb(visible))), Layer.provideMerge(DagTest))

/**
 * The same transaction persisted again is answered as stored (timed, `dag.storage.already_stored` on its span);
 * another one under its id is `DuplicateTransaction` and leaves the stored one as it was.
 */
const persistAgain = Effect.gen(function*() {
  const storage = yield* Storage.Storage
  const tx = stored("tx-again")
  assert.deepStrictEqual(yield* storage.persist(tx), tx)
  assert.isTrue(Storage.sameTransaction(yield* storage.persist(stored("tx-again")), tx))
  assert.strictEqual((yield* Effect.flip(storage.persist(stored("tx-again", 6))))._tag, "DuplicateTransaction")
  assert.deepStrictEqual(yield* storage.find("tx-again"), Option.some(tx))
  const spans = (yield* Testing.finishedSpans).filter((span) => span.name === "Storage.persist")
  const alreadyStored = spans.map((span) => span.attributes["dag.storage.already_stored"])
  assert.deepStrictEqual(alreadyStored, [undefined, true, undefined])
  assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count"), 2)
})

describe("idempotent persist", () => {
  it.effect("Storage.layerMemory: the same transaction again is answered as stored, another one is a duplicate", () =>
    persistAgain.pipe(Effect.provide(Storage.layerMemory.pipe(Layer.provideMerge(DagTest)))))

  it.effect("MongoStorage.layer: on a duplicate key the stored document is read back and compared", () =>
    persistAgain.pipe(Effect.provide(MongoStub())))

  it.effect("MongoStorage.layer: a duplicate key with no committed document to compare is StorageUnavailable", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      yield* storage.persist(stored("tx-unseen"))
      const error = yield* Effect.flip(storage.persist(stored("tx-unseen")))
      assert.strictEqual(error._tag, "StorageUnavailable")
      assert.strictEqual(
        error.message,
        "storage unavailable during persist: duplicate key on insert, but no committed document tx-unseen to compare"
      )
      assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count"), 1)
    }).pipe(Effect.provide(MongoStub(false))))

  it("sameTransaction compares every field, the ack's included; an undefined memo is an absent one", () => {
    const tx = stored("tx-same")
    assert.isTrue(Storage.sameTransaction(tx, stored("tx-same")))
    assert.isTrue(Storage.sameTransaction(tx, new Storage.StoredTransaction({ ...tx, memo: undefined })))
    assert.isFalse(Storage.sameTransaction(tx, new Storage.StoredTransaction({ ...tx, memo: "" })))
    const laterAck = new Poh.PohAck({ ...tx.ack, seq: 2 })
    assert.isFalse(Storage.sameTransaction(tx, new Storage.StoredTransaction({ ...tx, ack: laterAck })))
    assert.isFalse(Storage.sameTransaction(tx, stored("tx-other")))
  })
})

describe("storage_latency_seconds", () => {
  it.effect("Storage.layerMemory times each acknowledged write, its Storage.persist span as exemplar", () =>
    persistTwice.pipe(Effect.provide(Storage.layerMemory.pipe(Layer.provideMerge(DagTest)))))

  it.effect("MongoStorage.layer times each acknowledged insert into transactions, its span as exemplar", () =>
    persistTwice.pipe(Effect.provide(MongoStub())))

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
