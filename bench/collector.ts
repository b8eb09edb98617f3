/**
 * Collector down (issue 7, item 5): the HTTP benchmark's minimal path (`POST /tx`, in-process PoH, in-memory store:
 * bench/http/server.ts `otlp`) with this library deployed as users deploy it (`ObservabilityLive`, `Http.serve`,
 * every request sampled, spans over OTLP gRPC), where only the collector differs:
 *
 * - `live`: the OTLP endpoint is a Jaeger started here;
 * - `down`: the OTLP endpoint is a closed loopback port (bound, then closed: connections are refused), so every
 *   export fails, and spans that find the bounded queue full are dropped.
 *
 * Pinning on 2 cores: the sending DAG alone on core 0. This script pins itself to core 1 before it starts anything,
 * so Jaeger runs there beside the load generator (taskset -c 1), at the lowest priority (nice 19): it takes only the
 * CPU time the load generator leaves, as a collector elsewhere would, and does not delay the reading of answers.
 *
 * Measured in two phases (bench/compare.ts): saturation req/s with autocannon, then p50/p99 at a constant rate
 * below saturation, the goal's measure. Each run starts the server afresh and passes only if no answer was other
 * than 2xx and `tx_committed_total` counts every 2xx answer (and no more than the requests in flight when the load
 * stopped); `live`, if its `otlp_exported_spans_total{outcome="exported"}` grew by at least the committed count ×
 * the spans of one request (counted first on one request's trace in Jaeger) with nothing failed or dropped; `down`,
 * if nothing was exported and `failed` + `dropped` account for every span but those the exporter may still hold
 * (its queue, 2048, and the batch in flight, 512).
 *
 * Run: `npm run bench:collector` (ROUNDS, DURATION and WARMUP in seconds, CONNECTIONS, RATE in requests a second
 * override the defaults).
 */
import { fileURLToPath } from "node:url"
import { freePort, startJaeger } from "../servers/Servers.ts"
import {
  atLowestPriority,
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
import { childCpu, childEnv, startChild, transaction } from "./load.ts"

const machineLine = pinToCore1()

const serverScript = fileURLToPath(new URL("./http/server.ts", import.meta.url))
const service = "sending-dag"

/** What `Tracing.layer` holds at most before an export settles: its queue and the batch being exported. */
const held = 2048 + 512

interface Report extends ExportReport {
  readonly committed: number
}

const jaeger = await atLowestPriority(startJaeger)
const closed = `http://127.0.0.1:${await freePort()}`

/** Spans one request leaves: counted on the first `live` run, which comes first. */
let perRequest = 0

const contender = (key: "live" | "down", name: string, endpoint: string): Contender => ({
  key,
  name,
  open: async () => {
    const server = await startChild<{ readonly port: number }, Report>(
      `${key} server`,
      "0",
      [process.execPath, serverScript, "otlp"],
      childEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: service })
    )
    const target = { url: `http://127.0.0.1:${server.ready.port}/tx`, body: transaction }
    let probes = 0
    if (key === "live" && perRequest === 0) {
      perRequest = (await spansPerRequest(target, jaeger.queryUrl))[service] ?? 0
      probes = 1
    }
    return {
      target,
      cpu: async () => ({ [service]: (await server.report()).cpuMicros, ...childCpu(["jaeger"]) }),
      verify: async (answered, slack) => {
        let said = ""
        await eventually(`${key}: ${answered + probes} requests answered 2xx but`, async () => {
          const report = await server.report()
          const spans = report.committed * perRequest
          const problems: Array<string> = []
          if (report.committed < answered + probes || report.committed > answered + probes + slack) {
            problems.push(`${report.committed} transactions committed`)
          }
          if (perRequest === 0) problems.push("no span in the probe's trace")
          if (key === "live") {
            if (report.exported < spans) problems.push(`${report.exported} spans exported`)
            if (report.failed + report.dropped > 0) {
              problems.push(`${report.failed} spans failed, ${report.dropped} dropped`)
            }
          } else {
            if (report.exported > 0) problems.push(`${report.exported} spans exported`)
            if (report.failed + report.dropped < spans - held) {
              problems.push(`only ${report.failed} spans failed and ${report.dropped} dropped`)
            }
          }
          said = `${report.committed} committed for ${answered + probes} 2xx; spans exported ${report.exported}, ` +
            `failed ${report.failed}, dropped ${report.dropped} (${report.committed} × ${perRequest} = ${spans})`
          return problems
        })
        return said
      },
      stop: server.stop
    }
  }
})

const { results, rate } = await compare([
  contender("live", "live: OTLP to Jaeger", jaeger.otlpEndpoint),
  contender("down", "down: OTLP to a closed port", closed)
])
await jaeger.stop()

console.log(machineLine)
console.log(
  `POST /tx, minimal path, ObservabilityLive exporting over OTLP gRPC (Jaeger ${jaeger.version} or a closed port); ` +
    `${settings.rounds} rounds × ${settings.duration} s (after ${settings.warmup} s warm-up) per phase, ` +
    `alternating; ${settings.connections} connections; server on core 0; load generator and Jaeger (nice 19) on ` +
    `core 1; ${perRequest} spans per request`
)
const { a, b } = printResults(results)
console.log(goal(`down/live, p99 at ${rate} req/s`, b.p99 / a.p99, b.p99 <= 1.05 * a.p99, "≤ 1.05×"))
console.log(`down/live at ${rate} req/s: ${latencies(a, b)}`)
console.log(`down/live, req/s = ${(b.rps / a.rps).toFixed(2)}×`)
