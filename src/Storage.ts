/**
 * Storage of approved transactions. {@link Storage.make} wraps a backend in
 * the traced workflows `Storage.persist` and `Storage.find`; the in-memory
 * backend here records `storage_latency_seconds` itself (the MongoDB backend
 * leaves that to `MongoMonitor`, which times the driver's commands).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Storage } from "dag-observability"
 *
 * const lookup = (id: string) =>
 *   Effect.gen(function*() {
 *     const storage = yield* Storage.Storage
 *     return yield* storage.find(id)
 *   })
 * ```
 */
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { errorType } from "./internal/errorType.ts"
import { Metrics } from "./Metrics.ts"
import { PohAck } from "./Poh.ts"

/** A transaction acknowledged by PoH, as it is stored. */
export class StoredTransaction extends Schema.Class<StoredTransaction>("dag-observability/StoredTransaction")({
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
export class Storage extends Context.Service<Storage, Backend>()("dag-observability/Storage") {
  /** Wraps `backend` in the spans `Storage.persist` and `Storage.find`. */
  static readonly make = (backend: Backend): Storage["Service"] =>
    Storage.of({
      persist: Effect.fn("Storage.persist")(function*(tx: StoredTransaction) {
        yield* Effect.annotateCurrentSpan("dag.tx.id", tx.id)
        return yield* backend.persist(tx)
      }, errorType),
      find: Effect.fn("Storage.find")(function*(id: string) {
        yield* Effect.annotateCurrentSpan("dag.tx.id", id)
        return yield* backend.find(id)
      }, errorType)
    })

  /** An in-memory store; it times its own writes into `storage_latency_seconds`. */
  static readonly layerMemory: Layer.Layer<Storage, never, Metrics> = Layer.effect(
    Storage,
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const rows = new Map<string, StoredTransaction>()
      return Storage.make({
        persist: (tx) =>
          Effect.gen(function*() {
            const started = yield* Clock.currentTimeNanos
            if (rows.has(tx.id)) return yield* new DuplicateTransaction({ id: tx.id })
            rows.set(tx.id, tx)
            yield* metrics.recordStorageLatency(Number((yield* Clock.currentTimeNanos) - started) / 1e9)
          }),
        find: (id) => Effect.sync(() => Option.fromUndefinedOr(rows.get(id)))
      })
    })
  )
}
