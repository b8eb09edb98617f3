/**
 * HTTP, real path (issue 7, item 3): `POST /tx` on the sending DAG, which asks the PoH node over gRPC for its stamp
 * and writes the transaction to MongoDB (FerretDB, started here), with and without this library's tracing:
 *
 * - `bare`: bench/http/server.ts `bare` (`HttpRouter.serve`, Effect's tracer off) and bench/http/poh-node.ts
 *   `bare`; no OpenTelemetry provider in either process, so the library's gRPC interceptors and `MongoMonitor`
 *   still run and observe their histograms, but their spans are the OpenTelemetry API's no-op ones. Metrics on in
 *   both processes (all but the HTTP latency histogram, which `Http.serve` observes);
 * - `ours`: bench/http/server.ts `otlp` and bench/http/poh-node.ts `otlp`: `ObservabilityLive` in both processes
 *   as the examples deploy it, `Http.serve`, every request sampled (`parentbased_always_on`), the spans of both
 *   processes exported over OTLP gRPC to a Jaeger started here.
 *
 * Pinning on 2 cores: the sending DAG alone on core 0. This script pins itself to core 1 before it starts anything,
 * so FerretDB, Jaeger and the PoH node run there, beside the load generator (taskset -c 1), all at the same
 * priority: at saturation a collector at the lowest priority (nice 19) got too little of that core to keep up, and
 * the sending DAG dropped spans (its queue of 2048 full), which this bench counts as work not done. Both contenders
 * run with the same processes up (Jaeger idles during `bare`).
 *
 * Measured in two phases (bench/compare.ts): saturation req/s with autocannon, then p50/p99 at a constant rate
 * below saturation. Each run starts the PoH node and the sending DAG afresh with a database of its own, and passes
 * only if no answer was other than 2xx, `tx_committed_total` counts every 2xx answer, FerretDB holds a document for
 * each and the PoH node served a call for each (none of them more than the requests in flight when the load
 * stopped), and, for `ours`, each process's `otlp_exported_spans_total{outcome="exported"}` grew by at least the
 * committed count × its spans per request (counted first on one request's trace in Jaeger) with nothing failed or
 * dropped; for `bare`, that no Effect span was started and nothing exported.
 *
 * Run: `npm run bench:real` (ROUNDS, DURATION and WARMUP in seconds, CONNECTIONS, RATE in requests a second
 * override the defaults; PROFILE=<dir> profiles each sending DAG and PoH node under `<dir>/<contender>-<service>/`).
 */
import { fileURLToPath } from "node:url"
import { MongoClient } from "mongodb"
import { startFerretDB, startJaeger } from "../servers/Servers.ts"
import * as MongoStorage from "../src/dag/MongoStorage.ts"
import {
  compare,
  type Contender,
  eventually,
  goal,
  latencies,
  pinToCore1,
  printResults,
  settings,
  spansPerRequest
} from "./compare.ts"
import type { ExportReport } from "./http/child.ts"
import { type Child, childCpu, childEnv, profiling, startChild, transaction } from "./load.ts"

const machineLine = pinToCore1()

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const serverScript = here("./http/server.ts")
const pohScript = here("./http/poh-node.ts")

const services = { dag: "sending-dag", poh: "poh-node" } as const

interface DagReport extends ExportReport {
  readonly committed: number
  readonly effectSpans: number
}

interface PohReport extends ExportReport {
  readonly served: number
  readonly effectSpans: number
}

const ferretdb = await startFerretDB()
const jaeger = await startJaeger()
const mongo = new MongoClient(ferretdb.uri)
const env = (service: string) =>
  childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_SERVICE_NAME: service })

/** Spans one request leaves in each process, by service: counted on the first `ours` run. */
let perRequest: Record<string, number> | undefined

type Port = { readonly port: number }

/** The checks of one run: every 2xx answer stored, committed, stamped, and (`otlp`) its spans exported. */
const verify = async (
  kind: "bare" | "otlp",
  processes: { readonly dag: Child<Port, DagReport>; readonly poh: Child<Port, PohReport> },
  database: string,
  answered: number,
  slack: number
) => {
  let said = ""
  await eventually(`${kind}: ${answered} requests answered 2xx but`, async () => {
    const documents = await mongo.db(database).collection(MongoStorage.collectionName).countDocuments()
    const [dag, poh] = await Promise.all([processes.dag.report(), processes.poh.report()])
    const problems: Array<string> = []
    // A request in flight when the load generator stops and closes its connection is interrupted wherever it is:
    // stamped but not stored, or stored but not counted. Each step counts at least the one after it.
    const within = (value: number, least: number) => value >= least && value <= answered + slack
    if (!within(dag.committed, answered)) problems.push(`${dag.committed} transactions committed`)
    if (!within(documents, dag.committed)) problems.push(`${documents} documents stored`)
    if (!within(poh.served, documents)) problems.push(`${poh.served} PoH calls served`)
    const exported: Array<string> = []
    for (const [service, report] of [[services.dag, dag], [services.poh, poh]] as const) {
      if (kind === "bare") {
        if (report.effectSpans > 0) problems.push(`${service}: ${report.effectSpans} Effect spans started`)
        if (report.exported + report.failed + report.dropped > 0) problems.push(`${service}: spans exported`)
        continue
      }
      const spans = perRequest?.[service] ?? 0
      if (spans === 0) problems.push(`${service}: no span in the probe's trace`)
      if (report.exported < dag.committed * spans) problems.push(`${service}: ${report.exported} spans exported`)
      if (report.failed + report.dropped > 0) {
        problems.push(`${service}: ${report.failed} spans failed, ${report.dropped} dropped`)
      }
      exported.push(`${service} ${report.exported} (≥ ${dag.committed} × ${spans})`)
    }
    said = `${documents} documents, ${dag.committed} committed, ${poh.served} PoH calls for ${answered} 2xx; ` +
      (kind === "bare" ? "no span started or exported" : `spans exported: ${exported.join(", ")}, none failed`)
    return problems
  })
  return said
}

const contender = (key: string, name: string, kind: "bare" | "otlp"): Contender => ({
  key,
  name,
  open: async (label) => {
    const database = `bench_${label}`
    const poh = await startChild<Port, PohReport>(
      "PoH node",
      "1",
      [process.execPath, ...profiling(`${key}-poh-node`), pohScript, kind],
      env(services.poh)
    )
    const dag = await startChild<Port, DagReport>(
      "sending DAG",
      "0",
      [process.execPath, ...profiling(`${key}-sending-dag`), serverScript, kind],
      { ...env(services.dag), POH_ADDRESS: `127.0.0.1:${poh.ready.port}`, MONGODB_URI: `${ferretdb.uri}${database}` }
    ).catch(async (error: unknown) => {
      await poh.stop()
      throw error
    })
    const target = { url: `http://127.0.0.1:${dag.ready.port}/tx`, body: transaction }
    let probes = 0
    if (kind === "otlp" && perRequest === undefined) {
      perRequest = await spansPerRequest(target, jaeger.queryUrl)
      probes = 1
    }
    return {
      target,
      cpu: async () => {
        const [dagReport, pohReport] = await Promise.all([dag.report(), poh.report()])
        return {
          [services.dag]: dagReport.cpuMicros,
          [services.poh]: pohReport.cpuMicros,
          ...childCpu(["ferretdb", "jaeger"])
        }
      },
      verify: (answered, slack) => verify(kind, { dag, poh }, database, answered + probes, slack),
      stop: async () => {
        await Promise.all([dag.stop(), poh.stop()])
        await mongo.db(database).dropDatabase()
      }
    }
  }
})

const { results, rate } = await compare([
  contender("bare", "bare: tracing off, metrics on", "bare"),
  contender("ours", "ours: ObservabilityLive, OTLP gRPC to Jaeger, every request sampled", "otlp")
])
await mongo.close()
await Promise.all([jaeger.stop(), ferretdb.dispose()])

console.log(machineLine)
console.log(
  `POST /tx, real path: PoH node over gRPC, FerretDB ${ferretdb.version} write, Jaeger ${jaeger.version}; ` +
    `${settings.rounds} rounds × ${settings.duration} s (after ${settings.warmup} s warm-up) per phase, ` +
    `alternating; ${settings.connections} connections; sending DAG on core 0; load generator, PoH node, FerretDB ` +
    "and Jaeger on core 1"
)
console.log(
  `spans per request: ${Object.entries(perRequest ?? {}).map(([service, spans]) => `${service} ${spans}`).join(", ")}`
)
const { a, b } = printResults(results)
console.log(goal("ours/bare, req/s", b.rps / a.rps, b.rps >= 0.9 * a.rps, "≥ 0.9×"))
console.log(`ours/bare at ${rate} req/s: ${latencies(a, b)}`)
