/**
 * The metrics of SPEC §4 as an Effect service backed by one `prom-client`
 * registry per layer. Every label has a bounded set of values: regions outside
 * the configured list are recorded as `other`. Latency histograms carry the
 * current span as an exemplar (`trace_id`, `span_id`), served in OpenMetrics.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Metrics } from "dag-observability"
 *
 * const program = Effect.gen(function*() {
 *   const metrics = yield* Metrics.Metrics
 *   yield* metrics.recordPohRequest("eu-central", "ok")
 * }).pipe(Effect.provide(Metrics.Metrics.layerTest))
 * ```
 */
import { Context, Effect, Layer } from "effect"
import { Counter, collectDefaultMetrics, Gauge, Histogram, type OpenMetricsContentType, Registry } from "prom-client"
import * as Config from "./Config.ts"
import { type Format, render } from "./internal/exposition.ts"

export { contentTypes, type Format, negotiate } from "./internal/exposition.ts"

/** The outcome of one PoH_REQUEST. */
export type PohStatus = "ok" | "error" | "timeout"

/** What became of finished spans handed to the exporter. */
export type SpanExportOutcome = "exported" | "failed" | "dropped"

/** The region label given to any region outside the configured list. */
export const otherRegion = "other"

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

/** prom-client default metrics that are gauges named like counters. */
const gaugesNamedTotal = ["nodejs_active_handles_total", "nodejs_active_requests_total", "nodejs_active_resources_total"]

const makeInstruments = (registry: Registry<OpenMetricsContentType>) => {
  const registers = [registry]
  const latency = <L extends string>(name: string, help: string, labelNames: ReadonlyArray<L>) =>
    new Histogram<L>({ name, help, labelNames, buckets: [...latencyBuckets], registers, enableExemplars: true })
  return {
    pohRequests: new Counter({
      name: "poh_requests_total",
      help: "PoH_REQUESTs issued, by region and status (ok, error, timeout).",
      labelNames: ["region", "status"] as const,
      registers
    }),
    pohAcks: new Counter({
      name: "poh_ack_total",
      help: "PoH_ACKs received, by region.",
      labelNames: ["region"] as const,
      registers
    }),
    approvalLatency: latency(
      "poh_approval_latency_seconds",
      "Time from PoH_REQUEST issued to PoH_ACK received (approval delay).",
      ["region"] as const
    ),
    txCommitted: new Counter({
      name: "tx_committed_total",
      help: "Transactions acknowledged by PoH and persisted.",
      labelNames: ["region"] as const,
      registers
    }),
    storageLatency: latency(
      "storage_latency_seconds",
      "Storage write completion latency.",
      ["operation", "collection"] as const
    ),
    presenceCalls: new Counter({
      name: "presence_calls_total",
      help: "Presence look-ups, by region and outcome (success, failure).",
      labelNames: ["region", "outcome"] as const,
      registers
    }),
    grpcServerLatency: latency(
      "grpc_method_latency_seconds",
      "gRPC server method latency.",
      ["service", "method", "code"] as const
    ),
    grpcClientLatency: latency(
      "grpc_client_latency_seconds",
      "gRPC client call latency.",
      ["service", "method", "code"] as const
    ),
    httpServerDuration: latency(
      "http_server_request_duration_seconds",
      "HTTP server request latency; its _count counts requests.",
      ["method", "route", "status_code"] as const
    ),
    mongodbCommandDuration: latency(
      "mongodb_command_duration_seconds",
      "MongoDB driver command latency, by command, collection and outcome.",
      ["command", "collection", "outcome"] as const
    ),
    mongodbPoolConnections: new Gauge({
      name: "mongodb_pool_connections",
      help: "MongoDB driver pool connections, by state (checked_out, available, pending).",
      labelNames: ["state"] as const,
      registers
    }),
    exportedSpans: new Counter({
      name: "otlp_exported_spans_total",
      help: "Finished spans handed to the OTLP exporter, by outcome (exported, failed, dropped).",
      labelNames: ["outcome"] as const,
      registers
    })
  }
}

/** The `prom-client` instruments behind the service, for code that records its own series. */
export type Instruments = ReturnType<typeof makeInstruments>

/** Options of {@link make}. */
export interface Options {
  /** Allowed `region` label values; anything else is `other`. */
  readonly regions: ReadonlyArray<string>
  /** Also collect prom-client's `nodejs_*` and `process_*` metrics. */
  readonly defaultMetrics: boolean
}

/** The metrics service: one registry and the seed's `record_*` helpers as effects. */
export class Metrics extends Context.Service<Metrics, {
  /** The registry holding every instrument. */
  readonly registry: Registry<OpenMetricsContentType>
  readonly instruments: Instruments
  /** Bounds a region label value to the configured list or `other`. */
  readonly region: (region: string) => string
  /** Counts one PoH_REQUEST. */
  readonly recordPohRequest: (region: string, status: PohStatus) => Effect.Effect<void>
  /** Counts one PoH_ACK and observes its approval latency. */
  readonly recordPohAck: (region: string, approvalSeconds: number) => Effect.Effect<void>
  /** Counts one committed transaction. */
  readonly recordTxCommitted: (region: string) => Effect.Effect<void>
  /** Observes one storage write latency. */
  readonly recordStorageLatency: (
    seconds: number,
    target?: { readonly operation: string; readonly collection: string }
  ) => Effect.Effect<void>
  /** Counts one presence look-up. */
  readonly recordPresence: (success: boolean, region: string) => Effect.Effect<void>
  /** Counts spans by export outcome; called from the OpenTelemetry SDK's callbacks. */
  readonly recordSpanExport: (outcome: SpanExportOutcome, count: number) => void
  /** Renders the registry in the given exposition format. */
  readonly render: (format: Format) => Effect.Effect<string>
}>()("dag-observability/Metrics") {
  /** Builds the service over a fresh registry. */
  static readonly make = (options: Options): Effect.Effect<Metrics["Service"]> =>
    Effect.sync(() => {
      const registry = new Registry<OpenMetricsContentType>()
      registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
      if (options.defaultMetrics) {
        collectDefaultMetrics({ register: registry })
        // Gauges named *_total fail `promtool check metrics`; the per-type gauges beside them carry the same counts.
        for (const name of gaugesNamedTotal) registry.removeSingleMetric(name)
      }
      const instruments = makeInstruments(registry)
      const allowed = new Set(options.regions)
      const region = (value: string) => allowed.has(value) ? value : otherRegion
      return Metrics.of({
        registry,
        instruments,
        region,
        recordPohRequest: (value, status) =>
          Effect.sync(() => instruments.pohRequests.inc({ region: region(value), status })),
        recordPohAck: (value, seconds) =>
          Effect.andThen(
            Effect.sync(() => instruments.pohAcks.inc({ region: region(value) })),
            observe(instruments.approvalLatency, { region: region(value) }, seconds)
          ),
        recordTxCommitted: (value) => Effect.sync(() => instruments.txCommitted.inc({ region: region(value) })),
        recordStorageLatency: (seconds, target = { operation: "insert", collection: "transactions" }) =>
          observe(instruments.storageLatency, target, seconds),
        recordPresence: (success, value) =>
          Effect.sync(() =>
            instruments.presenceCalls.inc({ region: region(value), outcome: success ? "success" : "failure" })
          ),
        recordSpanExport: (outcome, count) => instruments.exportedSpans.inc({ outcome }, count),
        render: (format) => Effect.promise(() => render(registry, format))
      })
    })

  /** The service with regions from `DAG_REGIONS` and the default Node.js metrics. */
  static readonly layer: Layer.Layer<Metrics, Config.InvalidConfig> = Layer.effect(
    Metrics,
    Effect.flatMap(Config.regions, (regions) => Metrics.make({ regions, defaultMetrics: true }))
  )

  /** A fresh registry with the default regions and no process metrics, for specs. */
  static readonly layerTest: Layer.Layer<Metrics> = Layer.effect(
    Metrics,
    Metrics.make({ regions: Config.defaultRegions, defaultMetrics: false })
  )
}

/** The span a latency sample may carry as its exemplar. */
export interface ExemplarSpan {
  readonly traceId: string
  readonly spanId: string
  readonly sampled: boolean
}

/** Observes `seconds` in `histogram` now, with `span` as the exemplar when it is sampled; for code outside Effect. */
export const observeWithSpan = <L extends string>(
  histogram: Histogram<L>,
  labels: Partial<Record<L, string | number>>,
  seconds: number,
  span: ExemplarSpan | undefined
): void =>
  histogram.observe({
    labels,
    value: seconds,
    exemplarLabels: (span !== undefined && span.sampled ? { trace_id: span.traceId, span_id: span.spanId } : {}) as
      Partial<Record<L, string>>
  })

/**
 * Observes `seconds` in `histogram`, with the current sampled span as the
 * exemplar when there is one.
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
