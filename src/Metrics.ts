/**
 * The metrics registry as an Effect service: one `prom-client` registry per
 * layer, which every instrumentation registers its own instruments on when
 * it is used, so `/metrics` shows what the program uses and nothing else.
 * Latency histograms carry the current span as an exemplar (`trace_id`,
 * `span_id`), served in OpenMetrics.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Metrics } from "dag-observability"
 *
 * const greet = Effect.gen(function*() {
 *   const metrics = yield* Metrics.Metrics
 *   const latency = metrics.histogram({ name: "greet_duration_seconds", help: "Greeting latency.", labelNames: ["lang"] })
 *   yield* Metrics.observe(latency, { lang: "en" }, 0.012)
 * }).pipe(Effect.provide(Metrics.layerTest))
 * ```
 */
import { Context, Effect, Layer } from "effect"
import {
  Counter,
  type CounterConfiguration,
  collectDefaultMetrics,
  Gauge,
  type GaugeConfiguration,
  Histogram,
  type HistogramConfiguration,
  type Metric,
  type OpenMetricsContentType,
  Registry
} from "prom-client"
import { Family } from "./internal/effectFamily.ts"
import { type Format, render } from "./internal/exposition.ts"

export { contentTypes, type Format, negotiate } from "./internal/exposition.ts"

/** Bucket bounds (seconds) of every latency histogram: 0.5 ms to 10 s. */
export const latencyBuckets: ReadonlyArray<number> = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10
]

/** What names an instrument: its name, help and label names. */
export interface InstrumentOptions<L extends string> {
  readonly name: string
  readonly help: string
  readonly labelNames?: ReadonlyArray<L>
}

/** Options of {@link Metrics}' `histogram`: {@link latencyBuckets} unless `buckets` says otherwise. */
export interface HistogramOptions<L extends string> extends InstrumentOptions<L> {
  readonly buckets?: ReadonlyArray<number>
}

/** The metrics service: one registry, and its instruments registered once by name. */
export class Metrics extends Context.Service<Metrics, {
  /** The registry holding every instrument. */
  readonly registry: Registry<OpenMetricsContentType>
  /** The counter named `options.name`: registered now, or the one registered before under that name. */
  readonly counter: <L extends string>(options: InstrumentOptions<L>) => Counter<L>
  /** The gauge named `options.name`: registered now, or the one registered before under that name. */
  readonly gauge: <L extends string>(options: InstrumentOptions<L>) => Gauge<L>
  /**
   * The histogram named `options.name`, exemplars enabled: registered now, or
   * the one registered before under that name.
   */
  readonly histogram: <L extends string>(options: HistogramOptions<L>) => Histogram<L>
  /** Renders the registry in the given exposition format. */
  readonly render: (format: Format) => Effect.Effect<string>
}>()("dag-observability/Metrics") {}

/** Options of {@link make}. */
export interface Options {
  /** Also collect prom-client's `nodejs_*` and `process_*` metrics. */
  readonly defaultMetrics: boolean
}

/** prom-client default metrics that are gauges named like counters. */
const gaugesNamedTotal = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]

type Kind = "counter" | "gauge" | "histogram"

const labelList = (names: ReadonlyArray<string> | undefined) => (names ?? []).toSorted().join(",")

/** What a registered instrument says of itself (prom-client keeps these as plain fields). */
interface Registered {
  readonly type?: string
  readonly labelNames?: ReadonlyArray<string>
  readonly upperBounds?: ReadonlyArray<number>
}

/**
 * The instrument `name` of `kind`; one registered under that name before must
 * be the same kind with the same labels (and, for a histogram asked with
 * `buckets`, those buckets).
 */
const instrument = <M extends Metric>(
  registry: Registry<OpenMetricsContentType>,
  kind: Kind,
  options: HistogramOptions<string>,
  create: () => M
): M => {
  const existing = registry.getSingleMetric(options.name) as (M & Registered) | undefined
  if (existing === undefined) return create()
  if (existing instanceof Family) {
    throw new Error(`metric ${options.name} is already served for the Effect metric of that name, not as a ${kind}`)
  }
  const [registered, asked] = [labelList(existing.labelNames), labelList(options.labelNames)]
  if (existing.type !== kind || registered !== asked) {
    throw new Error(
      `metric ${options.name} is already registered as a ${existing.type} with labels [${registered}], ` +
        `not as a ${kind} with labels [${asked}]`
    )
  }
  const buckets = options.buckets?.join(",")
  if (buckets !== undefined && existing.upperBounds?.join(",") !== buckets) {
    throw new Error(
      `metric ${options.name} is already registered with buckets [${existing.upperBounds?.join(",")}], not [${buckets}]`
    )
  }
  return existing
}

/** Builds the service over a fresh registry. */
export const make = ({ defaultMetrics }: Options): Effect.Effect<Metrics["Service"]> =>
  Effect.sync(() => {
    const registry = new Registry<OpenMetricsContentType>()
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
    if (defaultMetrics) {
      collectDefaultMetrics({ register: registry })
      // Gauges named *_total fail `promtool check metrics`; the per-type gauges beside them carry the same counts.
      for (const name of gaugesNamedTotal) registry.removeSingleMetric(name)
    }
    const registers = [registry]
    return Metrics.of({
      registry,
      counter: (options) =>
        instrument(registry, "counter", options, () =>
          new Counter({ ...options, labelNames: options.labelNames ?? [], registers } as CounterConfiguration<never>)),
      gauge: (options) =>
        instrument(registry, "gauge", options, () =>
          new Gauge({ ...options, labelNames: options.labelNames ?? [], registers } as GaugeConfiguration<never>)),
      histogram: (options) =>
        instrument(registry, "histogram", options, () =>
          new Histogram({
            ...options,
            labelNames: options.labelNames ?? [],
            buckets: [...(options.buckets ?? latencyBuckets)],
            registers,
            enableExemplars: true
          } as HistogramConfiguration<never>)),
      render: (format) => Effect.promise(() => render(registry, format))
    })
  })

/** A fresh registry with prom-client's default `nodejs_*` and `process_*` metrics. */
export const layer: Layer.Layer<Metrics> = Layer.effect(Metrics, make({ defaultMetrics: true }))

/** A fresh registry with no process metrics, for specs. */
export const layerTest: Layer.Layer<Metrics> = Layer.effect(Metrics, make({ defaultMetrics: false }))

/** The span a latency sample may carry as its exemplar. */
export interface ExemplarSpan {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

/**
 * Observes `seconds` in `histogram` now, with `span` as the exemplar when it
 * is sampled and the histogram keeps exemplars (one made without
 * `enableExemplars` is observed plainly); for code outside Effect.
 */
export const observeWithSpan = <L extends string>(
  histogram: Histogram<L>,
  labels: Partial<Record<L, string | number>>,
  seconds: number,
  span: ExemplarSpan | undefined
): void => {
  if (!(histogram as { readonly enableExemplars?: boolean }).enableExemplars) {
    return histogram.observe(labels, seconds)
  }
  histogram.observe({
    labels,
    value: seconds,
    exemplarLabels: (span !== undefined && span.sampled ? { trace_id: span.traceId, span_id: span.spanId } : {}) as
      Partial<Record<L, string>>
  })
}

/**
 * Observes `seconds` in `histogram`, with the current sampled span as the
 * exemplar when there is one. Any `prom-client` histogram works; those made
 * by {@link Metrics}' `histogram` (or with `enableExemplars: true`) keep the
 * exemplar.
 */
export const observe = <L extends string>(
  histogram: Histogram<L>,
  labels: Partial<Record<L, string | number>>,
  seconds: number
): Effect.Effect<void> =>
  Effect.withFiber((fiber) => {
    observeWithSpan(histogram, labels, seconds, fiber.cache.span)
    return Effect.void
  })
