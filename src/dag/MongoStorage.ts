/**
 * The {@link Storage} service over MongoDB: approved transactions in the
 * collection `transactions`, one document each with the transaction id as
 * `_id`. A write succeeds only once it is acknowledged by a majority and
 * journaled (`{ w: "majority", j: true }`), so an acknowledged transaction
 * survives a server restart.
 *
 * Failures: a duplicate `_id` is {@link DuplicateTransaction}; anything else
 * the driver reports (no server within the selection timeout, a dropped
 * connection, a timeout, a server error) is {@link StorageUnavailable}, whose
 * reason names the error but, for server errors, never repeats their message
 * (it may quote document values). A stored document that does not decode as a
 * {@link StoredTransaction} is also {@link StorageUnavailable}: that record
 * cannot be served, and the caller answers as for an outage.
 *
 * Each acknowledged write is timed into `storage_latency_seconds`
 * (`MongoMonitor`, when installed, also times every driver command). The
 * driver reconnects by itself after an outage; the layer needs no rebuilding.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import * as Mongo from "dag-observability/Mongo"
 * import * as MongoMonitor from "dag-observability/MongoMonitor"
 * import * as MongoStorage from "dag-observability/dag/MongoStorage"
 *
 * const StorageLive = Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(Layer.provide(Mongo.layerConfig()))
 * ```
 */
import { Effect, Layer, Option, Schema } from "effect"
import { MongoError, MongoServerError } from "mongodb"
import { Mongo } from "../Mongo.ts"
import { DagMetrics } from "./DagMetrics.ts"
import { DuplicateTransaction, make, Storage, StorageUnavailable, StoredTransaction, timed } from "./Storage.ts"

/** The collection holding approved transactions. */
export const collectionName = "transactions"

/** The write concern of every persist: acknowledged by a majority, journaled. */
export const writeConcern = { w: "majority", journal: true } as const

/** A stored transaction: its encoded form with the id as `_id`. */
type TransactionDocument = Omit<Schema.Codec.Encoded<typeof StoredTransaction>, "id"> & { readonly _id: string }

const duplicateKey = 11000

/** What went wrong, without the message of a server error. */
const reasonOf = (error: unknown): string => {
  if (error instanceof MongoServerError) return `${error.name} ${error.codeName ?? error.code ?? ""}`.trimEnd()
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error)
}

const toDocument = (tx: StoredTransaction): TransactionDocument => {
  const { id, ...rest } = Schema.encodeSync(StoredTransaction)(tx)
  return { _id: id, ...rest }
}

const decode = (document: unknown) =>
  Schema.decodeUnknownEffect(StoredTransaction)({ ...(document as object), id: (document as { _id: unknown })._id })

/** {@link Storage} over the `transactions` collection of the {@link Mongo} database. */
export const layer: Layer.Layer<Storage, never, Mongo | DagMetrics> = Layer.effect(
  Storage,
  Effect.gen(function*() {
    const { db } = yield* Mongo
    const metrics = yield* DagMetrics
    const transactions = db.collection<TransactionDocument>(collectionName)
    return yield* make({
      persist: (tx) =>
        timed(
          metrics,
          Effect.tryPromise({
            try: () => transactions.insertOne(toDocument(tx), { writeConcern, ignoreUndefined: true }),
            catch: (error) =>
              error instanceof MongoError && error.code === duplicateKey
                ? new DuplicateTransaction({ id: tx.id })
                : new StorageUnavailable({ operation: "persist", reason: reasonOf(error) })
          }),
          { operation: "insert", collection: collectionName }
        ).pipe(Effect.asVoid),
      find: (id) =>
        Effect.tryPromise({
          try: () => transactions.findOne({ _id: id }),
          catch: (error) => new StorageUnavailable({ operation: "find", reason: reasonOf(error) })
        }).pipe(Effect.flatMap((document) =>
          document === null ? Effect.succeedNone : decode(document).pipe(
            Effect.map(Option.some),
            Effect.mapError(() =>
              new StorageUnavailable({ operation: "find", reason: `document ${id} is not a StoredTransaction` })
            )
          )
        ))
    })
  })
)
