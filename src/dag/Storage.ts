/**
 * Storage of approved transactions. {@link make} wraps a backend in the
 * traced workflows `Storage.persist` and `Storage.find`; each backend times
 * its successful writes into `storage_latency_seconds`.
 *
 * Persisting is idempotent: a transaction found already stored with the very
 * same content (every field, the PoH ack included) is a success, so a write
 * retried after its first attempt had landed (the MongoDB driver's retryable
 * writes, or a caller trying again) answers with the stored transaction; only
 * a different transaction under the same id is {@link DuplicateTransaction}.
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
import { isDeepStrictEqual } from "node:util"
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

/** Another transaction (different content) is already stored under this id. */
export class DuplicateTransaction extends Schema.TaggedError<DuplicateTransaction>()("DuplicateTransaction", {
  id: Schema.String
}) {
  override get message(): string {
    return `transaction ${this.id} is already stored`
  }
}

/** Any failure of a storage write. */
export type PersistError = StorageUnavailable | DuplicateTransaction

/** What a backend's persist did. */
export interface Persisted {
  /** The transaction as the store holds it: the one given, or the same one found already stored. */
  readonly stored: StoredTransaction
  /**
   * The store already held this very transaction ({@link sameTransaction}) and kept it: a retried write whose first
   * attempt had landed, or the same transaction persisted again.
   */
  readonly alreadyStored: boolean
}

/** What a storage backend does, before tracing. */
export interface Backend {
  /**
   * Writes `tx`, succeeding only once the write is acknowledged; when a transaction with its id is already stored,
   * succeeds with `alreadyStored` if it is the {@link sameTransaction}, else fails with {@link DuplicateTransaction}.
   */
  readonly persist: (tx: StoredTransaction) => Effect.Effect<Persisted, PersistError>
  /** The transaction stored under `id`, if any. */
  readonly find: (id: string) => Effect.Effect<Option.Option<StoredTransaction>, StorageUnavailable>
}

/** The traced storage workflows. */
export class Storage extends Context.Service<Storage, {
  /**
   * `Storage.persist`: writes `tx` idempotently and returns the transaction as stored. The span is OK on success,
   * with `dag.storage.already_stored: true` when the very same transaction was found already stored (with
   * `MongoMonitor`, its child spans then show the failed inserts and the read that found it); on failure it is ERROR
   * with the error's tag as `error.type`: `DuplicateTransaction` only for a different transaction under the same id,
   * `StorageUnavailable` when the store could not be reached or could not confirm.
   */
  readonly persist: (tx: StoredTransaction) => Effect.Effect<StoredTransaction, PersistError>
  /** `Storage.find`: the transaction stored under `id`, if any. */
  readonly find: (id: string) => Effect.Effect<Option.Option<StoredTransaction>, StorageUnavailable>
}>()("dag-observability/dag/Storage") {}

/** Wraps `backend` in the spans `Storage.persist` and `Storage.find`. */
export const make = (backend: Backend): Effect.Effect<Storage["Service"]> =>
  Effect.succeed(Storage.of({
    persist: Effect.fn("Storage.persist")(function*(tx: StoredTransaction) {
      yield* Effect.annotateCurrentSpan("dag.tx.id", tx.id)
      const { alreadyStored, stored } = yield* backend.persist(tx)
      if (alreadyStored) yield* Effect.annotateCurrentSpan("dag.storage.already_stored", true)
      return stored
    }, errorType),
    find: Effect.fn("Storage.find")(function*(id: string) {
      yield* Effect.annotateCurrentSpan("dag.tx.id", id)
      return yield* backend.find(id)
    }, errorType)
  }))

/** A transaction's encoded fields, without those left undefined (as a store that ignores undefined keeps them). */
const fields = (tx: StoredTransaction): unknown => {
  const strip = (value: unknown): unknown =>
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? Object.fromEntries(
        Object.entries(value).flatMap(([key, field]) => field === undefined ? [] : [[key, strip(field)]])
      )
      : value
  return strip(Schema.encodeSync(StoredTransaction)(tx))
}

/**
 * `a` and `b` are the same transaction: every field equal, the PoH ack's included (an absent memo and an undefined
 * one are the same). Only a retry or a replay of one write can give two such, since each commit has its own id and
 * its own ack.
 */
export const sameTransaction = (a: StoredTransaction, b: StoredTransaction): boolean =>
  isDeepStrictEqual(fields(a), fields(b))

/**
 * Times `write` into `storage_latency_seconds` of `metrics` when it succeeds:
 * from the call to the acknowledgement (or, for a transaction found already
 * stored, to the read that confirmed it), the current span as exemplar. A
 * failed write is not timed.
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

/** An in-memory store, idempotent as every backend: the same transaction again is kept, timed and answered. */
export const layerMemory: Layer.Layer<Storage, never, DagMetrics> = Layer.effect(
  Storage,
  Effect.gen(function*() {
    const metrics = yield* DagMetrics
    const rows = new Map<string, StoredTransaction>()
    return yield* make({
      persist: (tx) =>
        timed(
          metrics,
          Effect.suspend((): Effect.Effect<Persisted, DuplicateTransaction> => {
            const existing = rows.get(tx.id)
            if (existing === undefined) {
              rows.set(tx.id, tx)
              return Effect.succeed({ stored: tx, alreadyStored: false })
            }
            return sameTransaction(existing, tx)
              ? Effect.succeed({ stored: existing, alreadyStored: true })
              : Effect.fail(new DuplicateTransaction({ id: tx.id }))
          })
        ),
      find: (id) => Effect.sync(() => Option.fromUndefinedOr(rows.get(id)))
    })
  })
)
