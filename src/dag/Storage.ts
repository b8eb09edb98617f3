/**
 * Storage of approved transactions. {@link make} wraps a backend in the
 * traced workflows `Storage.persist` and `Storage.find`; each backend times
 * its acknowledged writes into `storage_latency_seconds`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Storage } from "dag-observability/dag"
 *
 * const lookup = (id: string) =>
 *   Effect.gen(function*() {
 *     const storage = yield* Storage.Storage
 *     return yield* storage.find(id)
 *   })
 * ```
 */
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { errorType } from "../internal/errorType.ts"
import { DagMetrics, type StorageTarget } from "./DagMetrics.ts"
import { PohAck } from "./Poh.ts"

/** A transaction acknowledged by PoH, as it is stored. */
export class StoredTransaction extends Schema.Class<StoredTransaction>("dag-observability/dag/StoredTransaction")({
  id: Schema.String,
  from: Schema.String,
  to: Schema.String,
  amount: Schema.Number,
  region: Schema.String,
  memo: Schema.optional(Schema.String),
  ack: PohAck
}) {}

/** The store cannot be reached; nothing was written. */
export class StorageUnavailable extends Schema.TaggedError<StorageUnavailable>()("StorageUnavailable", {
  operation: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `storage unavailable during ${this.operation}: ${this.reason}`
  }
}

/** A transaction with this id is already stored. */
export class DuplicateTransaction extends Schema.TaggedError<DuplicateTransaction>()("DuplicateTransaction", {
  id: Schema.String
}) {
  override get message(): string {
    return `transaction ${this.id} is already stored`
  }
}

/** Any failure of a storage write. */
export type PersistError = StorageUnavailable | DuplicateTransaction

/** What a storage backend does, before tracing. */
export interface Backend {
  /** Writes `tx`; succeeds only once the write is acknowledged. */
  readonly persist: (tx: StoredTransaction) => Effect.Effect<void, PersistError>
  readonly find: (id: string) => Effect.Effect<Option.Option<StoredTransaction>, StorageUnavailable>
}

/** The traced storage workflows. */
export class Storage extends Context.Service<Storage, Backend>()("dag-observability/dag/Storage") {}

/** Wraps `backend` in the spans `Storage.persist` and `Storage.find`. */
export const make = (backend: Backend): Effect.Effect<Storage["Service"]> =>
  Effect.succeed(Storage.of({
    persist: Effect.fn("Storage.persist")(function*(tx: StoredTransaction) {
      yield* Effect.annotateCurrentSpan("dag.tx.id", tx.id)
      return yield* backend.persist(tx)
    }, errorType),
    find: Effect.fn("Storage.find")(function*(id: string) {
      yield* Effect.annotateCurrentSpan("dag.tx.id", id)
      return yield* backend.find(id)
    }, errorType)
  }))

/**
 * Times `write` into `storage_latency_seconds` of `metrics` when it succeeds:
 * from the call to the acknowledgement, the current span as exemplar.
 */
export const timed = <A, E, R>(
  metrics: DagMetrics["Service"],
  write: Effect.Effect<A, E, R>,
  target?: StorageTarget
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeNanos
    const result = yield* write
    yield* metrics.recordStorageLatency(Number((yield* Clock.currentTimeNanos) - started) / 1e9, target)
    return result
  })

/** An in-memory store. */
export const layerMemory: Layer.Layer<Storage, never, DagMetrics> = Layer.effect(
  Storage,
  Effect.gen(function*() {
    const metrics = yield* DagMetrics
    const rows = new Map<string, StoredTransaction>()
    return yield* make({
      persist: (tx) =>
        timed(
          metrics,
          Effect.suspend(() => {
            if (rows.has(tx.id)) return Effect.fail(new DuplicateTransaction({ id: tx.id }))
            rows.set(tx.id, tx)
            return Effect.void
          })
        ),
      find: (id) => Effect.sync(() => Option.fromUndefinedOr(rows.get(id)))
    })
  })
)
