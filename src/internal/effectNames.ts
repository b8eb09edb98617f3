/**
 * @internal
 *
 * The Prometheus names of Effect metrics, as OpenTelemetry's Prometheus exporters make them: a valid name, the unit
 * (a `unit` or `time_unit` attribute) in its base unit, counters ending in `_total`; valid label names; and the sample
 * names a family writes, which no other family may write.
 */
import type { Metric } from "effect"

/** The Prometheus type of a family. */
export type FamilyType = "counter" | "gauge" | "histogram" | "summary"

/**
 * Units (UCUM, as OpenTelemetry writes them, or spelled out) in the base unit Prometheus names them with, and the
 * factor that converts a value to it: Effect's `Metric.timer` measures milliseconds, `/metrics` serves seconds.
 */
const baseUnits: Readonly<Record<string, readonly [suffix: string, scale: number]>> = {
  // A negative scale divides: 1/1000 is not exactly 0.001, and the bounds of `Metric.timer` must print as written.
  s: ["seconds", 1],
  seconds: ["seconds", 1],
  ms: ["seconds", -1e3],
  milliseconds: ["seconds", -1e3],
  us: ["seconds", -1e6],
  microseconds: ["seconds", -1e6],
  ns: ["seconds", -1e9],
  nanoseconds: ["seconds", -1e9],
  min: ["seconds", 60],
  minutes: ["seconds", 60],
  h: ["seconds", 3600],
  hours: ["seconds", 3600],
  d: ["seconds", 86400],
  days: ["seconds", 86400],
  By: ["bytes", 1],
  bytes: ["bytes", 1],
  KiBy: ["bytes", 1024],
  MiBy: ["bytes", 1024 ** 2],
  GiBy: ["bytes", 1024 ** 3],
  KBy: ["bytes", 1e3],
  MBy: ["bytes", 1e6],
  GBy: ["bytes", 1e9],
  "%": ["percent", 1]
}

const sanitize = (text: string): string => {
  const name = text.replace(/[^a-zA-Z0-9_]/g, "_").replace(/_+/g, "_").replace(/_$/, "")
  return name === "" ? "_" : /^[0-9]/.test(name) ? `_${name}` : name
}

/** A valid Prometheus label name for an attribute key. */
export const labelName = (key: string): string => sanitize(key)

/** The Prometheus type Effect's `type` is served as: a Frequency is a counter with a `key` label per word. */
export const familyType = (type: Metric.Metric.Type): FamilyType =>
  type === "Frequency" ? "counter" : type === "Counter" ? "counter" : type === "Gauge" ? "gauge" :
  type === "Histogram" ? "histogram" : "summary"

/** The unit suffix of a family's name and the factor converting its values to that unit. */
export const unitOf = (
  type: FamilyType,
  attributes: Metric.Metric.AttributeSet | undefined
): readonly [suffix: string | undefined, scale: number] => {
  const unit = attributes?.["unit"] ?? attributes?.["time_unit"]
  if (unit === undefined || unit === "") return [undefined, 1]
  if (unit === "1") return [type === "gauge" ? "ratio" : undefined, 1]
  const plain = unit.replace(/\{[^}]*\}/g, "")
  return baseUnits[plain] ?? [plain === "" ? undefined : sanitize(plain), 1]
}

/**
 * The Prometheus name of an Effect metric: `id` made a valid name, its unit (a `unit` or `time_unit` attribute) in
 * its base unit appended unless already there, and counters ending in `_total`, as OpenTelemetry's Prometheus
 * exporters name them.
 */
export const prometheusName = (
  id: string,
  type: Metric.Metric.Type,
  attributes: Metric.Metric.AttributeSet | undefined
): string => {
  const kind = familyType(type)
  let name = sanitize(id)
  if (kind === "counter") name = name.replace(/_total$/, "")
  const [suffix] = unitOf(kind, attributes)
  if (suffix !== undefined && !name.endsWith(`_${suffix}`)) name = `${name}_${suffix}`
  return kind === "counter" ? `${name}_total` : name
}

/** The sample names a family of `type` named `name` writes (and OpenMetrics' counter family name). */
export const sampleNames = (name: string, type: string): ReadonlyArray<string> =>
  type === "counter"
    ? [name, name.replace(/_total$/, "")]
    : type === "histogram"
    ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`]
    : type === "summary"
    ? [name, `${name}_sum`, `${name}_count`]
    : [name]
