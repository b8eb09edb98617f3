/**
 * The layers a program provides once at its entry: {@link ObservabilityLive}
 * (tracing over OTLP gRPC, the metrics registry, the `/metrics` endpoint, all
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
import type { ListenError } from "./ListenError.ts"
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
 * Tracing, Metrics and MetricsServer for the program named `resource` (a
 * name, or a name with a version and more resource attributes), configured
 * through Effect `Config`: the environment by default, any `ConfigProvider`
 * the program provides above it.
 */
export const ObservabilityLive = (
  resource: Tracing.Resource | string,
  options: Options = {}
): Layer.Layer<Metrics.Metrics | MetricsServer.MetricsServer, InvalidConfig | ListenError> =>
  Layer.merge(Tracing.layerConfig(resource), MetricsServer.layerConfig(options.metricsServer)).pipe(
    Layer.provideMerge(Metrics.layer)
  )

/** The same services for specs: spans kept in memory ({@link Testing.TestSpans}) and a fresh registry. */
export const ObservabilityTest: Layer.Layer<Metrics.Metrics | Testing.TestSpans> = Layer.merge(
  Testing.layer,
  Metrics.layerTest
)
