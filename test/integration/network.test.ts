/**
 * The example network across processes: the Presence service
 * (examples/presence.ts), a PoH node announcing itself to it
 * (examples/poh-node.ts) and the sending DAG with two workers
 * (examples/sending-dag.ts) run as child processes on free loopback ports,
 * over the FerretDB and Jaeger of globalSetup, with a real Prometheus
 * scraping every `/metrics` (one target per worker). Transactions posted to
 * the sending DAG give the answers of SPEC §6, the counts of SPEC §4 on the
 * right process, exact when summed over the workers, and after SIGTERM (exit
 * 0, spans flushed) one trace of SPEC §5 spanning the three services.
 */
import { createHash, randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { byName, fetchTraces, type JaegerSpan, nameAndKind, parents, serviceOf, tag } from "./Jaeger.ts"
import { dropDatabaseAtEnd, http, mongoServer, newTraceparent, terminate, withDatabase, withOutputs } from "./Network.ts"
import { startPohNode, startPresence, startSendingDag, scrapeTarget } from "./Nodes.ts"
import { eventually, prometheusScraping, query, series } from "./Prometheus.ts"

/** The transactions posted: the traced one and N-1 more, in two of the default `DAG_REGIONS`. */
const total = 10
const regions = { "eu-central": 6, "us-east": 4 } as const

/** Unique per run, so that nothing another run sent to a shared Jaeger or MongoDB is mistaken for ours. */
const run = randomBytes(4).toString("hex")
const database = `dag_it_${run}`
const pohNodeName = `poh-it-${run}`

const iso8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

/** Asserts the `201` body of SPEC §6 for a transaction in `region`; returns it. */
const assertCommitted = (body: unknown, region: string, since: number) => {
  const committed = body as {
    id: string
    region: string
    ack: { seq: number; hash: string; timestamp: string; node: string }
  }
  assert.deepStrictEqual(Object.keys(committed).toSorted(), ["ack", "id", "region"], JSON.stringify(body))
  assert.isString(committed.id)
  assert.isNotEmpty(committed.id)
  assert.strictEqual(committed.region, region)
  assert.deepStrictEqual(Object.keys(committed.ack).toSorted(), ["hash", "node", "seq", "timestamp"])
  assert.isTrue(Number.isSafeInteger(committed.ack.seq), `ack.seq ${committed.ack.seq} is an integer`)
  assert.match(committed.ack.hash, /^[0-9a-f]{64}$/)
  assert.match(committed.ack.timestamp, iso8601)
  const stamped = Date.parse(committed.ack.timestamp)
  assert.isTrue(stamped >= since - 1_000 && stamped <= Date.now() + 1_000, `ack.timestamp ${committed.ack.timestamp}`)
  assert.strictEqual(committed.ack.node, pohNodeName)
  return committed
}

/** The node is in eu-central: us-east's transactions go to it across regions. */
const placement = (region: string) => ({ placement: region === "eu-central" ? "local" : "cross_region" })

/** The span's tags `keys` → values. */
const tags = (span: JaegerSpan | undefined, keys: ReadonlyArray<string>) =>
  Object.fromEntries(keys.map((key) => [key, tag(span, key)]))

describe("the example network across processes", () => {
  it.live(
    `${total} transactions: SPEC §6 answers, exact metrics summed over 2 workers in Prometheus, one trace across 3 services`,
    () =>
      Effect.gen(function*() {
        const services = { dag: `dag-it-sending-${run}`, poh: `dag-it-poh-${run}`, presence: `dag-it-presence-${run}` }
        const mongodbUri = withDatabase(inject("mongodbUri"), database)
        const mongo = mongoServer(mongodbUri)
        yield* dropDatabaseAtEnd(mongodbUri)

        const presence = yield* startPresence({ OTEL_SERVICE_NAME: services.presence })
        const poh = yield* startPohNode(pohNodeName, "eu-central", presence.address, { OTEL_SERVICE_NAME: services.poh })
        const grpcPort = Number(poh.address.split(":")[1])
        const { dag, url: dagUrl, metrics } = yield* startSendingDag(presence.address, 2, {
          OTEL_SERVICE_NAME: services.dag,
          MONGODB_URI: mongodbUri,
          DAG_NODES: pohNodeName
        })
        assert.lengthOf(metrics, 2, "one /metrics per worker")
        const ping = yield* http(`${dagUrl}/ping`)
        assert.deepStrictEqual(ping.body, { ok: true })
        const dagTargets = metrics.map(scrapeTarget)
        const pohTarget = scrapeTarget(poh.metrics)
        const presenceTarget = scrapeTarget(presence.metrics)
        const prometheus = yield* prometheusScraping([...dagTargets, pohTarget, presenceTarget])

        // What the transactions must move, summed over the sending DAG's workers, by label; nothing before the first.
        const dagOnly = `instance=~"${dagTargets.join("|")}"`
        const byRegion = (labels: (region: string) => Record<string, string>) =>
          Object.fromEntries(
            Object.entries(regions).map(([region, count]) => [series({ ...labels(region), region }), count])
          )
        const pohCall = { service: "poh.PohService", method: "Request", code: "OK" }
        const lookup = { service: "presence.PresenceService", method: "OnlineNodes", code: "OK" }
        const node = { node: pohNodeName }
        const expected: Record<string, Record<string, number>> = {
          [`sum by (region) (tx_committed_total{${dagOnly}})`]: byRegion(() => ({})),
          [`sum by (region, node) (poh_ack_total{${dagOnly}})`]: byRegion(() => node),
          [`sum by (region, node) (poh_approval_latency_seconds_count{${dagOnly}})`]: byRegion(() => node),
          [`sum by (region, status, node, placement) (poh_requests_total{${dagOnly}})`]: byRegion((region) => ({
            status: "ok",
            ...node,
            ...placement(region)
          })),
          [`sum by (region, outcome) (presence_calls_total{${dagOnly}})`]: byRegion(() => ({ outcome: "success" })),
          [`sum by (method, route, status_code) (http_server_request_duration_seconds_count{${dagOnly}, route=~"/tx.*"})`]:
            {
              [series({ method: "GET", route: "/tx/:id", status_code: "200" })]: 1,
              [series({ method: "GET", route: "/tx/:id", status_code: "404" })]: 1,
              [series({ method: "POST", route: "/tx", status_code: "201" })]: total
            },
          [`sum by (service, method, code) (grpc_client_latency_seconds_count{${dagOnly}})`]: {
            [series(pohCall)]: total,
            [series(lookup)]: total
          },
          "sum by (instance, service, method, code) (grpc_method_latency_seconds_count{method!=\"Announce\"})": {
            [series({ instance: pohTarget, ...pohCall })]: total,
            [series({ instance: presenceTarget, ...lookup })]: total
          },
          [`sum by (command, collection, outcome) (mongodb_command_duration_seconds_count{${dagOnly}, command="insert"})`]:
            { [series({ command: "insert", collection: "transactions", outcome: "success" })]: total },
          [`sum by (operation, collection) (storage_latency_seconds_count{${dagOnly}})`]: {
            [series({ operation: "insert", collection: "transactions" })]: total
          }
        }
        const counts = Effect.forEach(Object.keys(expected), (promql) =>
          Effect.map(query(prometheus, promql), (vector) => [promql, vector] as const)).pipe(Effect.map(Object.fromEntries))
        const targets = dagTargets.length + 2
        yield* eventually(query(prometheus, "up == 1"), (vector) => Object.keys(vector).length === targets)
        assert.deepStrictEqual(
          yield* counts,
          Object.fromEntries(Object.keys(expected).map((promql) => [promql, {}])),
          "no counts before the first transaction"
        )

        // The traced transaction, continuing a trace of ours.
        const since = Date.now()
        const parent = newTraceparent()
        const memo = `memo-${randomBytes(12).toString("hex")}`
        const first = { from: "alice", to: "bob", amount: 5, region: "eu-central", memo }
        const posted = yield* http(`${dagUrl}/tx`, {
          method: "POST",
          headers: { "content-type": "application/json", traceparent: parent.header },
          body: JSON.stringify(first)
        })
        assert.strictEqual(posted.status, 201, JSON.stringify(posted.body))
        assert.include(posted.contentType, "application/json")
        const committed = assertCommitted(posted.body, "eu-central", since)
        assert.strictEqual(committed.ack.seq, 1, "the first ACK of a fresh PoH node")

        const found = yield* http(`${dagUrl}/tx/${encodeURIComponent(committed.id)}`)
        assert.strictEqual(found.status, 200, JSON.stringify(found.body))
        assert.deepStrictEqual(found.body, { ...first, id: committed.id, ack: committed.ack })
        const missing = yield* http(`${dagUrl}/tx/no-such-${run}`)
        assert.strictEqual(missing.status, 404)
        assert.include(missing.contentType, "application/json")
        assert.deepStrictEqual(missing.body, { error: `no transaction no-such-${run}` })

        // The other N-1, three at a time.
        const more = Object.entries(regions).flatMap(([region, count]) =>
          Array.from({ length: region === first.region ? count - 1 : count }, (_, i) => ({
            from: `sender-${i}`,
            to: "receiver",
            amount: i + 1,
            region
          }))
        )
        assert.lengthOf(more, total - 1)
        const rest = yield* Effect.forEach(more, (tx) =>
          http(`${dagUrl}/tx`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(tx)
          }).pipe(Effect.map((answer) => {
            assert.strictEqual(answer.status, 201, JSON.stringify(answer.body))
            return assertCommitted(answer.body, tx.region, since)
          })), { concurrency: 3 })
        const answered = Date.now() / 1000

        // One PoH chain: seq 1..N, each hash the SHA-256 of the previous one and the transaction id.
        const chain = [committed, ...rest].toSorted((a, b) => a.ack.seq - b.ack.seq)
        assert.deepStrictEqual(chain.map((tx) => tx.ack.seq), Array.from({ length: total }, (_, i) => i + 1))
        chain.reduce((previous, tx) => {
          assert.strictEqual(tx.ack.hash, createHash("sha256").update(previous).update(tx.id).digest("hex"))
          return tx.ack.hash
        }, "0".repeat(64))

        // Every metric was recorded before its answer was sent, so a scrape of each target that began after
        // the last answer holds the final values; the processes are fresh, so these are the movements.
        yield* eventually(query(prometheus, "timestamp(up)"), (vector) =>
          Object.keys(vector).length === targets && Object.values(vector).every((scraped) => scraped > answered))
        assert.deepStrictEqual(yield* counts, expected)
        const perWorker = yield* query(prometheus, `sum by (instance) (tx_committed_total{${dagOnly}})`)
        console.log(`transactions by worker: ${JSON.stringify(perWorker)}`)
        assert.lengthOf(Object.values(perWorker).filter((count) => count > 0), 2, "both workers served transactions")

        // SIGTERM: each stops, flushing its spans, and exits 0 (the sending DAG once both its workers have).
        const exits = yield* Effect.all([terminate(dag), terminate(poh.node), terminate(presence.node)], {
          concurrency: 3
        })
        assert.deepStrictEqual([...exits], Array.from({ length: 3 }, () => ({ code: 0, signal: null })), "exits after SIGTERM")

        const traces = yield* fetchTraces(parent.traceId, 10)
        assert.lengthOf(traces, 1, "one trace")
        const trace = traces[0]!
        assert.deepStrictEqual(new Set(trace.spans.map((span) => span.traceID)), new Set([parent.traceId]))
        const spans = byName(trace, nameAndKind)
        assert.strictEqual(spans.size, trace.spans.length, `distinct spans: ${trace.spans.map(nameAndKind).join(", ")}`)
        const insert = `insert ${database}.transactions (client)`
        assert.deepStrictEqual(parents(trace, nameAndKind), {
          "POST /tx (server)": null,
          "Presence.onlineNodes (internal)": "POST /tx (server)",
          "presence.PresenceService/OnlineNodes (client)": "Presence.onlineNodes (internal)",
          "presence.PresenceService/OnlineNodes (server)": "presence.PresenceService/OnlineNodes (client)",
          "Poh.request (internal)": "POST /tx (server)",
          "poh.PohService/Request (client)": "Poh.request (internal)",
          "poh.PohService/Request (server)": "poh.PohService/Request (client)",
          "Poh.sequence (internal)": "poh.PohService/Request (server)",
          "Storage.persist (internal)": "POST /tx (server)",
          [insert]: "Storage.persist (internal)"
        })
        const root = spans.get("POST /tx (server)")
        assert.deepStrictEqual(root?.references, [
          { refType: "CHILD_OF", traceID: parent.traceId, spanID: parent.spanId }
        ], "the root's parent is the traceparent's span")
        const inPoh = new Set(["poh.PohService/Request (server)", "Poh.sequence (internal)"])
        const serviceOfSpan = (name: string) =>
          inPoh.has(name) ? services.poh : name === "presence.PresenceService/OnlineNodes (server)" ? services.presence : services.dag
        assert.deepStrictEqual(
          Object.fromEntries(trace.spans.map((span) => [nameAndKind(span), serviceOf(trace, span)])),
          Object.fromEntries([...spans.keys()].map((name) => [name, serviceOfSpan(name)]))
        )

        assert.deepStrictEqual(
          tags(root, ["http.request.method", "http.route", "http.response.status_code"]),
          { "http.request.method": "POST", "http.route": "/tx", "http.response.status_code": 201 }
        )
        const rpc = {
          "rpc.system": "grpc",
          "rpc.service": "poh.PohService",
          "rpc.method": "Request",
          "rpc.grpc.status_code": 0,
          "server.address": "127.0.0.1",
          "server.port": grpcPort
        }
        for (const kind of ["client", "server"]) {
          assert.deepStrictEqual(tags(spans.get(`poh.PohService/Request (${kind})`), Object.keys(rpc)), rpc, kind)
        }
        assert.strictEqual(tag(spans.get("poh.PohService/Request (client)"), "dag.poh.node"), pohNodeName)
        assert.deepStrictEqual(
          tags(spans.get("Poh.request (internal)"), ["dag.poh.node", "dag.poh.placement", "dag.poh.attempts"]),
          { "dag.poh.node": pohNodeName, "dag.poh.placement": "local", "dag.poh.attempts": 1 }
        )
        assert.strictEqual(tag(spans.get("presence.PresenceService/OnlineNodes (server)"), "rpc.grpc.status_code"), 0)
        assert.strictEqual(tag(spans.get("Presence.onlineNodes (internal)"), "dag.presence.online"), 1)
        assert.deepStrictEqual(
          tags(spans.get(insert), [
            "db.system.name",
            "db.operation.name",
            "db.collection.name",
            "db.namespace",
            "server.address",
            "server.port"
          ]),
          {
            "db.system.name": "mongodb",
            "db.operation.name": "insert",
            "db.collection.name": "transactions",
            "db.namespace": database,
            "server.address": mongo.address,
            "server.port": mongo.port
          }
        )
        assert.strictEqual(tag(spans.get("Poh.request (internal)"), "dag.region"), "eu-central")
        assert.strictEqual(tag(spans.get("Presence.onlineNodes (internal)"), "dag.region"), "eu-central")
        assert.strictEqual(tag(spans.get("Poh.sequence (internal)"), "poh.seq"), 1)
        assert.strictEqual(tag(spans.get("Storage.persist (internal)"), "dag.tx.id"), committed.id)
        for (const span of trace.spans) assert.isUndefined(tag(span, "error"), `${nameAndKind(span)} is not an error`)
        assert.notInclude(JSON.stringify(trace), memo, "no span holds the memo")
      }).pipe(Effect.scoped, withOutputs),
    120_000
  )
})
