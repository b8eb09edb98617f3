/**
 * Idempotent persist against FerretDB: a write whose first attempt landed and whose reply was lost is retried by the
 * driver, the retry meets the duplicate key, and persist still succeeds with the one stored document; a different
 * transaction under a stored id is still DuplicateTransaction. The lost reply is made by test/support/MongoProxy.ts,
 * which also presents FerretDB (a standalone server, for which the driver never retries) as a replica-set primary.
 */
import { randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { SpanStatusCode } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, Option } from "effect"
import type { CommandFailedEvent, CommandStartedEvent } from "mongodb"
import { inject } from "vitest"
import { DagMetrics, Storage } from "../../src/dag/index.ts"
import * as MongoStorage from "../../src/dag/MongoStorage.ts"
import { ObservabilityTest, Testing } from "../../src/index.ts"
import * as Mongo from "../../src/Mongo.ts"
import * as MongoMonitor from "../../src/MongoMonitor.ts"
import * as MongoProxy from "../support/MongoProxy.ts"
import { ack, storedTransaction } from "../support/Transactions.ts"

const run = randomBytes(3).toString("hex")

const transaction: typeof storedTransaction = (id, fields = {}) => storedTransaction(id, { memo: "rent", ...fields })

/** MongoStorage and MongoMonitor on `database` at `uri`, with in-memory spans and the DAG's metrics. */
const MongoTest = (uri: string, database: string) =>
  Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(
    Layer.provideMerge(DagMetrics.layer()),
    Layer.provideMerge(Mongo.layer(uri, { database })),
    Layer.provideMerge(ObservabilityTest)
  )

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((span) => span.name === name)

const storageLatencyCount = Testing.metricValue("storage_latency_seconds_count", { operation: "insert" })

/** The documents stored under `id`, read directly. */
const documentsWithId = (id: string) =>
  Effect.flatMap(Mongo.Mongo, ({ db }) =>
    Effect.promise(() => db.collection<{ _id: string }>(MongoStorage.collectionName).countDocuments({ _id: id })))

describe("idempotent persist", () => {
  it.live("a retried insert whose first attempt landed: persist answers the stored transaction, one document", () =>
    Effect.gen(function*() {
      const proxy = yield* MongoProxy.make(inject("mongodbUri"), { replicaSet: "rs-proxy" })
      const database = `dag_retry_${run}`
      yield* Effect.gen(function*() {
        const storage = yield* Storage.Storage
        const { client } = yield* Mongo.Mongo
        const started: Array<CommandStartedEvent> = []
        const failed: Array<CommandFailedEvent> = []
        const onStarted = (event: CommandStartedEvent) => event.commandName === "insert" && started.push(event)
        const onFailed = (event: CommandFailedEvent) => event.commandName === "insert" && failed.push(event)
        client.on("commandStarted", onStarted).on("commandFailed", onFailed)
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => client.off("commandStarted", onStarted).off("commandFailed", onFailed))
        )

        const tx = transaction("tx-retried")
        proxy.dropNextReply("insert")
        const stored = yield* storage.persist(tx)
        assert.deepStrictEqual(stored, tx)

        // The scenario happened: the first insert reached FerretDB, its reply was dropped, the driver retried it.
        assert.strictEqual(proxy.dropped(), 1)
        const inserts = proxy.sent().filter((sent) => sent.command === "insert")
        assert.lengthOf(inserts, 2, "the proxy forwarded two insert attempts")
        assert.notStrictEqual(inserts[0]?.connection, inserts[1]?.connection, "the retry came on a new connection")
        assert.lengthOf(started, 2, "command monitoring saw two insert attempts")
        const [first, retry] = started
        assert.deepStrictEqual(retry?.command.lsid, first?.command.lsid, "the same session")
        assert.isDefined(first?.command.txnNumber, "a retryable write")
        assert.deepStrictEqual(retry?.command.txnNumber, first?.command.txnNumber, "the driver's retry, no new write")
        assert.strictEqual(failed[0]?.failure.name, "MongoNetworkError")

        assert.strictEqual(yield* documentsWithId("tx-retried"), 1)
        assert.deepStrictEqual(yield* storage.find("tx-retried"), Option.some(tx))

        // The trace: an OK Storage.persist marked already_stored, over the failed attempts and the read that confirmed.
        const spans = yield* Testing.finishedSpans
        const persist = named(spans, "Storage.persist")[0]
        assert.strictEqual(persist?.status.code, SpanStatusCode.OK)
        assert.strictEqual(persist?.attributes["dag.storage.already_stored"], true)
        assert.isUndefined(persist?.attributes["error.type"])
        const children = spans.filter((span) => span.parentSpanContext?.spanId === persist?.spanContext().spanId)
        assert.deepStrictEqual(children.map((span) => [span.name, span.attributes["error.type"]]), [
          [`insert ${database}.transactions`, "MongoNetworkError"],
          [`insert ${database}.transactions`, "DuplicateKey"],
          [`find ${database}.transactions`, undefined]
        ])
        // storage_latency_seconds: the one successful persist, timed once (the retry and the read inside it).
        assert.strictEqual(yield* storageLatencyCount, 1)
      }).pipe(Effect.provide(MongoTest(proxy.uri(database), database)))
    }))

  it.live("the same transaction again is answered as stored; a different one under its id is DuplicateTransaction", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const { db } = yield* Mongo.Mongo
      const tx = transaction("tx-once")
      assert.deepStrictEqual(yield* storage.persist(tx), tx)
      assert.deepStrictEqual(yield* storage.persist(transaction("tx-once")), tx, "the same content: stored already")
      const plain = transaction("tx-plain", { memo: undefined })
      yield* storage.persist(plain)
      const { memo: _, ...withoutMemo } = plain
      assert.isTrue(
        Storage.sameTransaction(yield* storage.persist(new Storage.StoredTransaction(withoutMemo)), plain),
        "an absent memo and an undefined one are the same"
      )

      const others = [
        transaction("tx-once", { ack: ack(8) }),
        transaction("tx-once", { memo: "rent, again" }),
        transaction("tx-once", { memo: undefined }),
        transaction("tx-once", { amount: 5.5 })
      ]
      for (const other of others) {
        const error = yield* Effect.flip(storage.persist(other))
        assert.strictEqual(error._tag, "DuplicateTransaction")
        assert.strictEqual(error.message, "transaction tx-once is already stored")
      }
      // A stored document with one field more is not the same transaction either.
      const extra = transaction("tx-extra")
      const { id: _id, ...fields } = extra
      yield* Effect.promise(() =>
        db.collection(MongoStorage.collectionName).insertOne({
          _id: "tx-extra" as never,
          ...JSON.parse(JSON.stringify(fields)),
          note: "written by someone else"
        })
      )
      assert.strictEqual((yield* Effect.flip(storage.persist(extra)))._tag, "DuplicateTransaction")

      assert.strictEqual(yield* documentsWithId("tx-once"), 1)
      assert.deepStrictEqual(yield* storage.find("tx-once"), Option.some(tx), "the stored one untouched")
      const persists = named(yield* Testing.finishedSpans, "Storage.persist")
      assert.deepStrictEqual(
        persists.map((span) => [
          span.status.code,
          span.attributes["dag.storage.already_stored"],
          span.attributes["error.type"]
        ]),
        [
          [SpanStatusCode.OK, undefined, undefined],
          [SpanStatusCode.OK, true, undefined],
          [SpanStatusCode.OK, undefined, undefined],
          [SpanStatusCode.OK, true, undefined],
          ...Array.from({ length: others.length + 1 }, () => [SpanStatusCode.ERROR, undefined, "DuplicateTransaction"])
        ]
      )
      assert.strictEqual(yield* storageLatencyCount, 4, "each successful persist timed, no failed one")
    }).pipe(Effect.provide(MongoTest(inject("mongodbUri"), `dag_idempotent_${run}`))))
})
