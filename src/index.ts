/**
 * dag-observability: observability for Effect programs — traces through
 * OpenTelemetry, metrics through prom-client, both provided by one layer at
 * the program's entry. The modules that need an optional peer are subpaths
 * of their own: `dag-observability/Grpc` (`@grpc/grpc-js`),
 * `dag-observability/Mongo` and `dag-observability/MongoMonitor`
 * (`mongodb`); the DAG network's domain is `dag-observability/dag`.
 */

/** {@link ObservabilityLive} and {@link ObservabilityTest}: everything at a program's entry. */
export { ObservabilityLive, ObservabilityTest } from "./Observability.ts"

/** Effect's own `Metric`s served on `/metrics`. */
export * as EffectMetrics from "./EffectMetrics.ts"

/** A server that cannot listen where it was asked to. */
export { ListenError } from "./ListenError.ts"

/** One-line instrumentation of Effect's HTTP server. */
export * as Http from "./Http.ts"

/** One-line instrumentation of Effect's HTTP client: CLIENT spans, W3C propagation, latency histogram. */
export * as HttpClient from "./HttpClient.ts"

/** The program's logger: lines that carry their trace, JSON or pretty. */
export * as Logging from "./Logging.ts"

/** Running a program with graceful shutdown on signals. */
export * as Main from "./Main.ts"

/** The metrics registry and its instruments. */
export * as Metrics from "./Metrics.ts"

/** The `/metrics` endpoint. */
export * as MetricsServer from "./MetricsServer.ts"

/** Log records exported over OTLP gRPC. */
export * as OtlpLogs from "./OtlpLogs.ts"

/** The environment settings (SPEC §3) as Effect `Config` values. */
export * as Settings from "./Settings.ts"

/** Finished spans, log records and metric values in specs. */
export * as Testing from "./Testing.ts"

/** Tracing over OTLP gRPC. */
export * as Tracing from "./Tracing.ts"
