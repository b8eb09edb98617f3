/**
 * The layers a program provides once at its entry: {@link ObservabilityLive}
 * (tracing over OTLP gRPC, the metrics registry with Effect's own metrics, the
 * `/metrics` endpoint, the logger that writes each line with its trace, all
 * configured through Effect `Config`) and, in specs, {@link ObservabilityTest}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Main, ObservabilityLive } from "dag-observability"
 *
 * const program = Effect.log("hello").pipe(Effect.withSpan("hello"))
 *
 * program.pipe(Effect.provide(ObservabilityLive({ serviceName: "greeter", serviceVersion: "1.0.0" })), Main.runMain)
 * ```
 */
import { type Config, Layer } from "effect"
import * as EffectMetrics from "./EffectMetrics.ts"
import type { ListenError } from "./ListenError.ts"
import * as Logging from "./Logging.ts"
import * as Metrics from "./Metrics.ts"
import * as MetricsServer from "./MetricsServer.ts"
import type { InvalidConfig } from "./Settings.ts"
import * as Testing from "./Testing.ts"
import * as Tracing from "./Tracing.ts"

/** Options of {@link ObservabilityLive}. */
export interface Options {
  /** The settings of `/metrics`; {@link MetricsServer.config}`()` (`PROMETHEUS_BIND`, …) by default. */
  readonly metricsServer?: Config.Wrap<MetricsServer.Options>
}

/**
 * Tracing, Metrics (with Effect's own metrics, {@link EffectMetrics}), MetricsServer and the program's logger
 * ({@link Logging}) for the program named `resource` (a name, or a name with a version and more resource
 * attributes), configured through Effect `Config`: the environment by default, any `ConfigProvider` the program
 * provides above it. The logger is installed first, so the other layers' lines (`metrics at …`) are written by it.
 */
export const ObservabilityLive = (
  resource: Tracing.Resource | string,
  options: Options = {}
): Layer.Layer<Metrics.Metrics | MetricsServer.MetricsServer, InvalidConfig | ListenError> =>
  Layer.mergeAll(
    Tracing.layerConfig(resource),
    MetricsServer.layerConfig(options.metricsServer),
    EffectMetrics.layerConfig()
  ).pipe(
    Layer.provideMerge(Logging.layerConfig(resource)),
    Layer.provideMerge(Metrics.layer)
  )

/**
 * The same services for specs: spans and log records kept in memory ({@link Testing.TestSpans},
 * {@link Testing.TestLogs}), a fresh registry with Effect's metrics on it.
 */
export const ObservabilityTest: Layer.Layer<Metrics.Metrics | Testing.TestSpans | Testing.TestLogs> = Layer.merge(
  Testing.layer,
  EffectMetrics.layer()
).pipe(Layer.provideMerge(Metrics.layerTest))
