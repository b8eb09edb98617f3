/**
 * Effect's own metrics on `/metrics`: every `Metric.counter`, `gauge`, `histogram` (its boundaries as buckets),
 * `summary`, `frequency` and `timer` a program updates is served beside the prom-client families, read at scrape time
 * from Effect's metric registry. The layer provides that registry (`Metric.MetricRegistry`), so the metrics of the
 * fibers running under it land in it; each metric's series become a family registered on the {@link Metrics}
 * registry under its Prometheus name ({@link prometheusName}: a valid name, the unit appended, counters ending in
 * `_total`), attributes as labels, the description as HELP. Histogram samples recorded inside a sampled span keep
 * that span as the exemplar of their bucket (OpenMetrics).
 *
 * A name already taken by another family is refused when the Effect metric is first updated: that update dies with
 * {@link MetricNameClash}, one line. Past `seriesLimit` label sets per metric (`EFFECT_METRICS_SERIES_LIMIT`, 2000 by
 * default, OpenTelemetry's cardinality limit), updates of new label sets go to one series labelled
 * `otel_metric_overflow="true"` (so totals stay right), are counted in
 * `effect_metric_overflow_updates_total{metric}` (registered by the first of them), and a warning is logged once per
 * metric.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Metric } from "effect"
 * import { EffectMetrics, Metrics } from "dag-observability"
 *
 * const greetings = Metric.counter("greetings", { description: "Greetings sent." })
 *
 * const program = Metric.update(greetings, 1).pipe(
 *   Effect.provide(EffectMetrics.layer().pipe(Layer.provideMerge(Metrics.layerTest)))
 * ) // served as greetings_total
 * ```
 */
import { type Config, type Context, Effect, Layer, Metric, Schema } from "effect"
import { Family, type Metadata } from "./internal/effectFamily.ts"
import { prometheusName, sampleNames } from "./internal/effectNames.ts"
import { oneLine } from "./internal/oneLine.ts"
import { Metrics } from "./Metrics.ts"
import * as Settings from "./Settings.ts"

export { overflowLabel } from "./internal/effectFamily.ts"
export { prometheusName } from "./internal/effectNames.ts"

/** An Effect metric whose Prometheus name is already served by another family. */
export class MetricNameClash extends Schema.TaggedError<MetricNameClash>()("MetricNameClash", {
  /** The Effect metric's id. */
  metric: Schema.String,
  /** The name it would be served as. */
  servedAs: Schema.String,
  /** The family already holding that name, as `<type> <name>`. */
  taken: Schema.String
}) {
  override get message(): string {
    return `Effect metric "${this.metric}" would be served as ${this.servedAs}, but /metrics already has the ` +
      `${this.taken}; rename the Effect metric`
  }

  constructor(fields: { readonly metric: string; readonly servedAs: string; readonly taken: string }) {
    super(fields)
    oneLine(this)
  }
}

/** Label sets kept per metric when nothing says otherwise: OpenTelemetry's default cardinality limit. */
export const defaultSeriesLimit = 2000

/** Options of {@link layer}. */
export interface Options {
  /** Label sets (and frequency words) kept per metric; more go to its overflow series. */
  readonly seriesLimit: number
}

/** `EFFECT_METRICS_SERIES_LIMIT`: label sets kept per Effect metric, {@link defaultSeriesLimit} when unset. */
export const seriesLimit: Config.Config<number> = Settings.setting("EFFECT_METRICS_SERIES_LIMIT", defaultSeriesLimit, {
  expected: "a whole number from 1 to 1000000",
  parse: (text) => /^\d{1,7}$/.test(text) && Number(text) >= 1 && Number(text) <= 1_000_000 ? Number(text) : undefined
})

/** The families of prom-client's registry, as far as their names and types go. */
interface Named {
  readonly name: string
  readonly type?: string
}

/** The family of `registry` whose samples would share a name with a family `name` of `type`, if any. */
const clashing = (families: ReadonlyArray<Named>, name: string, type: string): Named | undefined => {
  const wanted = new Set(sampleNames(name, type))
  return families.find((family) => sampleNames(family.name, family.type ?? "").some((taken) => wanted.has(taken)))
}

/**
 * Effect's metric registry, keeping each series in the family of its Prometheus name on the prom-client registry.
 * Effect adds a series with `set` on its first update and uses the hooks of the metadata it gave: the family wraps
 * those hooks in place (exemplars, the overflow series) before Effect reads them back.
 */
class Registry extends Map<string, Metadata> {
  readonly #metrics: Metrics["Service"]
  readonly #families = new Map<string, Family>()
  readonly #byKey = new Map<string, Family>()
  readonly #limit: number
  readonly #overflows: (metric: string) => void
  readonly #warned = new Set<Family>()

  constructor(metrics: Metrics["Service"], limit: number) {
    super()
    this.#metrics = metrics
    this.#limit = limit
    // Registered by the first overflow: until then, /metrics shows nothing the program has not used.
    this.#overflows = (metric) =>
      metrics.counter({
        name: "effect_metric_overflow_updates_total",
        help: "Updates of an Effect metric to a label set past its series limit, kept in its otel_metric_overflow series.",
        labelNames: ["metric"]
      }).inc({ metric })
  }

  override set(key: string, metadata: Metadata): this {
    const family = this.#familyOf(metadata)
    if (family.add(key, metadata)) {
      this.#byKey.set(key, family)
      super.set(key, metadata)
    }
    return this
  }

  override delete(key: string): boolean {
    this.#byKey.get(key)?.remove(key)
    this.#byKey.delete(key)
    return super.delete(key)
  }

  override clear(): void {
    for (const key of this.keys()) this.delete(key)
  }

  #familyOf(metadata: Metadata): Family {
    const name = prometheusName(metadata.id, metadata.type, metadata.attributes)
    const known = this.#families.get(name)
    if (known !== undefined && known.effectType === metadata.type) return known
    const family = new Family(metadata, this.#limit, (overflowed, context) => this.#overflow(overflowed, context))
    const { registry } = this.#metrics
    const taken = known ?? clashing(registry.getMetricsAsArray() as unknown as ReadonlyArray<Named>, name, family.type)
    if (taken !== undefined) {
      throw new MetricNameClash({ metric: metadata.id, servedAs: name, taken: `${taken.type} ${taken.name}` })
    }
    registry.registerMetric(family as never)
    this.#families.set(name, family)
    return family
  }

  #overflow(family: Family, context: Context.Context<never>): void {
    this.#overflows(family.name)
    if (this.#warned.has(family)) return
    this.#warned.add(family)
    Effect.runForkWith(context)(Effect.logWarning(
      `Effect metric ${family.name} has reached its limit of ${this.#limit} label sets (EFFECT_METRICS_SERIES_LIMIT): ` +
        "updates of new label sets are counted in its otel_metric_overflow=\"true\" series"
    ))
  }
}

/** Effect's metric registry for the metrics of the {@link Metrics} service in context. */
export const make = (options: Options = { seriesLimit: defaultSeriesLimit }): Effect.Effect<
  Metric.MetricRegistry,
  never,
  Metrics
> =>
  Effect.gen(function*() {
    return new Registry(yield* Metrics, options.seriesLimit)
  })

/** Effect's metrics served with the {@link Metrics} registry: provides `Metric.MetricRegistry`. */
export const layer = (options?: Options): Layer.Layer<never, never, Metrics> =>
  Layer.effect(Metric.MetricRegistry, make(options))

/** {@link layer} with its options read through Effect `Config`: {@link seriesLimit} unless given another. */
export const layerConfig = (
  options: Config.Wrap<Options> = { seriesLimit }
): Layer.Layer<never, Settings.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.map(Settings.read(options), layer))
