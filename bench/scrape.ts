/**
 * Scrape cost (issue 7, item 4), in two parts.
 *
 * Render time: how long `/metrics` takes to render (src/internal/exposition.ts, the renderer `MetricsServer` serves)
 * from a registry of about 1k and 10k series, in both exposition formats. The registry is the library's own
 * (`Metrics.make`, Node.js default metrics on) filled with synthetic label values: a tenth of the series from Effect's
 * own metrics (`EffectMetrics.make`: half from a `Metric.histogram` whose samples were recorded inside a span, so its
 * buckets carry exemplars, half from a `Metric.counter`), the rest in families registered through the registry
 * (`metrics.histogram`, `metrics.counter`) under the names the instrumentations use: half from the gRPC server
 * latency histogram with exemplars (17 series per label set), half from `presence_calls_total`. The series count is
 * the number of sample lines actually rendered. Medians of repeated renders.
 *
 * Event-loop delay a scrape causes under load: this process serves such a 10k-series registry at `/metrics` through
 * `MetricsServer` on a loopback port while it runs a steady load: the traced workflow of bench/workflow.ts
 * (`effect + ours`, bench/commit.ts) at a fixed RATE of workflows a second (each millisecond, the ones due so far, so
 * workflows held up by a scrape run right after it, as queued requests would), recording into that same registry.
 * The event-loop delay is how late a 1 ms timer, re-armed from its own callback, fires (as
 * `perf_hooks.monitorEventLoopDelay` measures it, but pooled over rounds into one histogram per condition). Three
 * conditions, each DURATION seconds a round, the order rotated each round: no scrapes; SCRAPES scrapes a second; and
 * scrapes back to back (the worst case). The scraper is autocannon with one connection, asking for OpenMetrics as
 * Prometheus does; it runs on core 1 and this process is pinned to core 0, so the scraper's own work (reading and
 * parsing 0.8 MB) is not counted. Its start-up (a few hundred ms) falls inside each window. A warm-up with scrapes
 * back to back comes first. At the end every workflow's spans and metric updates are counted and every scrape must
 * have been answered `200`.
 *
 * Run: `npm run bench:scrape` (RENDERS; ROUNDS, DURATION and WARMUP in seconds, RATE, SCRAPES override the defaults).
 */
import { execFileSync } from "node:child_process"
import { createHistogram, type RecordableHistogram } from "node:perf_hooks"
import { Effect, Layer, ManagedRuntime, Metric } from "effect"
import type { Counter, Histogram } from "prom-client"
import { DagMetrics } from "../src/dag/index.ts"
import * as Grpc from "../src/Grpc.ts"
import { EffectMetrics, Metrics, MetricsServer } from "../src/index.ts"
import { checkMetrics, checkSpans, commitOne, counted, registry, tracing, workflowsLayer } from "./commit.ts"
import { autocannon, countingProcessor, type Load, machine, makeTally, median } from "./support.ts"

const renders = Number(process.env["RENDERS"] ?? 50)
const goalMs = 25

/**
 * A registry of the library's with about `target` series: `grpc_method_latency_seconds` and `presence_calls_total`,
 * registered by `Grpc.serverInterceptor` and `DagMetrics.make` themselves (so the workflows below count into it).
 */
const fill = async (target: number) => {
  const metrics = await Effect.runPromise(Metrics.make({ defaultMetrics: true }))
  const [, , effectRegistry] = await Effect.runPromise(
    Effect.all([Grpc.serverInterceptor, DagMetrics.make({ regions: [] }), EffectMetrics.make()]).pipe(
      Effect.provideService(Metrics.Metrics, metrics)
    )
  )
  const perHistogram = Metrics.latencyBuckets.length + 3 // buckets, +Inf, _sum, _count
  const effectSeries = target / 10
  // The Effect histogram's series carry exemplars as the gRPC histogram's do: recorded inside a sampled span.
  const effectLatency = Metric.histogram("effect_step_seconds", { boundaries: Metrics.latencyBuckets })
  const effectJobs = Metric.counter("effect_jobs")
  await Effect.runPromise(
    Effect.gen(function*() {
      for (let i = 0; i < Math.round(effectSeries / 2 / perHistogram); i++) {
        const step = Metric.withAttributes(effectLatency, { step: `step${i}` })
        yield* Metric.update(step, (i % 100) / 1000).pipe(Effect.withSpan("step"))
      }
      for (let i = 0; i < Math.round(effectSeries / 2); i++) {
        yield* Metric.update(Metric.withAttributes(effectJobs, { queue: `q${i}` }), 1)
      }
    }).pipe(Effect.provideService(Metric.MetricRegistry, effectRegistry), Effect.provide(tracing(countingProcessor(makeTally()))))
  )
  const rest = target - effectSeries
  const grpcServerLatency = metrics.registry.getSingleMetric("grpc_method_latency_seconds") as Histogram
  const presenceCalls = metrics.registry.getSingleMetric("presence_calls_total") as Counter
  for (let i = 0; i < Math.round(rest / 2 / perHistogram); i++) {
    grpcServerLatency.observe({
      labels: { service: "poh.PohService", method: `Method${i}`, code: "OK" },
      value: (i % 100) / 1000,
      exemplarLabels: { trace_id: "0af7651916cd43dd8448eb211c80319c", span_id: "b7ad6b7169203331" }
    } as Parameters<typeof grpcServerLatency.observe>[0])
  }
  for (let i = 0; i < Math.round(rest / 2); i++) {
    presenceCalls.inc({ region: `r${i}`, outcome: "success" })
  }
  return metrics
}

const time = async (run: () => Promise<string>) => {
  for (let i = 0; i < 5; i++) await run()
  const times: Array<number> = []
  let body = ""
  for (let i = 0; i < renders; i++) {
    const started = performance.now()
    body = await run()
    times.push(performance.now() - started)
  }
  return { ms: median(times), body }
}

const seriesIn = (body: string) => body.split("\n").filter((line) => line !== "" && !line.startsWith("#")).length

console.log(machine())
console.log(`${renders} renders each after 5 warm-up renders; medians; a tenth of the series from Effect metrics`)
console.log()
console.log("| series | format | bytes | render ms (median) | goal < 25 ms at 10k |")
console.log("|---|---|---|---|---|")
for (const target of [1_000, 10_000]) {
  const metrics = await fill(target)
  for (const format of ["prometheus", "openmetrics"] as const) {
    const { ms, body } = await time(() => Effect.runPromise(metrics.render(format)))
    const verdict = target < 10_000 ? "" : ms < goalMs ? "met" : "not met"
    console.log(`| ${seriesIn(body)} | ${format} | ${body.length} | ${ms.toFixed(2)} | ${verdict} |`)
  }
}

// --- event-loop delay under load --------------------------------------------------------------------------------

const rounds = Number(process.env["ROUNDS"] ?? 3)
const duration = Number(process.env["DURATION"] ?? 10)
const warmup = Number(process.env["WARMUP"] ?? 3)
const rate = Number(process.env["RATE"] ?? 2_000)
const scrapesPerSecond = Number(process.env["SCRAPES"] ?? 1)

/** Prometheus's `Accept`: OpenMetrics (with exemplars) first, the text format as a fallback. */
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;" +
  "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

execFileSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" })

const tally = makeTally()
const processor = countingProcessor(tally)
const served = await fill(10_000)
const runtime = ManagedRuntime.make(
  MetricsServer.layer({ bind: { host: "127.0.0.1", port: 0 } }).pipe(
    Layer.provideMerge(workflowsLayer({ metrics: Layer.succeed(Metrics.Metrics)(served) })),
    Layer.provideMerge(tracing(processor))
  )
)
const url = await runtime.runPromise(Effect.map(MetricsServer.MetricsServer, (server) => server.url))

/** Workflows at `rate` a second for `seconds`: each millisecond, the ones due so far. */
const steady = (seconds: number) =>
  Effect.gen(function*() {
    const started = performance.now()
    let done = 0
    for (let elapsed = 0; elapsed < seconds * 1000; elapsed = performance.now() - started) {
      for (const due = Math.floor((elapsed * rate) / 1000); done < due; done++) yield* commitOne
      yield* Effect.sleep("1 millis")
    }
    return done
  })

/**
 * Records in `histogram` how late (ns) each fire of a 1 ms timer re-armed from its own callback is, and in
 * `worstPerSecond` the largest of each whole second (ms), until stopped.
 */
const probe = (histogram: RecordableHistogram, worstPerSecond: Array<number>) => {
  const started = performance.now()
  let due = started + 1
  let second = 0
  let worst = 0
  let timer = setTimeout(function tick() {
    const now = performance.now()
    const late = now - due
    histogram.record(Math.max(1, Math.round(late * 1e6)))
    if (now - started >= (second + 1) * 1000) {
      worstPerSecond.push(worst)
      second = Math.floor((now - started) / 1000)
      worst = 0
    }
    worst = Math.max(worst, late)
    due = now + 1
    timer = setTimeout(tick, 1)
  }, 1)
  return () => clearTimeout(timer)
}

interface Condition {
  readonly name: string
  /** autocannon's rate options, or no scraper at all. */
  readonly scraper: ReadonlyArray<string> | undefined
  readonly delay: RecordableHistogram
  readonly worstPerSecond: Array<number>
  readonly scrapes: Array<Load>
  workflows: number
}

const condition = (name: string, scraper: Condition["scraper"]): Condition => ({
  name,
  scraper,
  delay: createHistogram(),
  worstPerSecond: [],
  scrapes: [],
  workflows: 0
})
const conditions = [
  condition("no scrapes", undefined),
  condition(`${scrapesPerSecond} scrape/s`, ["-R", String(scrapesPerSecond)]),
  condition("back to back", [])
]

/** The load for `seconds` with `target`'s scrapes alongside, the event-loop delay probed into `into`. */
const run = async (target: Condition, seconds: number, into: Condition) => {
  const stop = probe(into.delay, into.worstPerSecond)
  const [done, load] = await Promise.all([
    runtime.runPromise(steady(seconds)),
    target.scraper &&
    autocannon(["-c", "1", ...target.scraper, "-d", String(seconds), "-H", `accept=${prometheusAccept}`, url])
  ])
  stop()
  if (load && load.non2xx + load.errors + load.timeouts > 0) throw new Error(`${target.name}: a scrape failed`)
  return { done, load }
}

let workflows = (await run(conditions[2]!, warmup, condition("warm-up", undefined))).done
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < conditions.length; i++) {
    const target = conditions[(round + i) % conditions.length]!
    const { done, load } = await run(target, duration, target)
    workflows += done
    target.workflows += done
    if (load) target.scrapes.push(load)
    console.error(`round ${round + 1}: ${target.name}, ${done} workflows, ${load?.["2xx"] ?? 0} scrapes`)
  }
}
await processor.forceFlush()
checkSpans("load", tally, workflows)
const ownSeriesOnly = counted.filter((name) => name !== "presence_calls_total") // it also holds the synthetic ones
await checkMetrics("load", await runtime.runPromise(registry), workflows, ownSeriesOnly)
await runtime.dispose()

const ms = (ns: number) => (ns / 1e6).toFixed(2)
const percentiles = [50, 99, 99.9] as const
console.log()
console.log(
  `event-loop delay under ${rate} traced workflows/s with ${url} (10k series) scraped: ${rounds} rounds × ` +
    `${duration} s per condition after ${warmup} s warm-up, this process on core 0, the scraper on core 1`
)
console.log(`verified: ${workflows} workflows, ${tally.total} spans, every metric update, every scrape 200`)
console.log()
console.log(
  "| condition | scrapes | scrape ms p50 / max | bytes | workflows/s | delay ms p50 | p99 | p99.9 | max | mean " +
    "| worst of a second, median |"
)
console.log("|---|---|---|---|---|---|---|---|---|---|---|")
for (const { name, scrapes, workflows: done, delay, worstPerSecond } of conditions) {
  const count = scrapes.reduce((sum, load) => sum + load["2xx"], 0)
  const latency = count === 0
    ? ""
    : `${median(scrapes.map((load) => load.latency.p50))} / ${Math.max(...scrapes.map((load) => load.latency.max))}`
  const bytes = count === 0 ? "" : String(Math.round(scrapes[0]!.throughput.total / scrapes[0]!.requests.total))
  const delays = percentiles.map((p) => ms(delay.percentile(p))).join(" | ")
  const rateDone = (done / (rounds * duration)).toFixed(0)
  console.log(
    `| ${name} | ${count} | ${latency} | ${bytes} | ${rateDone} | ${delays} | ${ms(delay.max)} | ${ms(delay.mean)} ` +
      `| ${median(worstPerSecond).toFixed(2)} |`
  )
}
console.log()
console.log("| delay added over no scrapes, ms | p50 | p99 | p99.9 | max | mean | worst of a second, median |")
console.log("|---|---|---|---|---|---|---|")
const [quiet, ...scraped] = conditions
for (const { name, delay, worstPerSecond } of scraped) {
  const added = percentiles.map((p) => delay.percentile(p) - quiet!.delay.percentile(p))
  added.push(delay.max - quiet!.delay.max, delay.mean - quiet!.delay.mean)
  const worst = median(worstPerSecond) - median(quiet!.worstPerSecond)
  console.log(`| ${name} | ${added.map(ms).join(" | ")} | ${worst.toFixed(2)} |`)
}
