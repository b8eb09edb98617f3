/**
 * The example network under faults (SPEC §8), each test with its own PoH node
 * and sending DAG as child processes under a steady load of ~20 tx/s:
 *
 * - the OTLP collector (a Jaeger of the test's own) absent at start, stopped
 *   mid-load and restarted: no request fails or slows, memory stays bounded,
 *   the export outcomes are counted and export resumes by itself;
 * - MongoDB (a FerretDB of the test's own) stopped mid-load and restarted:
 *   503 with a JSON error and an ERROR `Storage.persist` span meanwhile, 201
 *   again after, and every acknowledged transaction in the database;
 * - the PoH node killed (503) or stopped (504 after the 2 s PoH timeout), then
 *   back: 201 again without restarting the sending DAG;
 * - SIGTERM to the sending DAG (two workers): in-flight requests drain in
 *   each worker, spans are flushed, MongoDB is closed and the process exits 0; a second SIGTERM while a hung
 *   collector holds up the flush exits 130 at once.
 *
 * Reconnection is grpc-js's: a channel that failed retries with exponential
 * backoff (1 s, ×1.6, jitter ±20 %, up to 120 s), and calls made meanwhile
 * fail at once. So export resumes a few seconds after the collector is back
 * (2–6 s measured after outages of 5–20 s; longer outages, longer waits, up
 * to two minutes), spans of that gap counted `failed`; likewise the sending
 * DAG answers 503 for up to a few seconds after a PoH node comes back.
 */
import { randomBytes } from "node:crypto"
import { type AddressInfo, createConnection, createServer, type Server, type Socket } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { startFerretDB, startJaeger } from "../../servers/Servers.ts"
import { byName, fetchTrace, tag, traceStatus } from "./Jaeger.ts"
import { type Answer, inPhase, type Load, quantile, steadyLoad, summary } from "./Load.ts"
import {
  dropDatabaseAtEnd,
  exitTimeoutMs,
  freePorts,
  http,
  logged,
  type Node,
  pinging,
  sample,
  scrape,
  spawnNode,
  startNetwork,
  storedTransactions,
  whileRunning,
  withDatabase,
  withOutputs
} from "./Network.ts"

/** Requests per second of the steady load. */
const rate = 20

/** Unique per run, so that nothing another run sent to a shared Jaeger or MongoDB is mistaken for ours. */
const run = randomBytes(4).toString("hex")

const sleep = (ms: number) => Effect.sleep(ms)

/** Waits until `check` holds, polling every 200 ms for at most `timeoutMs`; the time it took in ms. */
const until = (what: string, check: () => Effect.Effect<boolean, unknown>, timeoutMs: number) =>
  Effect.gen(function*() {
    const started = Date.now()
    while (!(yield* check())) {
      if (Date.now() - started > timeoutMs) return yield* Effect.die(new Error(`not ${what} within ${timeoutMs} ms`))
      yield* sleep(200)
    }
    return Date.now() - started
  })

/** Waits until an answer sent after `since` (ms) has `outcome`; the time from `since` to that request's answer. */
const answered = (load: Load, outcome: number, since: number, timeoutMs: number) =>
  until(
    `a ${outcome} to a request sent after the fault ended`,
    () => Effect.sync(() => load.answers.some((answer) => answer.sentAt >= since && answer.outcome === outcome)),
    timeoutMs
  ).pipe(Effect.map(() => {
    const first = load.answers.find((answer) => answer.sentAt >= since && answer.outcome === outcome)!
    return Math.round(first.sentAt + first.ms - since)
  }))

/** Asserts every answer is `outcome`, naming the others. */
const assertAll = (answers: ReadonlyArray<Answer>, outcome: number, what: string) => {
  assert.isAbove(answers.length, 0, `${what}: some requests`)
  const others = answers.filter((answer) => answer.outcome !== outcome)
  assert.deepStrictEqual(
    others.map((answer) => `${answer.outcome} ${answer.detail || JSON.stringify(answer.body)}`),
    [],
    `${what}: every answer ${outcome}`
  )
}

/** Asserts a failure answer: `status` with the JSON body `{"error": string}`. */
const assertError = (answer: Answer, status: number) => {
  assert.strictEqual(answer.outcome, status, `${answer.outcome} ${answer.detail}`)
  assert.deepStrictEqual(Object.keys(answer.body as object), ["error"], JSON.stringify(answer.body))
  assert.isString((answer.body as { error: unknown }).error)
}

/** The ids of the 201 answers. */
const committedIds = (answers: ReadonlyArray<Answer>) =>
  answers.filter((answer) => answer.outcome === 201).map((answer) => (answer.body as { id: string }).id)

/** How slow a p99 under a fault may be, given the baseline's: 3× plus 50 ms. */
const latencyBound = (baselineP99: number) => 3 * baselineP99 + 50

/** The PoH request counters of the sending DAG, by status. */
interface PohCounts {
  readonly ok: number
  readonly error: number
  readonly timeout: number
}

const pohCounts = (samples: ReadonlyMap<string, number>): PohCounts => ({
  ok: sample(samples, "poh_requests_total", { status: "ok" }),
  error: sample(samples, "poh_requests_total", { status: "error" }),
  timeout: sample(samples, "poh_requests_total", { status: "timeout" })
})

const delta = (from: PohCounts, to: PohCounts): PohCounts => ({
  ok: to.ok - from.ok,
  error: to.error - from.error,
  timeout: to.timeout - from.timeout
})

/** How many answers had `outcome`. */
const count = (answers: ReadonlyArray<Answer>, outcome: number) =>
  answers.filter((answer) => answer.outcome === outcome).length

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MB`

/** The counters of interest of one `/metrics` scrape of the sending DAG. */
const dagCounters = (samples: ReadonlyMap<string, number>) => ({
  exported: sample(samples, "otlp_exported_spans_total", { outcome: "exported" }),
  failed: sample(samples, "otlp_exported_spans_total", { outcome: "failed" }),
  dropped: sample(samples, "otlp_exported_spans_total", { outcome: "dropped" }),
  heap: sample(samples, "nodejs_heap_size_used_bytes"),
  rss: sample(samples, "process_resident_memory_bytes")
})

/** Samples the sending DAG's heap and RSS every second, by the load's phase at the time, while the scope is open. */
const sampleMemory = (metricsUrl: string, load: Load) =>
  Effect.gen(function*() {
    const samples: Array<{ readonly phase: string; readonly heap: number; readonly rss: number }> = []
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.flatMap(
          Effect.option(Effect.map(scrape(metricsUrl), dagCounters)),
          (scraped) =>
            Effect.sync(() => {
              if (scraped._tag === "Some") samples.push({ phase: load.phase, ...scraped.value })
            })
        ).pipe(Effect.andThen(sleep(1_000)))
      )
    )
    const peak = (phases: ReadonlyArray<string>) => {
      const chosen = samples.filter((taken) => phases.includes(taken.phase))
      return {
        heap: Math.max(...chosen.map((taken) => taken.heap)),
        rss: Math.max(...chosen.map((taken) => taken.rss)),
        n: chosen.length
      }
    }
    return { peak }
  })

/** A Jaeger of the test's own, stopped with the scope; `stop()`/`start()` keep its ports. */
const ownJaeger = Effect.acquireRelease(
  Effect.promise(() => startJaeger()),
  (jaeger) => Effect.promise(() => jaeger.stop())
)

/** A TCP server on a free port of 127.0.0.1 that hands each connection to `onConnection`; closed with the scope. */
const tcpServer = (onConnection: (socket: Socket) => void) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ server: Server; port: number; sockets: Set<Socket> }>((resolve, reject) => {
        const sockets = new Set<Socket>()
        const server = createServer((socket) => {
          sockets.add(socket)
          socket.once("close", () => sockets.delete(socket))
          socket.on("error", () => undefined)
          onConnection(socket)
        })
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as AddressInfo).port, sockets }))
      })
    ),
    ({ server, sockets }) =>
      Effect.promise(() => {
        for (const socket of sockets) socket.destroy()
        return new Promise((resolve) => server.close(resolve))
      })
  )

/** Sends `signal` to a child. */
const signal = (node: Node, name: NodeJS.Signals) => Effect.sync(() => node.child.kill(name))

/** The child's exit, or a failure after `timeoutMs`; with the time it took from now. */
const exitWithin = (node: Node, timeoutMs: number) =>
  Effect.gen(function*() {
    const started = Date.now()
    const exit = yield* Effect.promise(() => node.closed).pipe(
      Effect.timeoutOrElse({
        duration: timeoutMs,
        orElse: () => Effect.die(new Error(`${node.name} did not exit within ${timeoutMs} ms`))
      })
    )
    return { ...exit, ms: Date.now() - started }
  })

describe("faults", () => {
  it.live(
    "collector absent at start, stopped mid-load, restarted: all 201, latency and memory bounded, export resumes",
    () =>
      Effect.gen(function*() {
        const jaeger = yield* ownJaeger
        yield* Effect.promise(() => jaeger.stop())
        const mongodbUri = withDatabase(inject("mongodbUri"), `dag_faults_otlp_${run}`)
        yield* dropDatabaseAtEnd(mongodbUri)
        const net = yield* startNetwork({
          dag: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, MONGODB_URI: mongodbUri }
        })
        const counters = Effect.map(scrape(net.dagMetrics), dagCounters)
        const load = yield* steadyLoad(net.dagUrl, rate, "absent")
        const memory = yield* sampleMemory(net.dagMetrics, load)

        // No collector from the start: requests answered, spans counted as failed.
        yield* sleep(5_000)
        const absent = yield* counters
        console.log(`collector absent: ${summary(inPhase(load, "absent"))}; spans ${JSON.stringify(absent)}`)

        // The collector comes up: export starts by itself.
        load.phase = "starting"
        yield* Effect.promise(() => jaeger.start())
        const firstExport = yield* until("exported after the collector started", () =>
          Effect.map(counters, (now) => now.exported > 0), 60_000)
        console.log(`collector started: first spans exported after ${firstExport} ms`)

        load.phase = "baseline"
        yield* sleep(8_000)
        const beforeOutage = yield* counters
        const baseline = inPhase(load, "baseline")
        const before = yield* fetchTrace(baseline.at(-1)!.traceId, 6, jaeger.queryUrl)
        console.log(`baseline: trace of the last request in Jaeger with ${before.spans.length} spans`)

        // Stopped mid-load, for long enough to fill the batch queue if exports held spans.
        yield* Effect.promise(() => jaeger.stop())
        load.phase = "outage"
        yield* sleep(20_000)
        const afterOutage = yield* counters

        // Restarted: export resumes by itself.
        load.phase = "restarted"
        yield* Effect.promise(() => jaeger.start())
        const resumed = yield* until("exporting again after the collector restarted", () =>
          Effect.map(counters, (now) => now.exported > afterOutage.exported), 60_000)
        const resumedAt = Date.now()
        console.log(`collector restarted: export resumed ${resumed} ms after it answered`)
        yield* sleep(3_000)
        yield* Effect.promise(() => load.pause())
        const end = yield* counters
        const traced = inPhase(load, "restarted").filter((answer) => answer.sentAt > resumedAt).at(-1)

        const outage = inPhase(load, "outage")
        for (const phase of ["absent", "starting", "baseline", "outage", "restarted"]) {
          console.log(`${phase}: ${summary(inPhase(load, phase))}`)
          assertAll(inPhase(load, phase), 201, phase)
        }
        const baselineP99 = quantile(baseline, 0.99)
        for (const phase of ["absent", "outage", "restarted"]) {
          const p99 = quantile(inPhase(load, phase), 0.99)
          assert.isAtMost(p99, latencyBound(baselineP99), `${phase} p99 ${p99} ms vs baseline ${baselineP99} ms`)
        }

        console.log(
          `spans before the outage ${JSON.stringify(beforeOutage)}, after ${JSON.stringify(afterOutage)}, ` +
            `at the end ${JSON.stringify(end)}`
        )
        // Bounded: the peak of the heap's sawtooth over the 20 s outage is not above its peak before it, with slack.
        const peakBefore = memory.peak(["absent", "starting", "baseline"])
        const peakOutage = memory.peak(["outage"])
        console.log(
          `memory: ${outage.length} requests in the outage; heap ${mb(beforeOutage.heap)} → ` +
            `${mb(afterOutage.heap)}, ` +
            `RSS ${mb(beforeOutage.rss)} → ${mb(afterOutage.rss)}; peak heap ${mb(peakBefore.heap)} in ` +
            `${peakBefore.n} samples before → ${mb(peakOutage.heap)} in ${peakOutage.n} during; ` +
            `peak RSS ${mb(peakBefore.rss)} → ${mb(peakOutage.rss)}`
        )
        assert.isAbove(absent.failed + absent.dropped, 0, "spans failed while the collector was absent")
        assert.strictEqual(absent.exported, 0, "nothing exported while the collector was absent")
        assert.isAbove(
          afterOutage.failed + afterOutage.dropped,
          beforeOutage.failed + beforeOutage.dropped,
          "spans failed or dropped during the outage"
        )
        assert.isAbove(end.exported, afterOutage.exported, "exported again after the restart")
        assert.isAtMost(peakOutage.heap, peakBefore.heap + 48 * 2 ** 20, "heap bounded during the outage")
        assert.isAtMost(peakOutage.rss, peakBefore.rss + 128 * 2 ** 20, "RSS bounded during the outage")

        // Traces from before the outage are gone with the restarted Jaeger's memory; those after it arrive.
        assert.isDefined(traced, "a request answered after export resumed")
        const trace = yield* fetchTrace(traced!.traceId, 6, jaeger.queryUrl)
        assert.strictEqual(tag(byName(trace).get("POST /tx"), "http.response.status_code"), 201)
        console.log(`trace ${traced!.traceId} of a request after the restart: ${trace.spans.length} spans`)
      }).pipe(Effect.scoped, withOutputs),
    180_000
  )
  it.live(
    "MongoDB stopped mid-load, then restarted: 503 JSON and ERROR span meanwhile, recovery, no acknowledged tx lost",
    () =>
      Effect.gen(function*() {
        const ferretdb = yield* Effect.acquireRelease(
          Effect.promise(() => startFerretDB()),
          (server) => Effect.promise(() => server.dispose())
        )
        const database = `dag_faults_mongo_${run}`
        const net = yield* startNetwork({ dag: { MONGODB_URI: withDatabase(ferretdb.uri, database) } })
        const counters = Effect.map(scrape(net.dagMetrics), (samples) => ({
          http503: sample(samples, "http_server_request_duration_seconds_count", { status_code: "503" }),
          http201: sample(samples, "http_server_request_duration_seconds_count", { status_code: "201" }),
          pohOk: sample(samples, "poh_requests_total", { status: "ok" }),
          committed: sample(samples, "tx_committed_total"),
          insertOk: sample(samples, "mongodb_command_duration_seconds_count", {
            command: "insert",
            outcome: "success"
          }),
          commandsFailed: sample(samples, "mongodb_command_duration_seconds_count", { outcome: "failure" })
        }))
        const load = yield* steadyLoad(net.dagUrl, rate, "baseline")
        yield* sleep(4_000)
        yield* Effect.promise(() => load.pause())
        const before = yield* counters

        load.phase = "outage"
        load.resume()
        yield* Effect.promise(() => ferretdb.stop())
        yield* sleep(6_000)
        yield* Effect.promise(() => load.pause())
        const during = yield* counters

        load.phase = "restarting"
        load.resume()
        yield* Effect.promise(() => ferretdb.start())
        const startedAt = Date.now()
        const recovery = yield* answered(load, 201, startedAt, 30_000)
        load.phase = "recovered"
        yield* sleep(4_000)
        yield* Effect.promise(() => load.pause())
        const after = yield* counters
        console.log(`MongoDB restarted: first 201 ${recovery} ms after it answered a ping`)

        for (const phase of ["baseline", "outage", "restarting", "recovered"]) {
          console.log(`${phase}: ${summary(inPhase(load, phase))}`)
        }
        console.log(`counters: before ${JSON.stringify(before)}, after the outage ${JSON.stringify(during)}, ` +
          `at the end ${JSON.stringify(after)}`)
        assertAll(inPhase(load, "baseline"), 201, "baseline")
        assertAll(inPhase(load, "recovered"), 201, "recovered")
        const outage = inPhase(load, "outage")
        const failed = outage.filter((answer) => answer.outcome !== 201)
        assert.isAbove(failed.length, outage.length / 2, `most requests of the outage fail: ${summary(outage)}`)
        for (const answer of [...failed, ...inPhase(load, "restarting").filter((a) => a.outcome !== 201)]) {
          assertError(answer, 503)
        }

        // The outage as the metrics tell it: each 503 counted, PoH still fine, nothing committed but the 201s.
        const committedInOutage = outage.length - failed.length
        assert.deepStrictEqual({
          http503: during.http503 - before.http503,
          http201: during.http201 - before.http201,
          pohOk: during.pohOk - before.pohOk,
          committed: during.committed - before.committed,
          insertOk: during.insertOk - before.insertOk
        }, {
          http503: failed.length,
          http201: committedInOutage,
          pohOk: outage.length,
          committed: committedInOutage,
          insertOk: committedInOutage
        })
        const recovered = [...inPhase(load, "restarting"), ...inPhase(load, "recovered")]
        assert.strictEqual(after.committed - during.committed, committedIds(recovered).length, "committed after")
        assert.isAbove(after.insertOk, during.insertOk, "inserts succeed again")

        // The trace of a 503: Storage.persist is ERROR, and so is the server span.
        const trace = yield* fetchTrace(failed.at(-1)!.traceId, 5)
        const spans = byName(trace)
        console.log(`trace of a 503: ${[...spans.keys()].join(", ")}; Storage.persist tags ` +
          JSON.stringify(spans.get("Storage.persist")?.tags))
        assert.strictEqual(tag(spans.get("Storage.persist"), "error"), true, "Storage.persist is ERROR")
        assert.strictEqual(tag(spans.get("Storage.persist"), "otel.status_code"), "ERROR")
        assert.strictEqual(tag(spans.get("POST /tx"), "http.response.status_code"), 503)
        assert.strictEqual(tag(spans.get("POST /tx"), "error"), true)

        // Every acknowledged transaction is stored, and nothing else.
        const acknowledged = committedIds(load.answers)
        const stored = (yield* storedTransactions(withDatabase(ferretdb.uri, database))).map((document) => String(document._id))
        console.log(`${acknowledged.length} transactions acknowledged with 201, ${stored.length} stored`)
        assert.strictEqual(stored.length, acknowledged.length)
        assert.deepStrictEqual(stored.toSorted(), acknowledged.toSorted())
      }).pipe(Effect.scoped, withOutputs),
    120_000
  )

  it.live(
    "PoH node killed then restarted, stopped then continued: 503 / 504 counted per attempt, then 201 again",
    () =>
      Effect.gen(function*() {
        const net = yield* startNetwork()
        const counters = Effect.map(scrape(net.dagMetrics), pohCounts)
        const load = yield* steadyLoad(net.dagUrl, rate, "baseline")
        yield* sleep(3_000)
        yield* Effect.promise(() => load.pause())
        const start = yield* counters

        // Killed: every request fails after its three attempts (the default retry schedule), each counted.
        yield* signal(net.poh, "SIGKILL")
        yield* Effect.promise(() => net.poh.closed)
        load.phase = "killed"
        load.resume()
        yield* sleep(4_000)
        yield* Effect.promise(() => load.pause())
        const killed = yield* counters
        const killedAnswers = inPhase(load, "killed")
        for (const answer of killedAnswers) assertError(answer, 503)
        assert.deepStrictEqual(delta(start, killed), { ok: 0, error: 3 * killedAnswers.length, timeout: 0 })

        // Back on the same port: 201 again, the sending DAG untouched.
        const poh = yield* spawnNode("poh-node (restarted)", "poh-node.ts", net.pohEnv)
        yield* whileRunning("the PoH node listened again", logged(poh, /gRPC on (\S+);/), [poh, net.dag])
        const restartedAt = Date.now()
        load.phase = "restarting"
        load.resume()
        const recovery = yield* answered(load, 201, restartedAt, 30_000)
        load.phase = "recovered"
        yield* sleep(3_000)
        yield* Effect.promise(() => load.pause())
        const recovered = yield* counters
        for (const answer of inPhase(load, "restarting")) {
          if (answer.outcome !== 201) assertError(answer, 503)
        }
        assertAll(inPhase(load, "recovered"), 201, "after the restart")

        // Stopped (SIGSTOP): no ACK within the 2 s PoH timeout, 504, counted once as a timeout (not retried).
        yield* signal(poh, "SIGSTOP")
        load.phase = "stopped"
        load.resume()
        yield* sleep(4_000)
        yield* Effect.promise(() => load.pause())
        const stopped = yield* counters
        const stoppedAnswers = inPhase(load, "stopped")
        for (const answer of stoppedAnswers) assertError(answer, 504)
        assert.deepStrictEqual(delta(recovered, stopped), { ok: 0, error: 0, timeout: stoppedAnswers.length })
        assert.isAtLeast(quantile(stoppedAnswers, 0), 2_000, "a 504 only after the 2 s PoH timeout")

        // Continued (SIGCONT): 201 again.
        yield* signal(poh, "SIGCONT")
        const continuedAt = Date.now()
        load.phase = "continuing"
        load.resume()
        const resumed = yield* answered(load, 201, continuedAt, 30_000)
        load.phase = "continued"
        yield* sleep(3_000)
        yield* Effect.promise(() => load.pause())
        assertAll(inPhase(load, "continued"), 201, "after SIGCONT")
        assert.strictEqual(net.dag.exit, undefined, "the sending DAG never restarted")

        for (const phase of ["baseline", "killed", "restarting", "recovered", "stopped", "continuing", "continued"]) {
          console.log(`${phase}: ${summary(inPhase(load, phase))}`)
        }
        console.log(
          `poh_requests_total: killed ${JSON.stringify(delta(start, killed))} for ${killedAnswers.length} ` +
            `requests; stopped ${JSON.stringify(delta(recovered, stopped))} for ${stoppedAnswers.length} requests; ` +
            `first 201 ${recovery} ms after the restarted node listened, ${resumed} ms after SIGCONT; ` +
            `503s while reconnecting: ${count(inPhase(load, "restarting"), 503)}`
        )
      }).pipe(Effect.scoped, withOutputs),
    120_000
  )

  it.live(
    "SIGTERM during load, 2 workers: in-flight requests drain in both, no reset, spans flushed, MongoDB closed, exit 0",
    () =>
      Effect.gen(function*() {
        // MongoDB through a proxy that sees what the client sends: `endSessions` is the driver's close.
        const mongo = new URL(inject("mongodbUri"))
        let toMongo = Buffer.alloc(0)
        let endSessions = 0
        const proxy = yield* tcpServer((socket) => {
          const upstream = createConnection(Number(mongo.port), mongo.hostname)
          upstream.on("error", () => socket.destroy())
          socket.on("data", (chunk: Buffer) => {
            toMongo = Buffer.concat([toMongo.subarray(-64), chunk])
            if (toMongo.includes("endSessions")) endSessions += 1
          })
          socket.pipe(upstream).pipe(socket)
          socket.once("close", () => upstream.destroy())
        })
        const database = `dag_faults_shutdown_${run}`
        const mongodbUri = withDatabase(`mongodb://127.0.0.1:${proxy.port}/`, database)
        yield* dropDatabaseAtEnd(withDatabase(inject("mongodbUri"), database))
        const net = yield* startNetwork({ dag: { MONGODB_URI: mongodbUri, SENDING_DAG_WORKERS: "2" } })
        const load = yield* steadyLoad(net.dagUrl, rate, "before")
        yield* sleep(3_000)

        // Requests held in flight: the PoH node stopped, so they wait for their ACK when SIGTERM comes.
        yield* signal(net.poh, "SIGSTOP")
        load.phase = "in flight"
        const held = Array.from({ length: 5 }, () => load.send())
        yield* sleep(300)
        load.phase = "after SIGTERM"
        const signalled = Date.now()
        yield* signal(net.dag, "SIGTERM")
        yield* sleep(300)
        yield* signal(net.poh, "SIGCONT")
        const exit = yield* exitWithin(net.dag, exitTimeoutMs)
        const exitMs = Date.now() - signalled
        const heldAnswers = yield* Effect.promise(() => Promise.all(held))
        yield* Effect.promise(() => load.pause())
        const late = yield* Effect.promise(() => load.send())

        for (const phase of ["before", "in flight", "after SIGTERM"]) {
          console.log(`${phase}: ${summary(inPhase(load, phase))}`)
        }
        console.log(
          `exit ${JSON.stringify(exit)} ${exitMs} ms after SIGTERM; endSessions sent ${endSessions} time(s); ` +
            `a request after the exit: ${late.outcome}`
        )
        assert.deepStrictEqual({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, "exit 0")
        for (const worker of [1, 2]) {
          assert.isTrue(
            net.dag.output.some((line) => line.includes(`worker ${worker} stopped: exit code 0`)),
            `worker ${worker} drained and exited 0`
          )
        }
        assert.isAtMost(exitMs, 10_000, "exits within the shutdown timeout")
        assertAll(heldAnswers, 201, "requests in flight at SIGTERM")
        assertAll(inPhase(load, "before"), 201, "requests sent before the PoH node stopped")
        const closing = [...inPhase(load, "in flight"), ...inPhase(load, "after SIGTERM")]
        assert.deepStrictEqual(
          closing.filter((answer) => answer.outcome !== 201 && answer.outcome !== "refused" && answer.outcome !== "reset")
            .map((answer) => `${answer.outcome} ${answer.detail}`),
          [],
          "requests sent around SIGTERM: 201, refused, or reset before the service took them; never 5xx or truncated"
        )
        assert.strictEqual(late.outcome, "refused", "a connection after the exit is refused")
        assert.isAbove(endSessions, 0, "the MongoDB client was closed (endSessions sent)")

        // The last requests answered, during the shutdown, have their whole trace in Jaeger.
        for (const answer of heldAnswers) {
          const trace = yield* fetchTrace(answer.traceId, 8)
          const names = [...byName(trace).keys()].toSorted()
          const expected = ["POST /tx", "Poh.request", "Storage.persist", `insert ${database}.transactions`]
          assert.includeMembers(names, expected, `trace ${answer.traceId}`)
        }
        // A reset is HTTP/1.1's close race (RFC 9112 §9.6): a request written on a kept-alive connection as the
        // closing server drops it (its write can be queued before SIGTERM and sent after). Allowed only for a request
        // the service never took: nothing stored from it and no span of its trace, now that the shutdown's spans
        // are in Jaeger (a request cut off while handled would have both, or at least its interrupted spans).
        const resets = closing.filter((answer) => answer.outcome === "reset")
        const taken = yield* storedTransactions(withDatabase(inject("mongodbUri"), database), {
          from: { $in: resets.map((answer) => answer.from) }
        })
        assert.deepStrictEqual(taken.map((document) => document.from), [], "no transaction stored from a reset request")
        for (const reset of resets) {
          assert.strictEqual(yield* traceStatus(reset.traceId), 404, `no span of reset request ${reset.traceId}`)
        }
        console.log(`resets around SIGTERM (none taken by the service): ${resets.map((answer) => answer.detail).join("; ") || "none"}`)
      }).pipe(Effect.scoped, withOutputs),
    120_000
  )

  it.live(
    "SIGTERM with a hung collector: shutdown gives up within its timeout (exit 0); a second SIGTERM exits 130",
    () =>
      Effect.gen(function*() {
        // A collector that accepts connections and never answers: every export hangs.
        const hung = yield* tcpServer(() => undefined)
        const [httpPort, metricsPort, pohPort] = yield* freePorts(3)
        const dagUrl = `http://127.0.0.1:${httpPort}`
        const sendingDag = (name: string) =>
          spawnNode(name, "sending-dag.ts", {
            SENDING_DAG_BIND: `127.0.0.1:${httpPort}`,
            POH_ADDRESS: `127.0.0.1:${pohPort}`,
            SENDING_DAG_METRICS_BIND: `127.0.0.1:${metricsPort}`,
            OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${hung.port}`
          })
        /** Starts the DAG, makes spans waiting for export, sends SIGTERM; whether it is still running 1 s later. */
        const signalled = (name: string) =>
          Effect.gen(function*() {
            const dag = yield* sendingDag(name)
            yield* pinging(dagUrl, [dag])
            yield* Effect.forEach(Array.from({ length: 20 }), () => http(`${dagUrl}/ping`), { concurrency: 4 })
            yield* sleep(1_500)
            yield* signal(dag, "SIGTERM")
            yield* sleep(1_000)
            return { dag, running: dag.exit === undefined }
          })

        const once = yield* signalled("sending-dag (one SIGTERM)")
        const alone = yield* exitWithin(once.dag, exitTimeoutMs)
        const twice = yield* signalled("sending-dag (two SIGTERMs)")
        yield* signal(twice.dag, "SIGTERM")
        const forced = yield* exitWithin(twice.dag, 5_000)
        console.log(
          `hung collector (${hung.sockets.size} connection(s) open): one SIGTERM → exit ${alone.code} ` +
            `${1_000 + alone.ms} ms after it; a second SIGTERM 1 s after the first → exit ${forced.code} ` +
            `${forced.ms} ms after it`
        )
        assert.isTrue(once.running && twice.running, "shutdown still flushing 1 s after SIGTERM")
        assert.deepStrictEqual({ code: alone.code, signal: alone.signal }, { code: 0, signal: null })
        assert.isAtMost(1_000 + alone.ms, 10_000, "one SIGTERM: exits within the shutdown timeout")
        assert.deepStrictEqual({ code: forced.code, signal: forced.signal }, { code: 130, signal: null })
        assert.isBelow(forced.ms, alone.ms, "the second SIGTERM ends the shutdown early")
      }).pipe(Effect.scoped, withOutputs),
    120_000
  )
})
