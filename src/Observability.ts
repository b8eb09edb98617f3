/**
 * The layers a program provides once at its entry: {@link ObservabilityLive}
 * (tracing over OTLP gRPC, the metrics registry, the `/metrics` endpoint, all
 * configured from the environment) and, in specs, {@link ObservabilityTest}.
 *
 * @example
 * ```ts
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { ObservabilityLive, Poh } from "dag-observability"
 *
 * const program = Effect.gen(function*() {
 *   const poh = yield* Poh.Poh
 *   yield* poh.request({ txId: "tx-1", region: "eu-central" })
 * })
 *
 * program.pipe(
 *   Effect.provide(Poh.Poh.layerInProcess()),
 *   Effect.provide(ObservabilityLive("sending-dag")),
 *   NodeRuntime.runMain
 * )
 * ```
 */
import { Layer } from "effect"
import type { ServeError } from "effect/http/HttpServerError"
import type { InvalidConfig } from "./Config.ts"
import { Metrics } from "./Metrics.ts"
import { MetricsServer } from "./MetricsServer.ts"
import { TestSpans } from "./Testing.ts"
import * as Tracing from "./Tracing.ts"

/**
 * Tracing, Metrics and MetricsServer for the program `serviceName` (unless
 * `OTEL_SERVICE_NAME` says otherwise), configured from the environment.
 */
export const ObservabilityLive = (
  serviceName: string
): Layer.Layer<Metrics | MetricsServer, InvalidConfig | ServeError> =>
  Layer.merge(Tracing.layer(serviceName), MetricsServer.layer).pipe(Layer.provideMerge(Metrics.layer))

/** The same services for specs: spans kept in memory ({@link TestSpans}) and a fresh registry. */
export const ObservabilityTest: Layer.Layer<Metrics | TestSpans> = Layer.merge(TestSpans.layer, Metrics.layerTest)
