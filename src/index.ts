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

/** The MongoDB client and database. */
export * as Mongo from "./Mongo.ts"

/** Spans and metrics of every MongoDB command, and the pool's connections. */
export * as MongoMonitor from "./MongoMonitor.ts"

/** Storage of approved transactions in MongoDB. */
export * as MongoStorage from "./MongoStorage.ts"

/** Transactions and the commit workflow. */
export * as Transaction from "./Transaction.ts"

/** One-line instrumentation of Effect's HTTP server. */
export * as Http from "./Http.ts"

/** Running a program with graceful shutdown on signals. */
export * as Main from "./Main.ts"

/** Finished spans and metric values in specs. */
export * as Testing from "./Testing.ts"

export { ObservabilityLive, ObservabilityTest } from "./Observability.ts"

/** One-line tracing and metrics for grpc-js servers and clients, and Effect handlers as unary methods. */
export * as Grpc from "./Grpc.ts"

/** PoH over gRPC: the sending DAG's client and the PoH node's server. */
export * as PohGrpc from "./PohGrpc.ts"
