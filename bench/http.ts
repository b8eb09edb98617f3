/**
 * HTTP, minimal path (issue 7, item 2): `POST /tx` with a small JSON body against the sending DAG's routes
 * (in-memory store, in-process PoH) served by Effect's HTTP server in three set-ups (see bench/http/server.ts), and
 * by the seed's own stack in Python:
 *
 * - (a) `bare`: `HttpRouter.serve`, no tracer;
 * - (b) `ours`: `Http.serve` + this library's tracing, every request sampled, to an exporter that counts and discards;
 * - (b′) `ours-otlp`: `Http.serve` + `ObservabilityLive` as the sending DAG deploys it, every span exported over OTLP
 *   gRPC to a Jaeger on the load generator's core (core 1), so serialization and export are in the number; its spans
 *   verified acknowledged by Jaeger (`otlp_exported_spans_total{outcome="exported"}`), none failed or dropped;
 * - (b-log) `ours-log`: (b) with the library's logger and one JSON log line per request;
 * - (b') `ours-log`: (b) with the library's logger installed and one JSON log line per request, written inside the
 *   request's server span (so it carries the trace id) to a file;
 * - (c) `sdk-node`: `@opentelemetry/sdk-node` + `instrumentation-http` (loader hook registered) for the server span,
 *   `@effect/opentelemetry` for the workflow spans, prom-client in a hand-written middleware;
 * - (d) `fastapi`: FastAPI + uvicorn + `opentelemetry-instrumentation-fastapi` + `prometheus_client`, the same work
 *   (bench/python/server.py), in a virtualenv this script makes under `.bench/venv` (git-ignored) the first time.
 *
 * The traced set-ups record the same 5 spans per request (server span + 4 workflow spans) through the same
 * `BatchSpanProcessor` to an exporter that counts and discards them (no collector, no serialization). Each server
 * runs as its own child process pinned to core 0, autocannon (20 connections) pinned to core 1; each round starts
 * every server afresh (next contender first), warms it up, then measures. After each measurement the server reports
 * what it recorded, and the run fails unless every answered request left its spans and metrics.
 *
 * Run: `npm run bench:http` (ROUNDS, DURATION and WARMUP in seconds, CONNECTIONS override the defaults; CONTENDERS,
 * such as `bare,ours,ours-log`, runs only those; PROFILE=<dir> profiles each Node.js server under the load, to compare
 * with `node bench/profile-top.ts <profile> <requests> --against <profile> <requests>`).
 */
import { spawnSync } from "node:child_process"
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { all2xx, childEnv, profiling, saturate, startChild, transaction } from "./load.ts"
import { type Jaeger, startJaeger } from "../servers/Servers.ts"
import { machine, median, ratio } from "./support.ts"

const rounds = Number(process.env["ROUNDS"] ?? 5)
const duration = Number(process.env["DURATION"] ?? 10)
const warmup = Number(process.env["WARMUP"] ?? 3)
const connections = Number(process.env["CONNECTIONS"] ?? 20)

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const serverScript = here("./http/server.ts")

const venv = here("../.bench/venv")
const requirements = here("./python/requirements.txt")

/** The virtualenv of contender (d), made or brought up to date with bench/python/requirements.txt. */
const python = () => {
  const stamp = `${venv}/requirements.txt`
  const wanted = readFileSync(requirements, "utf8")
  if (!existsSync(stamp) || readFileSync(stamp, "utf8") !== wanted) {
    console.error(`setting up ${venv} for the FastAPI contender`)
    const steps = [["python3", "-m", "venv", venv], [`${venv}/bin/pip`, "install", "-q", "-r", requirements]]
    for (const [command, ...args] of steps) {
      const result = spawnSync(command!, args, { stdio: "inherit" })
      if (result.status !== 0) throw new Error(`${command} ${args.join(" ")} failed (Python 3.10+ with venv is needed)`)
    }
    writeFileSync(stamp, wanted)
  }
  return `${venv}/bin/python`
}

interface Contender {
  readonly key: "bare" | "ours" | "ours-otlp" | "ours-log" | "sdk-node" | "fastapi"
  readonly name: string
  /** The server's command line after `taskset -c 0`. */
  readonly command: () => ReadonlyArray<string>
  /** Spans each request must leave. */
  readonly spansPerRequest: number
  /** More of the server's environment. */
  readonly env?: () => Readonly<Record<string, string>>
  readonly results: Array<number>
}

const chosen = process.env["CONTENDERS"]?.split(",")

const contenders: ReadonlyArray<Contender> = ([
  {
    key: "bare",
    name: "(a) Effect bare",
    command: () => [process.execPath, serverScript, "bare"],
    spansPerRequest: 0,
    results: []
  },
  {
    key: "ours",
    name: "(b) Effect + this library",
    command: () => [process.execPath, serverScript, "ours"],
    spansPerRequest: 5,
    results: []
  },
  {
    key: "ours-otlp",
    name: "(b′) (b) exporting every span over OTLP gRPC to Jaeger",
    command: () => [process.execPath, serverScript, "otlp"],
    spansPerRequest: 5,
    env: () => ({ OTEL_EXPORTER_OTLP_ENDPOINT: collector().otlpEndpoint, LOG_LEVEL: "warn" }),
    results: []
  },
  {
    key: "ours-log",
    name: "(b-log) (b) + the library's logger, one JSON line per request",
    command: () => [process.execPath, serverScript, "ours-log"],
    spansPerRequest: 5,
    results: []
  },
  {
    key: "sdk-node",
    name: "(c) Effect + sdk-node/instrumentation-http + @effect/opentelemetry + prom-client",
    command: () => [process.execPath, "--import", here("./http/sdk-node.ts"), serverScript, "sdk-node"],
    spansPerRequest: 5,
    results: []
  },
  {
    key: "fastapi",
    name: "(d) Python FastAPI + opentelemetry-instrumentation-fastapi + prometheus_client",
    command: () => [python(), here("./python/server.py")],
    spansPerRequest: 5,
    results: []
  }
] satisfies ReadonlyArray<Contender>).filter((contender) => chosen === undefined || chosen.includes(contender.key))
if (contenders[0]?.key !== "bare") throw new Error("CONTENDERS must include bare: every ratio is against it")

/** The machine, read before this process pins itself to one core. */
const host = machine()

/** (b′)'s Jaeger, started on core 1 (this process pins itself there first, and the server inherits it). */
let jaeger: Jaeger | undefined
const collector = () => jaeger!
if (contenders.some((contender) => contender.key === "ours-otlp")) {
  spawnSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" })
  jaeger = await startJaeger()
}

interface Report {
  readonly committed: number
  readonly httpObserved: number
  readonly spans: number
  readonly serverSpans: number
  readonly effectSpans: number
  readonly byName: Record<string, { readonly count: number; readonly withParent: number; readonly kind: number }>
  /** Lines the logger wrote (`ours-log`), and those carrying a trace id: one per request. */
  readonly logLines: number
  readonly tracedLogLines: number
  /** (b′): what the OTLP exporter did with the spans. */
  readonly exported: number
  readonly failed: number
  readonly dropped: number
}

/** `PROFILE=<dir>`: each Node.js server writes a CPU profile per round to `<dir>/<contender>/`. */
const profiled = process.env["PROFILE"] !== undefined

/** The contender's command line, with `--cpu-prof` after the Node.js binary when profiling. */
const commandOf = (contender: Contender): ReadonlyArray<string> => {
  const [binary, ...args] = contender.command()
  return binary === process.execPath ? [binary, ...profiling(contender.key), ...args] : [binary!, ...args]
}

/** Starts a contender's server on core 0; resolves once it prints its port. */
const start = (contender: Contender) =>
  startChild<{ port: number }, Report>(
    `${contender.key} server`,
    "0",
    commandOf(contender),
    childEnv({ OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none", ...contender.env?.() })
  )

const verify = (contender: Contender, report: Report, answered: number) => {
  // Requests in flight when autocannon stops may be served after it counted: at most one per connection per run.
  const slack = 2 * connections
  const within = (value: number, expected: number) =>
    value >= expected && value <= expected + slack * Math.max(1, contender.spansPerRequest)
  const problems: Array<string> = []
  if (!within(report.committed, answered)) problems.push(`${report.committed} transactions committed`)
  if (contender.key !== "bare" && !within(report.httpObserved, answered)) {
    problems.push(`${report.httpObserved} latencies observed`)
  }
  if (contender.key === "ours-otlp") {
    if (!within(report.exported, answered * contender.spansPerRequest)) problems.push(`${report.exported} spans exported`)
    if (report.failed + report.dropped > 0) problems.push(`${report.failed} spans failed, ${report.dropped} dropped`)
  } else if (!within(report.spans, answered * contender.spansPerRequest)) problems.push(`${report.spans} spans`)
  if (contender.spansPerRequest > 0 && contender.key !== "ours-otlp") {
    if (!within(report.serverSpans, answered)) problems.push(`${report.serverSpans} server spans`)
    for (const [name, entry] of Object.entries(report.byName)) {
      if (entry.kind !== 1 && entry.withParent !== entry.count) problems.push(`${name} without parent`)
    }
  }
  if (report.effectSpans !== 0) problems.push(`${report.effectSpans} Effect spans started with the tracer off`)
  // Each request's line carries its trace; the server's own start-up lines (`Listening on …`) do not.
  if (contender.key === "ours-log" && !within(report.tracedLogLines, answered)) {
    problems.push(`${report.logLines} log lines (${report.tracedLogLines} with a trace id)`)
  }
  if (problems.length > 0) {
    throw new Error(`${contender.name}: ${answered} requests answered 2xx but ${problems.join(", ")}`)
  }
}

/** (b′)'s report once the spans of `requests` requests are exported (its batches go out each second), or after 15 s. */
const exported = async (server: { readonly report: () => Promise<Report> }, requests: number) => {
  for (let waited = 0; ; waited += 250) {
    const report = await server.report()
    if (report.exported + report.failed + report.dropped >= requests * 5 || waited >= 15_000) return report
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
}

const lastReports = new Map<string, Report>()
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < contenders.length; i++) {
    const contender = contenders[(round + i) % contenders.length]!
    const server = await start(contender)
    try {
      const target = { url: `http://127.0.0.1:${server.ready.port}/tx`, body: transaction }
      const warm = all2xx(contender.name, await saturate(target, warmup, connections))
      const measured = await saturate(target, duration, connections)
      const report = contender.key === "ours-otlp" ? await exported(server, warm + measured.requests.total) : await server.report()
      verify(contender, report, warm + all2xx(contender.name, measured))
      lastReports.set(contender.key, report)
      contender.results.push(measured.requests.average)
      console.error(`round ${round + 1}: ${contender.key} ${measured.requests.average.toFixed(0)} req/s`)
      if (profiled) console.error(`  profiled: ${warm + measured["2xx"]} requests answered`)
    } finally {
      await server.stop()
    }
  }
}

const medians = Object.fromEntries(contenders.map((contender) => [contender.key, median(contender.results)]))
const a = medians["bare"]!
console.log(host)
console.log(
  `POST /tx, ${connections} connections, ${rounds} rounds × ${duration} s (after ${warmup} s warm-up), ` +
    "server on core 0, autocannon on core 1, alternating; medians of req/s"
)
for (const contender of contenders) {
  const report = lastReports.get(contender.key)!
  const names = Object.entries(report.byName).map(([name, entry]) => `${name}×${entry.count}`).join(", ")
  const logs = contender.key === "ours-log"
    ? `, ${report.logLines} log lines (${report.tracedLogLines} with trace_id)`
    : contender.key === "ours-otlp"
    ? `, ${report.exported} exported to Jaeger (${report.failed} failed, ${report.dropped} dropped)`
    : ""
  console.log(
    `verified ${contender.key}: ${report.committed} committed, ${report.httpObserved} latencies, ` +
      `${report.spans} spans (${names || "none"})${logs}`
  )
}
console.log()
console.log("| server | req/s (median) | rounds | vs (a) |")
console.log("|---|---|---|---|")
for (const contender of contenders) {
  const rows = contender.results.map((value) => value.toFixed(0)).join(", ")
  const value = medians[contender.key]!
  console.log(`| ${contender.name} | ${value.toFixed(0)} | ${rows} | ${ratio(value, a)} |`)
}
console.log()
/** `x/y = …` against a goal, when both were run. */
const compare = (x: string, y: string, goal?: number) => {
  const [top, bottom] = [medians[x], medians[y]]
  if (top === undefined || bottom === undefined) return
  const verdict = goal === undefined ? "" : ` (goal ≥ ${goal}×): ${top >= goal * bottom ? "met" : "not met"}`
  console.log(`${x}/${y} = ${ratio(top, bottom)}${verdict}`)
}
compare("ours", "bare", 0.8)
compare("ours-otlp", "bare", 0.75)
compare("ours-log", "bare")
compare("ours-log", "ours")
compare("ours", "sdk-node", 1.5)
compare("ours", "fastapi", 3)
const over = (value: number) => `${(1e6 / value - 1e6 / a).toFixed(1)} µs`
console.log(`per-request cost over (a): ${contenders.slice(1).map((other) => `${other.key} ${over(medians[other.key]!)}`).join(", ")}`)
await jaeger?.stop()
