/**
 * What test/integration/dashboards.test.ts asks of each query's answer: an
 * instant vector as series, what is implausible in it for the unit of its
 * panel, quantiles in order, and the values as the log shows them.
 */
import { Effect, Schedule } from "effect"
import { latencyBuckets } from "../../src/Metrics.ts"
import { getJson, Vector } from "./Prometheus.ts"

/** Retries `check` every second until it returns no problems, for at most `times` seconds; fails with the last. */
export const untilPlausible = (check: Effect.Effect<ReadonlyArray<string>, unknown>, times: number) =>
  check.pipe(
    Effect.filterOrFail((problems) => problems.length === 0, (problems) => new Error(problems.join("\n"))),
    Effect.retry({ schedule: Schedule.spaced("1 second"), times })
  )

/** One series of an instant vector: its labels (without `__name__`) and value. */
export interface Series {
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The instant vector of `promql` at the Prometheus at `url`, as {@link Series}. */
export const instant = (url: string, promql: string) =>
  getJson(Vector, `${url}/api/v1/query?query=${encodeURIComponent(promql)}`).pipe(
    Effect.map(({ data }) =>
      data.result.map(({ metric, value }): Series => ({
        labels: Object.fromEntries(Object.entries(metric).filter(([name]) => name !== "__name__")),
        value: Number(value[1])
      }))
    )
  )

const highestBucket = Math.max(...latencyBuckets)

/**
 * What is implausible in the series of a query shown in `unit`; `name` says which query. A ratio may go down to
 * `floor`, 0 unless the panel's axis says otherwise: an SLO's remaining error budget goes below 0 once it is spent.
 */
export const implausible = (name: string, unit: string, result: ReadonlyArray<Series>, floor = 0) => {
  const values = result.map((series) => series.value)
  const finite = values.filter(Number.isFinite)
  const problems: Array<string> = []
  const expect = (ok: boolean, what: string) => {
    if (!ok) problems.push(`${name}: ${what}: ${JSON.stringify(result)}`)
  }
  expect(finite.length > 0, "no data")
  switch (unit) {
    case "percentunit":
      expect(finite.every((value) => value >= floor && value <= 1), `a ratio outside [${floor}, 1]`)
      break
    case "s":
      expect(finite.every((value) => value >= 0 && value <= highestBucket), `seconds outside [0, ${highestBucket}]`)
      break
    case "reqps":
      expect(finite.every((value) => value >= 0) && finite.some((value) => value > 0), "no rate above 0")
      break
    case "bytes":
      expect(finite.every((value) => value > 0), "bytes not above 0")
      break
    default:
      expect(finite.every((value) => value >= 0), "a negative value")
  }
  return problems
}

/** The series of `result` by their labels, as `{label="value",…}`. */
export const key = (labels: Readonly<Record<string, string>>) =>
  Object.entries(labels).toSorted(([a], [b]) => a.localeCompare(b)).map(([l, v]) => `${l}="${v}"`).join(",")

/** Problems of quantile queries: p50 ≤ p90 ≤ p99 for every series the three have in common. */
export const unordered = (name: string, byQuantile: ReadonlyArray<ReadonlyArray<Series>>): Array<string> => {
  const [p50, p90, p99] = byQuantile.map((result) => new Map(result.map((series) => [key(series.labels), series.value])))
  return [...p50!.entries()].flatMap(([labels, low]) => {
    const [middle, high] = [p90!.get(labels), p99!.get(labels)]
    return [low, middle, high].every((value) => value !== undefined && Number.isFinite(value)) &&
        !(low <= middle! && middle! <= high!)
      ? [`${name} {${labels}}: p50 ${low} ≤ p90 ${middle} ≤ p99 ${high} does not hold`]
      : []
  })
}

/** A value for the log, in the panel's unit. */
export const show = (unit: string, value: number) =>
  !Number.isFinite(value) ? String(value) :
  unit === "s" ? `${(value * 1000).toFixed(2)} ms` :
  unit === "percentunit" ? `${(value * 100).toFixed(1)}%` :
  unit === "bytes" ? `${(value / 2 ** 20).toFixed(1)} MiB` :
  unit === "short" ? String(value) :
  `${value.toFixed(2)}/s`

/** A legend format filled in with a series' labels. */
export const legend = (format: string, labels: Readonly<Record<string, string>>) =>
  format.replaceAll(/\{\{\s*(\w+)\s*\}\}/g, (_, label: string) => labels[label] ?? "")
