/**
 * The sending DAG on every core, minimal path (issue 14, items 4 and 6): `POST /tx` against the sending DAG's routes
 * (examples/SendingDagApi.ts, in-process PoH, memory store, as `bench:http`) served by 1 or 2 `node:cluster` workers
 * sharing one port, `bare` (`HttpRouter.serve`, Effect's tracer off) and `ours` (`Http.serve` + this library's
 * tracing, every request sampled, the counting exporter of bench/support.ts). autocannon (20 connections, pinned to
 * core 1 with `taskset`) measures req/s and p99 over `DURATION` s after a 2 s warm-up; the workers are not pinned, so
 * with 2 workers they share both cores with the load generator.
 *
 * Then, for `ours`, the two ways of serving the workers' metrics, side by side on the same processes under load:
 *
 * - per worker: each worker's own `/metrics` (OpenMetrics), one scrape target each;
 * - aggregated: prom-client's cluster aggregation (`AggregatorRegistry.clusterMetrics()` in the primary, each worker
 *   answering over IPC with `getMetricsAsJSON()` of its registry).
 *
 * For each: scrape time (median and max of 20 scrapes during load), size, whether `tx_committed_total` equals the
 * 2xx answers counted by autocannon, and how many exemplar lines (`# {trace_id=…}`) survive.
 *
 * Run: `npx node bench/workers.ts` (DURATION in seconds, default 10).
 */
import cluster from "node:cluster"
import { once } from "node:events"
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, References } from "effect"
import { HttpRouter } from "effect/http"
import { AggregatorRegistry } from "prom-client"
import * as SendingDagApi from "../examples/SendingDagApi.ts"
import { DagMetrics, Poh, Presence, Storage } from "../src/dag/index.ts"
import { Http, Metrics, MetricsServer, Tracing } from "../src/index.ts"
import { tracerOff } from "./http/child.ts"
import { autocannon, countingProcessor, machine, makeTally, median } from "./support.ts"

const duration = Number(process.env["DURATION"] ?? 10)
const transaction = JSON.stringify({ from: "alice", to: "bob", amount: 5, region: "eu-central" })

/** What a worker tells the primary once it serves. */
interface Ready {
  readonly metrics: string
}

const worker = () => {
  const kind = process.env["BENCH_KIND"] as "bare" | "ours"
  const port = Number(process.env["BENCH_PORT"])
  const aggregated = new AggregatorRegistry()
  void aggregated
  const Workflows = Layer.mergeAll(
    Poh.layerInProcess("poh-1"),
    Storage.layerMemory,
    Presence.layerStatic({ nodes: [{ id: "poh-1", region: "eu-central", address: "in-process" }] })
  ).pipe(Layer.provideMerge(DagMetrics.layer()), Layer.provideMerge(Metrics.layer))
  const Server = Http.layerServer({ host: "127.0.0.1", port })
  const quiet = { disableLogger: true, disableListenLog: true }
  const Ready = Layer.effectDiscard(Effect.gen(function*() {
    const { registry } = yield* Metrics.Metrics
    AggregatorRegistry.setRegistries([registry])
    const served = yield* MetricsServer.MetricsServer
    process.send!({ metrics: served.url } satisfies Ready)
  }))
  const Metered = MetricsServer.layer({ bind: { host: "127.0.0.1", port: 0, exclusive: true } as { host: string; port: number } })
  const App = kind === "bare"
    ? HttpRouter.serve(SendingDagApi.Routes, quiet).pipe(Layer.provide(tracerOff().layer))
    : SendingDagApi.layer.pipe(Layer.provide(Tracing.layerProvider(countingProcessor(makeTally()), {
      resource: { serviceName: "bench-workers" },
      sampler: Tracing.makeSampler({ name: "parentbased_always_on", ratio: 1 }),
      shutdownTimeout: "1 second"
    })))
  NodeRuntime.runMain(Layer.launch(
    Layer.mergeAll(App, Ready.pipe(Layer.provide(Metered))).pipe(
      Layer.provide(Server.pipe(Layer.provideMerge(Workflows))),
      // The API's per-transaction log line is not what this measures: warnings only, as in bench:http.
      Layer.provide(Layer.succeed(References.MinimumLogLevel)("Warn"))
    )
  ))
}

/** `count` workers of `kind` on `port`; their `/metrics` URLs, and a stop. */
const start = async (count: number, kind: string, port: number) => {
  const workers = Array.from({ length: count }, () => cluster.fork({ BENCH_KIND: kind, BENCH_PORT: String(port) }))
  const ready = await Promise.all(workers.map(async (forked) => ((await once(forked, "message")) as [Ready])[0]))
  return {
    metrics: ready.map((message) => message.metrics),
    stop: () => Promise.all(workers.map((forked) => (forked.process.kill("SIGTERM"), once(forked, "exit"))))
  }
}

const load = (port: number, seconds: number) =>
  autocannon(["-c", "20", "-d", String(seconds), "-m", "POST", "-H", "content-type=application/json", "-b", transaction,
    `http://127.0.0.1:${port}/tx`])

const timed = async (scrape: () => Promise<string>) => {
  const started = performance.now()
  const text = await scrape()
  return { ms: performance.now() - started, text }
}

const committedIn = (text: string) =>
  text.split("\n").filter((line) => line.startsWith("tx_committed_total{"))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0)

const exemplars = (text: string) => text.split("\n").filter((line) => line.includes("# {trace_id=")).length

/**
 * How `committed` compares with the 2xx answers autocannon counted over its 3 runs: each run stops with up to its 20
 * connections' requests in flight, which the server commits but autocannon does not count.
 */
const inFlight = (committed: number, answered: number) =>
  committed >= answered && committed <= answered + 3 * 20
    ? `exact: the ${answered} answers + ${committed - answered} in flight when autocannon stopped`
    : `NOT exact: ${committed - answered} off`

/** The two ways of serving the workers' metrics, compared under load. */
const compareMetrics = async (port: number, urls: ReadonlyArray<string>, answered: number) => {
  const aggregator = new AggregatorRegistry()
  const perWorker = () =>
    Promise.all(urls.map((url) =>
      timed(() => fetch(url, { headers: { accept: "application/openmetrics-text" } }).then((r) => r.text()))
    ))
  const aggregate = () => timed(() => aggregator.clusterMetrics())
  const during = load(port, 5)
  const samples = { perWorker: [] as Array<number>, aggregate: [] as Array<number> }
  await new Promise((resolve) => setTimeout(resolve, 500))
  for (let i = 0; i < 20; i++) {
    samples.perWorker.push(Math.max(...(await perWorker()).map((scrape) => scrape.ms)))
    samples.aggregate.push((await aggregate()).ms)
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  const total = answered + (await during)["2xx"]
  const [workers, merged] = [await perWorker(), await aggregate()]
  return {
    total,
    perWorker: {
      ms: `${median(samples.perWorker).toFixed(1)} / ${Math.max(...samples.perWorker).toFixed(1)}`,
      bytes: workers.map((scrape) => scrape.text.length).join(" + "),
      committed: workers.reduce((sum, scrape) => sum + committedIn(scrape.text), 0),
      exemplars: workers.reduce((sum, scrape) => sum + exemplars(scrape.text), 0)
    },
    aggregate: {
      ms: `${median(samples.aggregate).toFixed(1)} / ${Math.max(...samples.aggregate).toFixed(1)}`,
      bytes: String(merged.text.length),
      committed: committedIn(merged.text),
      exemplars: exemplars(merged.text)
    }
  }
}

const primary = async () => {
  console.log(`bench:workers on ${machine()}; ${duration} s per measurement, autocannon -c 20 on core 1`)
  let port = 18_081
  for (const workers of [1, 2]) {
    for (const kind of ["bare", "ours"]) {
      port += 1
      const started = await start(workers, kind, port)
      const warm = await load(port, 2)
      const measured = await load(port, duration)
      console.log(
        `${workers} worker(s) ${kind}: ${measured.requests.average.toFixed(0)} req/s, p50 ${measured.latency.p50} ms, ` +
          `p99 ${measured.latency.p99} ms, non-2xx ${measured.non2xx}, errors ${measured.errors}`
      )
      if (kind === "ours") {
        const compared = await compareMetrics(port, started.metrics, warm["2xx"] + measured["2xx"])
        console.log(`  metrics of ${workers} worker(s), ${compared.total} requests answered 2xx:`)
        for (const [name, result] of Object.entries({ "per worker": compared.perWorker, aggregated: compared.aggregate })) {
          console.log(
            `    ${name}: scrape ms median/max ${result.ms}, ${result.bytes} bytes, tx_committed_total ` +
              `${result.committed} (${inFlight(result.committed, compared.total)}), ` +
              `${result.exemplars} exemplar lines`
          )
        }
      }
      await started.stop()
    }
  }
  process.exit(0)
}

if (cluster.isPrimary) await primary()
else worker()
