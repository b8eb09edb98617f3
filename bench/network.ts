/**
 * The real path as the network grows (issue 14, item 6): Presence, 1 or 3 PoH nodes (regions eu-central, us-east,
 * eu-central in turn) and the sending DAG (`SENDING_DAG_WORKERS`, default 2) started as `npm start` starts them
 * (examples/NodeProcess.ts), over a FerretDB and a Jaeger started here, every request sampled and exported over
 * OTLP. For each size: `POST /tx` in eu-central with autocannon (20 connections, pinned to core 1, `DURATION` s
 * after a 2 s warm-up; the nodes are not pinned), req/s and p99; then the telemetry each transaction and each
 * process costs: the spans of one transaction's trace by service, and for every process its `/metrics` (text format)
 * in series (sample lines) and bytes, and its scrape time.
 *
 * Run: `npm run provision && npx node bench/network.ts` (DURATION, SENDING_DAG_WORKERS).
 */
import { Effect, Schedule } from "effect"
import { type Endpoints, launch, reachable } from "../examples/NodeProcess.ts"
import { startFerretDB, startJaeger } from "../servers/Servers.ts"
import { autocannon, machine, median } from "./support.ts"

const duration = Number(process.env["DURATION"] ?? 10)
const workers = process.env["SENDING_DAG_WORKERS"] ?? "2"
const transaction = JSON.stringify({ from: "alice", to: "bob", amount: 5, region: "eu-central" })
const loopback = "127.0.0.1:0"

const ferretdb = await startFerretDB()
const jaeger = await startJaeger()

/** Series (sample lines), bytes and the median time of 5 scrapes of a `/metrics` URL. */
const scrapeCost = (url: string) =>
  Effect.promise(async () => {
    const times: Array<number> = []
    let text = ""
    for (let i = 0; i < 5; i++) {
      const started = performance.now()
      text = await (await fetch(url)).text()
      times.push(performance.now() - started)
    }
    const series = text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).length
    return `${series} series, ${(text.length / 1024).toFixed(1)} KiB, ${median(times).toFixed(1)} ms`
  })

/** The spans of the trace of one transaction posted to `base`, by service. */
const spansOfOne = (base: string) =>
  Effect.gen(function*() {
    const traceId = yield* Effect.promise(async () => {
      const response = await fetch(`${base}/tx`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: transaction
      })
      return /^00-([0-9a-f]{32})-/.exec(response.headers.get("traceresponse") ?? "")![1]!
    })
    return yield* Effect.tryPromise(async () => {
      const body = await (await fetch(`${jaeger.queryUrl}/api/traces/${traceId}`)).json() as {
        data: Array<{ spans: Array<{ processID: string }>; processes: Record<string, { serviceName: string }> }>
      }
      const trace = body.data[0]!
      const byService: Record<string, number> = {}
      for (const span of trace.spans) {
        const service = trace.processes[span.processID]!.serviceName
        byService[service] = (byService[service] ?? 0) + 1
      }
      if (trace.spans.length < 10) throw new Error(`${trace.spans.length} spans so far`)
      return byService
    }).pipe(Effect.retry({ schedule: Schedule.spaced("500 millis"), times: 20 }))
  })

const measure = (nodes: number) =>
  Effect.gen(function*() {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, OTEL_TRACES_SAMPLER: "parentbased_always_on" }
    const presence = yield* launch("presence", "examples/presence.ts", {
      ...env,
      PRESENCE_GRPC_BIND: loopback,
      PRESENCE_METRICS_BIND: loopback
    })
    const presenceAt: Endpoints = yield* presence.ready
    const pohAt = yield* Effect.forEach(Array.from({ length: nodes }, (_, i) => i), (i) =>
      Effect.flatMap(
        launch(`poh-${i + 1}`, "examples/poh-node.ts", {
          ...env,
          POH_GRPC_BIND: loopback,
          POH_METRICS_BIND: loopback,
          POH_NODE_NAME: `poh-${i + 1}`,
          POH_NODE_REGION: i % 2 === 0 ? "eu-central" : "us-east",
          PRESENCE_ADDRESS: reachable(presenceAt["grpc"]!)
        }),
        (node) => node.ready
      ))
    const dag = yield* launch("sending-dag", "examples/sending-dag.ts", {
      ...env,
      SENDING_DAG_BIND: loopback,
      SENDING_DAG_METRICS_BIND: loopback,
      SENDING_DAG_WORKERS: workers,
      PRESENCE_ADDRESS: reachable(presenceAt["grpc"]!),
      MONGODB_URI: `${ferretdb.uri}bench_network_${nodes}_${Date.now()}`
    })
    const dagAt: Endpoints = yield* dag.ready
    const base = dagAt["http"]!
    yield* Effect.sleep("1 second")
    const args = ["-c", "20", "-m", "POST", "-H", "content-type=application/json", "-b", transaction, `${base}/tx`]
    yield* Effect.promise(() => autocannon(["-d", "2", ...args]))
    const load = yield* Effect.promise(() => autocannon(["-d", String(duration), ...args]))
    const spans = yield* spansOfOne(base)
    const metrics = [
      ...Object.entries(dagAt).filter(([name]) => name.startsWith("metrics")).map(([name, url]) => [`sending-dag ${name}`, url]),
      ...pohAt.map((at, i) => [`poh-${i + 1}`, at["metrics"]!]),
      ["presence", presenceAt["metrics"]!]
    ] as const
    const costs = yield* Effect.forEach(metrics, ([name, url]) => Effect.map(scrapeCost(url), (cost) => `${name}: ${cost}`))
    return [
      `${nodes} PoH node(s), ${workers} sending-DAG workers: ${load.requests.average.toFixed(0)} req/s, ` +
      `p50 ${load.latency.p50} ms, p99 ${load.latency.p99} ms, non-2xx ${load.non2xx}, errors ${load.errors}`,
      `  spans of one transaction: ${JSON.stringify(spans)}`,
      ...costs.map((cost) => `  /metrics ${cost}`)
    ].join("\n")
  }).pipe(Effect.scoped)

const lines: Array<string> = [`bench:network on ${machine()}; ${duration} s per measurement`]
for (const nodes of [1, 3]) lines.push(await Effect.runPromise(measure(nodes)))
await jaeger.stop()
await ferretdb.dispose()
console.log(lines.join("\n"))
process.exit(0)
