/**
 * dag-observability/dag: the DAG network's domain, built on the generic core
 * the way a user builds on it: its metrics, the PoH, Presence, Storage and
 * Transaction workflows, the PoH gRPC transport (`@grpc/grpc-js`) and the
 * MongoDB transaction store (`mongodb`).
 */

/** The DAG's metrics and the seed's `record*` helpers. */
export * as DagMetrics from "./DagMetrics.ts"

/** Storage of approved transactions in MongoDB. */
export * as MongoStorage from "./MongoStorage.ts"

/** The PoH workflow, its transport and the node's sequencer. */
export * as Poh from "./Poh.ts"

/** PoH over gRPC: the sending DAG's client and the PoH node's server. */
export * as PohGrpc from "./PohGrpc.ts"

/** Who is online. */
export * as Presence from "./Presence.ts"

/** Storage of approved transactions. */
export * as Storage from "./Storage.ts"

/** Transactions and the commit workflow. */
export * as Transaction from "./Transaction.ts"
