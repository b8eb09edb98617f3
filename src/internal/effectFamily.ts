/**
 * @internal
 *
 * One Prometheus family made of Effect metric series: the family's name, type and help, built from an Effect metric's
 * id, type, unit and description, its series (one per attribute set, read through their hooks at scrape time) and,
 * for histograms, the last sample of each bucket recorded inside a sampled span. A family is registered in the
 * prom-client registry beside prom-client's own, so that one renderer (`exposition.ts`) serves both and a name is
 * taken once. Its `get()` answers as prom-client's families do.
 */
import { Context, type Metric, Tracer } from "effect"
import { type FamilyType, familyType, labelName, prometheusName, unitOf } from "./effectNames.ts"

/** An Effect metric series as the registry holds it. */
export type Metadata = Metric.Metric.Metadata<unknown, unknown>

/** The label added to the one series that takes the updates of label sets past the series limit (as OpenTelemetry). */
export const overflowLabel = "otel_metric_overflow"

/** The Frequency word that stands for every word past the series limit. */
const overflowWord = "\u0000overflow"

/** Attributes that name the unit of a metric rather than a series (Effect's `Metric.timer` sets `time_unit`). */
const unitAttributes = new Set(["unit", "time_unit"])

type Labels = Record<string, string>

/** One sample as prom-client's `get()` gives it. */
interface Sample {
  readonly labels: Labels
  readonly value: number
  readonly metricName?: string
  readonly exemplar?: Exemplar
}

interface Exemplar {
  readonly labelSet: Labels
  readonly value: number
  readonly timestamp: number
}

/** A series of the family: its hooks and labels, and a histogram's bounds and exemplars. */
interface Series {
  readonly metadata: Metadata
  readonly labels: Labels
  readonly bounds: ReadonlyArray<number>
  readonly exemplars: Array<Exemplar | undefined>
}

const labelsOf = (attributes: Metric.Metric.AttributeSet | undefined): Labels => {
  const labels: Labels = {}
  for (const key in attributes) {
    if (!unitAttributes.has(key)) labels[labelName(key)] = String(attributes[key])
  }
  return labels
}

/** The index of the bucket `value` falls in: the first bound at or above it, else the `+Inf` bucket. */
const bucketOf = (bounds: ReadonlyArray<number>, value: number): number => {
  let low = 0
  let high = bounds.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (value <= bounds[mid]!) high = mid
    else low = mid + 1
  }
  return low
}

const emptyContext = Context.empty()

type Hooks = Metric.Metric.Hooks<unknown, unknown>

const withHooks = (metadata: Metadata, hooks: Hooks): Metadata => {
  ;(metadata as { hooks: Hooks }).hooks = hooks
  return metadata
}

/** What a family tells its registry: an update past the series limit, with the context of the fiber that made it. */
export type OnOverflow = (family: Family, context: Context.Context<never>) => void

/** A family of Effect metric series, registered in prom-client's registry under its Prometheus name. */
export class Family {
  readonly name: string
  readonly help: string
  readonly type: FamilyType
  /** The Effect type of its series: one family never mixes two. */
  readonly effectType: Metric.Metric.Type
  readonly aggregator = "sum"
  readonly #series = new Map<string, Series>()
  #overflow: Series | undefined
  readonly #limit: number
  readonly #onOverflow: OnOverflow
  /** Converts Effect's values to the family's unit (milliseconds to seconds for `Metric.timer`). */
  readonly #scale: (value: number) => number

  constructor(metadata: Metadata, limit: number, onOverflow: OnOverflow) {
    this.effectType = metadata.type
    this.type = familyType(metadata.type)
    this.name = prometheusName(metadata.id, metadata.type, metadata.attributes)
    this.help = metadata.description ?? `Effect ${metadata.type.toLowerCase()} ${metadata.id}.`
    this.#limit = limit
    this.#onOverflow = onOverflow
    const [, scale] = unitOf(this.type, metadata.attributes)
    this.#scale = scale < 0 ? (value) => value / -scale : (value) => value * scale
  }

  /**
   * Takes the series `key` (new or replacing one): its hooks wrapped to keep exemplars (histograms) and cap words
   * (frequencies). Past the limit of series, its updates go to the family's overflow series instead: `false`.
   */
  add(key: string, metadata: Metadata): boolean {
    if (!this.#series.has(key) && this.#series.size >= this.#limit) {
      this.#overflow ??= this.#track({ ...metadata, attributes: { [overflowLabel]: "true" } })
      const overflow = this.#overflow.metadata.hooks
      const redirect = (input: unknown, context: Context.Context<never>) => {
        this.#onOverflow(this, context)
        overflow.update(input, context)
      }
      withHooks(metadata, { get: overflow.get, update: redirect, modify: redirect })
      return false
    }
    this.#series.set(key, this.#track(metadata))
    return true
  }

  /** Forgets the series `key`. */
  remove(key: string): void {
    this.#series.delete(key)
  }

  #track(metadata: Metadata): Series {
    const { get, update } = metadata.hooks
    const labels = labelsOf(metadata.attributes)
    if (metadata.type === "Histogram") {
      const bounds = (get(emptyContext) as Metric.HistogramState).buckets.map(([bound]) => bound)
        .filter(Number.isFinite)
      const series: Series = { metadata, labels, bounds, exemplars: [] }
      const record = (input: unknown, context: Context.Context<never>) => {
        const value = input as number
        update(value, context)
        const span = Context.getOrUndefined(context, Tracer.ParentSpan)
        if (span !== undefined && span.sampled) {
          series.exemplars[bucketOf(bounds, value)] = {
            labelSet: { trace_id: span.traceId, span_id: span.spanId },
            value: this.#scale(value),
            timestamp: Date.now() / 1000
          }
        }
      }
      withHooks(metadata, { get, update: record, modify: record })
      return series
    }
    if (metadata.type === "Frequency") {
      const { occurrences } = get(emptyContext) as { readonly occurrences: ReadonlyMap<string, number> }
      const count = (input: unknown, context: Context.Context<never>) => {
        const word = input as string
        if (occurrences.has(word) || occurrences.size < this.#limit) return update(word, context)
        this.#onOverflow(this, context)
        update(overflowWord, context)
      }
      withHooks(metadata, { get, update: count, modify: count })
    }
    return { metadata, labels, bounds: [], exemplars: [] }
  }

  /** The family's samples now, as prom-client's `get()` gives them. */
  get(): Promise<{ name: string; help: string; type: FamilyType; aggregator: string; values: Array<Sample> }> {
    const values: Array<Sample> = []
    for (const series of this.#series.values()) this.#samples(series, values)
    if (this.#overflow !== undefined) this.#samples(this.#overflow, values)
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values })
  }

  /** Nothing to reset: the values are Effect's. */
  reset(): void {}

  #samples({ bounds, exemplars, labels, metadata }: Series, into: Array<Sample>): void {
    const state = metadata.hooks.get(emptyContext)
    const name = this.name
    const scale = this.#scale
    switch (metadata.type) {
      case "Counter":
        into.push({ labels, value: scale(Number((state as Metric.CounterState<number>).count)) })
        return
      case "Gauge":
        into.push({ labels, value: scale(Number((state as Metric.GaugeState<number>).value)) })
        return
      case "Frequency":
        for (const [word, count] of (state as Metric.FrequencyState).occurrences) {
          const extra = word === overflowWord ? { [overflowLabel]: "true" } : { key: word }
          into.push({ labels: { ...labels, ...extra }, value: count })
        }
        return
      case "Histogram": {
        const { buckets, count, sum } = state as Metric.HistogramState
        buckets.forEach(([bound, cumulative], i) => {
          if (!Number.isFinite(bound)) return
          const exemplar = exemplars[i]
          const sample = { labels: { ...labels, le: String(scale(bound)) }, value: cumulative, metricName: `${name}_bucket` }
          into.push(exemplar === undefined ? sample : { ...sample, exemplar })
        })
        const inf = exemplars[bounds.length]
        const last = { labels: { ...labels, le: "+Inf" }, value: count, metricName: `${name}_bucket` }
        into.push(inf === undefined ? last : { ...last, exemplar: inf })
        this.#totals(labels, scale(sum), count, into)
        return
      }
      case "Summary": {
        const { count, quantiles, sum } = state as Metric.SummaryState
        for (const [quantile, value] of quantiles) {
          if (value !== undefined) into.push({ labels: { ...labels, quantile: String(quantile) }, value: scale(value) })
        }
        this.#totals(labels, scale(sum), count, into)
      }
    }
  }

  #totals(labels: Labels, sum: number, count: number, into: Array<Sample>): void {
    into.push({ labels, value: sum, metricName: `${this.name}_sum` }, { labels, value: count, metricName: `${this.name}_count` })
  }
}
