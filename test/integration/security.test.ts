/**
 * Secrets stay secret, against the real servers: the memo of a stored transaction reaches MongoDB but no span
 * exported to Jaeger, no log line and no `/metrics` sample; MongoDB credentials in the URI reach no span, error or log
 * line, whether the server is down or FerretDB.
 */
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import { type AddressInfo, createServer as createTcpServer } from "node:net"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Cause, ConfigProvider, Context, Effect, Exit, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { inject } from "vitest"
import * as SendingDagApi from "../../examples/SendingDagApi.ts"
import { DagMetrics, Poh, Presence, Storage } from "../../src/dag/index.ts"
import * as MongoStorage from "../../src/dag/MongoStorage.ts"
import { MetricsServer, ObservabilityLive, ObservabilityTest, Testing } from "../../src/index.ts"
import * as Mongo from "../../src/Mongo.ts"
import * as MongoMonitor from "../../src/MongoMonitor.ts"
import { capturingOutput } from "../support/Output.ts"
import { fetchTrace } from "./Jaeger.ts"

const run = randomBytes(4).toString("hex")

/** `uri` with `user:password@` (percent-encoded) before its host and `database` as its path. */
const withCredentials = (uri: string, user: string, password: string, database: string) => {
  const [, scheme, hosts, options] = /^(mongodb(?:\+srv)?:\/\/)(?:[^@/]*@)?([^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(uri) ?? []
  assert.isDefined(hosts, `a MongoDB URI: ${uri}`)
  return `${scheme}${encodeURIComponent(user)}:${encodeURIComponent(password)}@${hosts}/${database}${options ?? ""}`
}

/** Every name, attribute value, status message and event of `spans`, as text. */
const spanText = (spans: ReadonlyArray<ReadableSpan>) =>
  JSON.stringify(spans.map((span) => ({
    name: span.name,
    status: span.status,
    attributes: span.attributes,
    events: span.events.map((event) => ({ name: event.name, attributes: event.attributes }))
  })))

/** A password with characters a URI must encode, unique per run. */
const password = `pa$$:w@rd/${randomBytes(6).toString("hex")}`

/** The forms the password could leak in: as is, percent-encoded, and its random tail alone. */
const passwordForms = [password, encodeURIComponent(password), password.slice(-12)]

const assertNoPassword = (text: string, where: string) => {
  for (const form of passwordForms) assert.notInclude(text, form, where)
}

/** MongoStorage and MongoMonitor over `Mongo.layer(uri)`. */
const MongoStack = (uri: string) =>
  Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(
    Layer.provideMerge(Mongo.layer(uri, { serverSelectionTimeout: "1 second" }))
  )

/** In-memory spans and a fresh registry with the DAG's metrics on it, as MongoStorage needs. */
const DagTest = DagMetrics.layer().pipe(Layer.provideMerge(ObservabilityTest))

/** A port of 127.0.0.1 nothing listens on. */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const probe = createTcpServer()
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as AddressInfo
      probe.close(() => resolve(port))
    })
  })
)

const json = { "content-type": "application/json" }

describe("a secret memo", () => {
  it.live("is stored and read back, yet in no span exported to Jaeger, log line, metric or error answer", () =>
    Effect.gen(function*() {
      const secret = `memo-secret-${randomBytes(12).toString("hex")}`
      const traceId = randomBytes(16).toString("hex")
      const traceparent = `00-${traceId}-${randomBytes(8).toString("hex")}-01`
      const database = `dag_it_security_${run}`
      const mongodbUri = inject("mongodbUri").replace(/^(mongodb:\/\/[^/?]*)(?:\/[^?]*)?/, `$1/${database}`)
      const App = SendingDagApi.layer.pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
        Layer.provide(Layer.mergeAll(
          Poh.layerInProcess(),
          Presence.layerStatic({ nodes: [], failureRatio: 0 }),
          MongoStack(mongodbUri)
        )),
        Layer.provideMerge(DagMetrics.layer()),
        Layer.provideMerge(ObservabilityLive("sending-dag")),
        Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
          env: {
            OTEL_EXPORTER_OTLP_ENDPOINT: inject("otlpEndpoint"),
            OTEL_SERVICE_NAME: `dag-it-security-${run}`,
            PROMETHEUS_BIND: "127.0.0.1:0"
          }
        })))
      )
      const exchange = Effect.gen(function*() {
        const { address } = yield* HttpServer.HttpServer
        const base = HttpServer.formatAddress(address)
        const send = (path: string, body?: Record<string, unknown>) =>
          Effect.promise(async () => {
            const response = await fetch(`${base}${path}`, {
              method: body === undefined ? "GET" : "POST",
              headers: { ...json, traceparent },
              ...(body === undefined ? {} : { body: JSON.stringify(body) })
            })
            return { status: response.status, body: await response.text() }
          })
        const tx = { from: "alice", to: "bob", amount: 5, region: "eu-central", memo: secret }
        yield* Effect.log("exchange started")
        const posted = yield* send("/tx", tx)
        assert.strictEqual(posted.status, 201, posted.body)
        const { id } = JSON.parse(posted.body) as { readonly id: string }
        const found = yield* send(`/tx/${id}`)
        assert.strictEqual(found.status, 200)
        assert.strictEqual((JSON.parse(found.body) as { readonly memo: string }).memo, secret, "the memo is stored")
        const refused = [
          yield* send("/tx", { ...tx, amount: 0 }),
          yield* send("/tx", { ...tx, memo: secret.repeat(40) }),
          yield* send("/tx", { ...tx, from: 42 }),
          yield* send("/tx", { ...tx, extra: secret })
        ]
        for (const answer of refused) {
          assert.strictEqual(answer.status, 400, answer.body)
          assert.notInclude(answer.body, secret)
        }
        const { url } = yield* MetricsServer.MetricsServer
        const metrics = yield* Effect.promise(() => fetch(url).then((response) => response.text()))
        assert.include(metrics, "tx_committed_total{region=\"eu-central\"} 1")
        assert.notInclude(metrics, secret)
        assert.notInclude(metrics, id)
      })
      // Released here: the spans are flushed to Jaeger and the process's logs are all in.
      const { exit, lines } = yield* capturingOutput(Effect.provide(exchange, App))
      assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "")
      assert.isTrue(lines.some((line) => line.includes("exchange started")), "the capture saw the log")
      for (const line of lines) assert.notInclude(line, secret)

      // POST /tx, Presence.onlineNodes, Poh.request, Poh.sequence, Storage.persist, insert;
      // GET /tx/:id, Storage.find, find; the four refused POSTs.
      const trace = yield* fetchTrace(traceId, 13)
      const names = trace.spans.map((span) => span.operationName)
      for (const name of ["POST /tx", "Storage.persist", `insert ${database}.transactions`, "GET /tx/:id"]) {
        assert.include(names, name)
      }
      assert.notInclude(JSON.stringify(trace), secret, "no exported span holds the memo")
    }), 60_000)
})

describe("MongoDB credentials", () => {
  it.live("with the server down: no span, error or log line shows the password", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const uri = withCredentials(`mongodb://127.0.0.1:${port}`, "dag-user", password, "dag")
      const { exit, lines } = yield* capturingOutput(Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(MongoStack(uri)))
        assert.strictEqual(error._tag, "MongoUnavailable")
        assert.strictEqual(error.uri, `mongodb://***@127.0.0.1:${port}/dag`)
        for (const text of [error.message, String(error), JSON.stringify(error), String(error.stack)]) {
          assertNoPassword(text, "the error")
        }
        yield* Effect.logError("storage failed", Cause.fail(error))
      }).pipe(Effect.scoped))
      assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "")
      assert.isTrue(lines.some((line) => line.includes("MongoUnavailable")), "the capture saw the logged error")
      for (const line of lines) assertNoPassword(line, "a log line")
      assertNoPassword(spanText(yield* Testing.finishedSpans), "a span")
    }).pipe(Effect.provide(DagTest)))

  it.live("against FerretDB: refused, or served without showing the password in any span, error or log line", () =>
    Effect.gen(function*() {
      const database = `dag_it_credentials_${run}`
      const uri = withCredentials(inject("mongodbUri"), "dag-user", password, database)
      const { exit, lines } = yield* capturingOutput(Effect.gen(function*() {
        const built = yield* Effect.exit(Layer.build(MongoStack(uri)))
        if (Exit.isFailure(built)) {
          const error = Cause.squash(built.cause) as Mongo.MongoUnavailable
          assert.strictEqual(error._tag, "MongoUnavailable")
          for (const text of [error.message, String(error), JSON.stringify(error)]) assertNoPassword(text, "the error")
          yield* Effect.logError("storage failed", built.cause)
          return "refused" as const
        }
        const storage = Context.get(built.value, Storage.Storage)
        const stored = new Storage.StoredTransaction({
          id: `tx-${run}`,
          from: "alice",
          to: "bob",
          amount: 5,
          region: "eu-central",
          ack: new Poh.PohAck({ seq: 1, hash: "ab".repeat(32), timestamp: new Date().toISOString(), node: "poh-1" })
        })
        yield* storage.persist(stored)
        assert.isTrue(Option.isSome(yield* storage.find(stored.id)))
        yield* Effect.log("stored with credentials")
        return "served" as const
      }).pipe(Effect.scoped))
      assert.isTrue(Exit.isSuccess(exit), Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "")
      const outcome = Exit.isSuccess(exit) ? exit.value : "failed"
      // FerretDB 1.24 without authentication configured refuses credentials (SCRAM is not supported): pinned.
      if (inject("mongodbVersion").startsWith("FerretDB")) assert.strictEqual(outcome, "refused")
      assert.isTrue(lines.some((line) => /storage failed|stored with credentials/.test(line)), "the capture saw a log")
      for (const line of lines) assertNoPassword(line, "a log line")
      const spans = yield* Testing.finishedSpans
      if (outcome === "served") assert.isAbove(spans.filter((span) => span.name.startsWith("insert ")).length, 0)
      assertNoPassword(spanText(spans), "a span")
    }).pipe(Effect.provide(DagTest)))
})
