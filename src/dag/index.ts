/**
 * dag-observability/dag: the DAG network's domain, built on the generic core
 * the way a user builds on it: its metrics and the PoH, Presence, Storage and
 * Transaction workflows. As at the package root, what needs an optional peer
 * is a subpath of its own: `dag-observability/dag/PohGrpc` (the PoH gRPC
 * transport, `@grpc/grpc-js`) and `dag-observability/dag/MongoStorage` (the
 * MongoDB transaction store, `mongodb`).
 */

/** The DAG's metrics and the seed's `record*` helpers. */
export * as DagMetrics from "./DagMetrics.ts"

/** The PoH workflow, its transport and the node's sequencer. */
export * as Poh from "./Poh.ts"

/** Who is online. */
export * as Presence from "./Presence.ts"

/** Storage of approved transactions. */
export * as Storage from "./Storage.ts"

/** Transactions and the commit workflow. */
export * as Transaction from "./Transaction.ts"
