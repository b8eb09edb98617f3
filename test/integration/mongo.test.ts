/** MongoStorage, MongoMonitor and Mongo against FerretDB: stored data, spans, metrics, failures, an outage. */
import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { ConfigProvider, Effect, Layer, Option } from "effect"
import type { CommandStartedEvent } from "mongodb"
import { Gauge, Histogram } from "prom-client"
import { inject } from "vitest"
import { DagMetrics, Storage } from "../../src/dag/index.ts"
import * as MongoStorage from "../../src/dag/MongoStorage.ts"
import { Metrics, ObservabilityTest, Testing } from "../../src/index.ts"
import * as Mongo from "../../src/Mongo.ts"
import * as MongoMonitor from "../../src/MongoMonitor.ts"
import { startFerretDB } from "../../servers/Servers.ts"
import { storedTransaction } from "../support/Transactions.ts"

/** A value that must never reach a span. */
const memo = "memo-7f3a-never-in-a-span"

const transaction = (id: string, fields: { readonly memo?: string | undefined } = { memo }) =>
  storedTransaction(id, fields)

/** Mongo on `database` of the server at `uri`, with in-memory spans and a fresh registry. */
const MongoOnly = (database: string, uri = inject("mongodbUri")) =>
  Mongo.layer(uri, { database }).pipe(Layer.provideMerge(ObservabilityTest))

/** MongoStorage and MongoMonitor over {@link MongoOnly}, the DAG's metrics (`storage_latency_seconds`) beside. */
const MongoTest = (database: string, uri = inject("mongodbUri")) =>
  Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(
    Layer.provideMerge(DagMetrics.layer()),
    Layer.provideMerge(MongoOnly(database, uri))
  )

const finished = Testing.finishedSpans

/** The instrument registered as `name`, which must be of `kind`. */
const registered = <M>(
  metrics: Metrics.Metrics["Service"],
  name: string,
  kind: abstract new(...args: never) => M
): M => {
  const metric = metrics.registry.getSingleMetric(name)
  if (!(metric instanceof kind)) return assert.fail(`${name} is not registered as a ${kind.name}`)
  return metric
}

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((span) => span.name === name)

/** Every attribute value, status message and event attribute of `spans`, as text. */
const recordedText = (spans: ReadonlyArray<ReadableSpan>) =>
  spans.flatMap((span) => [
    span.name,
    span.status.message ?? "",
    ...Object.values(span.attributes).map(String),
    ...span.events.flatMap((event) => Object.values(event.attributes ?? {}).map(String))
  ])

/** How the OpenMetrics text shows `span` as an exemplar. */
const exemplar = (span: ReadableSpan) =>
  `# {trace_id="${span.spanContext().traceId}",span_id="${span.spanContext().spanId}"}`

const commandCount = (command: string, outcome: "success" | "failure", collection = "transactions") =>
  Testing.metricValue("mongodb_command_duration_seconds_count", { command, collection, outcome })

const latency = (operation?: string) =>
  Testing.metricValue("storage_latency_seconds_count", operation === undefined ? {} : { operation })

const broken = (): never => {
  throw new Error("broken instrument")
}

const pool = Effect.all({
  checked_out: Testing.metricValue("mongodb_pool_connections", { state: "checked_out" }),
  available: Testing.metricValue("mongodb_pool_connections", { state: "available" }),
  pending: Testing.metricValue("mongodb_pool_connections", { state: "pending" })
})

describe("MongoStorage", () => {
  it.live("persist (w: majority, j: true) then find returns the same StoredTransaction; a missing id is None", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const { client, db } = yield* Mongo.Mongo
      const writeConcerns: Array<unknown> = []
      const started = (event: CommandStartedEvent) => {
        if (event.commandName === "insert") writeConcerns.push(event.command.writeConcern)
      }
      client.on("commandStarted", started)
      yield* Effect.addFinalizer(() => Effect.sync(() => client.off("commandStarted", started)))
      const tx = transaction("tx-1")
      const plain = transaction("tx-2", { memo: undefined })
      yield* storage.persist(tx)
      yield* storage.persist(plain)
      assert.deepStrictEqual(writeConcerns, [{ w: "majority", j: true }, { w: "majority", j: true }])
      assert.deepStrictEqual(yield* storage.find("tx-1"), Option.some(tx))
      assert.deepStrictEqual(yield* storage.find("tx-2"), Option.some(transaction("tx-2", {})))
      assert.isTrue(Option.isNone(yield* storage.find("tx-missing")))
      const raw = yield* Effect.promise(() =>
        db.collection<{ _id: string; [field: string]: unknown }>("transactions").findOne({ _id: "tx-2" })
      )
      assert.deepStrictEqual(raw, {
        _id: "tx-2",
        from: "alice-sender",
        to: "bob-receiver",
        amount: 5,
        region: "eu-central",
        ack: { seq: 7, hash: "ab".repeat(32), timestamp: "2025-01-01T00:00:00.000Z", node: "poh-1" }
      })
    }).pipe(Effect.provide(MongoTest("dag_roundtrip"))))

  it.live("a stored document that is not a StoredTransaction is StorageUnavailable, its values not repeated", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const { db } = yield* Mongo.Mongo
      const corrupt = db.collection<{ _id: string; amount: string }>("transactions")
      yield* Effect.promise(() => corrupt.insertOne({ _id: "tx-bad", amount: "fivefold" }))
      const error = yield* Effect.flip(storage.find("tx-bad"))
      assert.strictEqual(error._tag, "StorageUnavailable")
      assert.strictEqual(error.message, "storage unavailable during find: document tx-bad is not a StoredTransaction")
      const find = named(yield* finished, "Storage.find")[0]
      assert.strictEqual(find?.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(find?.attributes["error.type"], "StorageUnavailable")
      assert.notInclude(recordedText(yield* finished).join("\n"), "fivefold")
    }).pipe(Effect.provide(MongoTest("dag_corrupt"))))

  it.live("a duplicate id: DuplicateTransaction, Storage.persist and its insert span ERROR, outcome=failure", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const tx = transaction("tx-dup")
      yield* storage.persist(tx)
      // Another transaction under the same id (the same one again would be answered as stored).
      const error = yield* Effect.flip(storage.persist(transaction("tx-dup", { memo: "another" })))
      assert.strictEqual(error._tag, "DuplicateTransaction")
      assert.strictEqual(error.message, "transaction tx-dup is already stored")

      const spans = yield* finished
      const [first, second] = named(spans, "Storage.persist")
      const [ok, failed] = named(spans, "insert dag_duplicate.transactions")
      assert.strictEqual(first?.status.code, SpanStatusCode.OK)
      assert.strictEqual(second?.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(second?.attributes["error.type"], "DuplicateTransaction")
      assert.strictEqual(ok?.status.code, SpanStatusCode.UNSET)
      assert.strictEqual(failed?.parentSpanContext?.spanId, second?.spanContext().spanId)
      assert.deepStrictEqual(failed?.status, { code: SpanStatusCode.ERROR, message: "DuplicateKey" })
      assert.strictEqual(failed?.attributes["error.type"], "DuplicateKey")
      assert.strictEqual(failed?.attributes["db.response.status_code"], "11000")
      assert.notInclude(recordedText(named(spans, "insert dag_duplicate.transactions")).join("\n"), "tx-dup")

      assert.strictEqual(yield* commandCount("insert", "success"), 1)
      assert.strictEqual(yield* commandCount("insert", "failure"), 1)
      assert.strictEqual(yield* latency("insert"), 1)
    }).pipe(Effect.provide(MongoTest("dag_duplicate"))))

  it.live("MongoDB stopped: StorageUnavailable fast, ERROR; after start the same layer works, nothing lost", () =>
    Effect.gen(function*() {
      const ferretdb = yield* Effect.acquireRelease(
        Effect.promise(() => startFerretDB()),
        (server) => Effect.promise(() => server.dispose())
      )
      yield* Effect.gen(function*() {
        const storage = yield* Storage.Storage
        const before = transaction("tx-before")
        yield* storage.persist(before)
        yield* Effect.promise(() => ferretdb.stop())

        const stoppedAt = Date.now()
        const error = yield* Effect.flip(storage.persist(transaction("tx-during")))
        const persistFailedAfter = Date.now() - stoppedAt
        assert.strictEqual(error._tag, "StorageUnavailable")
        assert.isBelow(persistFailedAfter, 5_000)
        const findError = yield* Effect.flip(storage.find("tx-before"))
        assert.strictEqual(findError._tag, "StorageUnavailable")
        assert.isBelow(Date.now() - stoppedAt, 10_000)
        const failed = named(yield* finished, "Storage.persist").at(-1)
        assert.strictEqual(failed?.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(failed?.attributes["error.type"], "StorageUnavailable")
        assert.deepStrictEqual(yield* pool, { checked_out: 0, available: 0, pending: 0 })

        yield* Effect.promise(() => ferretdb.start())
        const after = transaction("tx-after")
        yield* storage.persist(after)
        assert.deepStrictEqual(yield* storage.find("tx-before"), Option.some(before))
        assert.deepStrictEqual(yield* storage.find("tx-after"), Option.some(after))
        assert.isTrue(Option.isNone(yield* storage.find("tx-during")))
        assert.deepStrictEqual(yield* pool, { checked_out: 0, available: 1, pending: 0 })
        assert.strictEqual(yield* commandCount("insert", "success"), 2)
      }).pipe(Effect.provide(MongoTest("dag_outage", ferretdb.uri)))
    }), { timeout: 60_000 })
})

describe("MongoMonitor", () => {
  it.live("one persist and one find: exact command, storage latency and pool values", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const mongo = yield* Mongo.Mongo
      const during: Array<Readonly<Record<Mongo.PoolState, number>>> = []
      const record = () => during.push(mongo.connections())
      mongo.client.on("commandStarted", record)
      yield* Effect.addFinalizer(() => Effect.sync(() => mongo.client.off("commandStarted", record)))

      yield* storage.persist(transaction("tx-metrics"))
      yield* storage.find("tx-metrics")

      assert.strictEqual(yield* commandCount("insert", "success"), 1)
      assert.strictEqual(yield* commandCount("find", "success"), 1)
      assert.strictEqual(yield* Testing.metricValue("mongodb_command_duration_seconds_count"), 2)
      assert.strictEqual(yield* latency("insert"), 1)
      assert.strictEqual(yield* latency("find"), 0)
      assert.strictEqual(yield* latency(), 1)
      assert.deepStrictEqual(during, [
        { checked_out: 1, available: 0, pending: 0 },
        { checked_out: 1, available: 0, pending: 0 }
      ])
      assert.deepStrictEqual(yield* pool, { checked_out: 0, available: 1, pending: 0 })
    }).pipe(Effect.provide(MongoTest("dag_metrics"))))

  it.live("the command histogram carries the command span as exemplar, storage latency its Storage.persist", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const metrics = yield* Metrics.Metrics
      yield* storage.persist(transaction("tx-exemplar"))
      const spans = yield* finished
      const insert = named(spans, "insert dag_exemplar.transactions")[0]!
      const persist = named(spans, "Storage.persist")[0]!
      assert.strictEqual(persist.spanContext().traceId, insert.spanContext().traceId)
      const lines = (yield* metrics.render("openmetrics")).split("\n")
      const withExemplar = (prefix: string, span: ReadableSpan) =>
        lines.filter((line) => line.startsWith(prefix) && line.includes(exemplar(span)))
      assert.lengthOf(
        withExemplar("mongodb_command_duration_seconds_bucket{le=", insert).filter((line) =>
          line.includes("command=\"insert\"") && line.includes("outcome=\"success\"")
        ),
        1
      )
      assert.lengthOf(withExemplar("storage_latency_seconds_bucket{le=", persist), 1)
    }).pipe(Effect.provide(MongoTest("dag_exemplar"))))

  it.live("Storage.persist → insert <db>.transactions: CLIENT child, same trace, semconv attributes, no values", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const { db } = yield* Mongo.Mongo
      yield* storage.persist(transaction("tx-span"))
      yield* storage.find("tx-span")
      yield* Effect.promise(() => db.command({ ping: 1 })).pipe(Effect.withSpan("outer"))

      const spans = yield* finished
      assert.deepStrictEqual(Testing.formatTree(Testing.spanTree(spans)), [
        "Storage.persist",
        "  insert dag_spans.transactions",
        "Storage.find",
        "  find dag_spans.transactions",
        "outer",
        "  ping dag_spans"
      ])
      const persist = named(spans, "Storage.persist")[0]!
      const insert = named(spans, "insert dag_spans.transactions")[0]!
      assert.strictEqual(insert.kind, SpanKind.CLIENT)
      assert.strictEqual(insert.parentSpanContext?.spanId, persist.spanContext().spanId)
      assert.strictEqual(insert.spanContext().traceId, persist.spanContext().traceId)
      assert.strictEqual(insert.instrumentationScope.name, "dag-observability")
      assert.strictEqual(insert.status.code, SpanStatusCode.UNSET)
      const port = Number(new URL(inject("mongodbUri")).port)
      assert.deepStrictEqual(insert.attributes, {
        "db.system.name": "mongodb",
        "db.operation.name": "insert",
        "db.namespace": "dag_spans",
        "db.collection.name": "transactions",
        "server.address": "127.0.0.1",
        "server.port": port
      })
      assert.deepStrictEqual(named(spans, "ping dag_spans")[0]?.attributes, {
        "db.system.name": "mongodb",
        "db.operation.name": "ping",
        "db.namespace": "dag_spans",
        "server.address": "127.0.0.1",
        "server.port": port
      })
      const text = recordedText(spans).join("\n")
      for (const value of [memo, "alice-sender", "bob-receiver", "ab".repeat(32)]) assert.notInclude(text, value)
    }).pipe(Effect.provide(MongoTest("dag_spans"))))

  it.live("hostile and too many collection names are recorded as other", () =>
    Effect.gen(function*() {
      const { db } = yield* Mongo.Mongo
      const metrics = yield* Metrics.Metrics
      const hostile = ["x".repeat(65), "evil\"} 1\n# x", "space d"]
      const many = Array.from({ length: MongoMonitor.maxCollections + 5 }, (_, i) => `c${i}`)
      for (const name of [...hostile, ...many]) {
        yield* Effect.promise(() => db.collection(name).findOne({}).catch(() => null))
      }
      const commandDuration = registered(metrics, "mongodb_command_duration_seconds", Histogram)
      const { values } = yield* Effect.promise(() => commandDuration.get())
      const collections = new Set(values.map((sample) => sample.labels.collection))
      assert.strictEqual(collections.size, MongoMonitor.maxCollections + 1)
      assert.isTrue(collections.has("other"))
      for (const name of [...hostile, ...many.slice(MongoMonitor.maxCollections)]) {
        assert.isFalse(collections.has(name))
      }
      assert.strictEqual(
        yield* Testing.metricValue("mongodb_command_duration_seconds_count", { collection: "other" }),
        hostile.length + 5
      )
    }).pipe(Effect.provide(MongoTest("dag_bounded"))))

  it.live("a monitoring failure never fails the command", () =>
    Effect.gen(function*() {
      const storage = yield* Storage.Storage
      const metrics = yield* Metrics.Metrics
      registered(metrics, "mongodb_command_duration_seconds", Histogram).observe = broken
      registered(metrics, "mongodb_pool_connections", Gauge).set = broken
      yield* storage.persist(transaction("tx-broken"))
      assert.isTrue(Option.isSome(yield* storage.find("tx-broken")))
    }).pipe(Effect.provide(MongoTest("dag_broken"))))

  it.live("every listener is removed when the MongoMonitor scope closes", () =>
    Effect.gen(function*() {
      const mongo = yield* Mongo.Mongo
      const events = ["commandStarted", "commandSucceeded", "commandFailed", ...Mongo.poolEvents] as const
      const listeners = () => events.map((event) => mongo.client.listenerCount(event))
      const ping = Effect.promise(() => mongo.db.command({ ping: 1 }))
      const before = listeners()
      const during = yield* Effect.scoped(Effect.gen(function*() {
        yield* Layer.build(MongoMonitor.layer)
        yield* ping
        return listeners()
      }))
      assert.deepStrictEqual(during, before.map((count) => count + 1))
      assert.strictEqual(yield* Testing.metricValue("mongodb_command_duration_seconds_count"), 1)
      assert.deepStrictEqual(listeners(), before)
      yield* ping
      assert.strictEqual(yield* Testing.metricValue("mongodb_command_duration_seconds_count"), 1)
    }).pipe(Effect.provide(MongoOnly("dag_listeners"))))
})

describe("Mongo", () => {
  it.live("Mongo.layerConfig connects to MONGODB_URI and uses the database its path names", () =>
    Effect.gen(function*() {
      const mongo = yield* Mongo.Mongo
      assert.strictEqual(mongo.db.databaseName, "dag_from_env")
      assert.strictEqual(mongo.uri, `${inject("mongodbUri")}dag_from_env`)
      assert.strictEqual((yield* Effect.promise(() => mongo.db.command({ ping: 1 }))).ok, 1)
    }).pipe(
      Effect.provide(Mongo.layerConfig()),
      Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
        env: { MONGODB_URI: `${inject("mongodbUri")}dag_from_env` }
      })))
    ))
})
