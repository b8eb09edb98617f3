/**
 * Scrape cost (issue 7, item 4, first half): how long `/metrics` takes to render (src/internal/exposition.ts, the
 * renderer `MetricsServer` serves) from a registry of about 1k and 10k series, in both exposition formats. The
 * registry is the library's own (`Metrics.make`, Node.js default metrics on) filled with synthetic label values:
 * half the series from latency histograms with exemplars (17 series per label set), half from a counter. The series
 * count is the number of sample lines actually rendered. Medians of repeated renders.
 *
 * Run: `npm run bench:scrape` (RENDERS overrides the default).
 */
import { Effect } from "effect"
import { Config, Metrics } from "../src/index.ts"
import { machine, median } from "./support.ts"

const renders = Number(process.env["RENDERS"] ?? 50)
const goalMs = 25

const fill = async (target: number) => {
  const metrics = await Effect.runPromise(
    Metrics.Metrics.make({ regions: Config.defaultRegions, defaultMetrics: true })
  )
  const { instruments } = metrics
  const perHistogram = Metrics.latencyBuckets.length + 3 // buckets, +Inf, _sum, _count
  for (let i = 0; i < Math.round(target / 2 / perHistogram); i++) {
    instruments.grpcServerLatency.observe({
      labels: { service: "poh.PohService", method: `Method${i}`, code: "OK" },
      value: (i % 100) / 1000,
      exemplarLabels: { trace_id: "0af7651916cd43dd8448eb211c80319c", span_id: "b7ad6b7169203331" }
    } as Parameters<typeof instruments.grpcServerLatency.observe>[0])
  }
  for (let i = 0; i < Math.round(target / 2); i++) {
    instruments.presenceCalls.inc({ region: `r${i}`, outcome: "success" })
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
console.log(`${renders} renders each after 5 warm-up renders; medians`)
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
