/**
 * dag-observability: Effect-based observability for a DAG network — traces
 * through OpenTelemetry, metrics through prom-client.
 */

/** Settings read from the environment (SPEC §3). */
export * as Config from "./Config.ts"

/** The metrics service and its registry. */
export * as Metrics from "./Metrics.ts"

/** The `/metrics` endpoint. */
export * as MetricsServer from "./MetricsServer.ts"

/** Tracing over OTLP gRPC. */
export * as Tracing from "./Tracing.ts"

/** The PoH workflow, its transport and the node's sequencer. */
export * as Poh from "./Poh.ts"

/** Who is online. */
export * as Presence from "./Presence.ts"

/** Storage of approved transactions. */
export * as Storage from "./Storage.ts"

/** Transactions and the commit workflow. */
export * as Transaction from "./Transaction.ts"

/** Running a program with graceful shutdown on signals. */
export * as Main from "./Main.ts"

/** Finished spans and metric values in specs. */
export * as Testing from "./Testing.ts"

export { ObservabilityLive, ObservabilityTest } from "./Observability.ts"
