/**
 * Renders a `prom-client` registry in either exposition format from one
 * registry: the Prometheus text format 0.0.4, or OpenMetrics 1.0 with
 * exemplars. prom-client renders only the format its registry was built for,
 * and its OpenMetrics rendering renames counters in place.
 *
 * @internal
 */
import type { OpenMetricsContentType, Registry } from "prom-client"

/** An exposition format a scraper can ask for. */
export type Format = "prometheus" | "openmetrics"

/** The `Content-Type` of each format. */
export const contentTypes: Record<Format, string> = {
  prometheus: "text/plain; version=0.0.4; charset=utf-8",
  openmetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
}

/**
 * The format an `Accept` header asks for: OpenMetrics when it names
 * `application/openmetrics-text` with a non-zero quality, else Prometheus text.
 */
export const negotiate = (accept: string | undefined): Format =>
  accept !== undefined &&
    accept.split(",").some((part) => {
      const [type, ...params] = part.split(";").map((piece) => piece.trim())
      const q = params.find((param) => param.startsWith("q="))
      return type === "application/openmetrics-text" && (q === undefined || Number(q.slice(2)) > 0)
    })
    ? "openmetrics"
    : "prometheus"

const escapeHelp = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const escapeLabel = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const formatLabels = (labels: Labels): string => {
  const parts: Array<string> = []
  for (const key in labels) {
    const value = labels[key]
    if (value !== undefined) parts.push(`${key}="${escapeLabel(String(value))}"`)
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`
}

const formatValue = (value: number): string =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

type Labels = Readonly<Record<string, string | number | undefined>>

/** One sample of a family, as prom-client's `metric.get()` gives it. */
interface Sample {
  readonly metricName?: string
  readonly labels: Labels
  readonly value: number
  readonly exemplar?: { readonly labelSet: Labels; readonly value: number; readonly timestamp: number } | null
}

/** One metric family as prom-client's `metric.get()` gives it (its typings say `type` is a number; it is a string). */
interface Family {
  readonly name: string
  readonly help: string
  readonly type: string
  readonly values: ReadonlyArray<Sample>
}

const sampleLine = (family: string, sample: Sample, format: Format, counter: boolean): string => {
  const name = sample.metricName ?? (counter && format === "openmetrics" ? `${family}_total` : family)
  const line = `${name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`
  const exemplar = sample.exemplar
  return exemplar && format === "openmetrics"
    ? `${line} # ${formatLabels(exemplar.labelSet)} ${formatValue(exemplar.value)} ${exemplar.timestamp}`
    : line
}

const renderFamily = (metric: Family, format: Format): string => {
  const counter = metric.type === "counter"
  const family = counter && format === "openmetrics" ? metric.name.replace(/_total$/, "") : metric.name
  const lines = [`# HELP ${family} ${escapeHelp(metric.help)}`, `# TYPE ${family} ${metric.type}`]
  for (const sample of metric.values) lines.push(sampleLine(family, sample, format, counter))
  return lines.join("\n")
}

/** Renders every metric of `registry` in `format`. */
export const render = async (registry: Registry<OpenMetricsContentType>, format: Format): Promise<string> => {
  const families = await Promise.all(
    registry.getMetricsAsArray().map((metric) => (metric as unknown as { get(): Promise<Family> }).get())
  )
  const body = families.map((family) => renderFamily(family, format)).join("\n")
  return format === "openmetrics" ? `${body}\n# EOF\n` : `${body}\n`
}
