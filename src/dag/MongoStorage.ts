/**
 * The {@link Storage} service over MongoDB: approved transactions in the
 * collection `transactions`, one document each with the transaction id as
 * `_id`. A write succeeds only once it is acknowledged by a majority and
 * journaled (`{ w: "majority", j: true }`), so an acknowledged transaction
 * survives a server restart.
 *
 * Persisting is idempotent. The driver retries a write once after a network
 * error (retryable writes, when the deployment supports them); when the first
 * attempt had landed and only its reply was lost, a server that does not
 * recognise the retry answers it with a duplicate key. On a duplicate `_id`
 * the stored document is read back (read concern `majority`, so only a
 * document that can no longer be rolled back counts): the very same
 * transaction, field by field with its PoH ack, is a success
 * (`alreadyStored`, the `Storage.persist` span marked
 * `dag.storage.already_stored`); a different one is
 * {@link DuplicateTransaction}; none readable is {@link StorageUnavailable}
 * (the outcome is unknown, and a new write with a new id is safe).
 *
 * Other failures: anything else the driver reports (no server within the
 * selection timeout, a connection not opened within the connect timeout, a
 * dropped connection, a server error) is {@link StorageUnavailable}, whose
 * reason names the error but, for server errors, never repeats their message
 * (it may quote document values). A stored document that does not decode as a
 * {@link StoredTransaction} is also {@link StorageUnavailable} for `find`: that
 * record cannot be served, and the caller answers as for an outage.
 *
 * Each successful persist is timed once into `storage_latency_seconds`
 * (`MongoMonitor`, when installed, also times every driver command): from the
 * call to the acknowledgement or, for a retried write found already stored,
 * to the read that confirmed it, so that one sample includes the lost reply,
 * the driver's retry and the read. A persist that fails is not timed. The
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
import { isDeepStrictEqual } from "node:util"
import { Effect, Layer, Option, Schema } from "effect"
import { BSON, MongoError, MongoServerError } from "mongodb"
import { Mongo } from "../Mongo.ts"
import { DagMetrics } from "./DagMetrics.ts"
import {
  DuplicateTransaction,
  make,
  type Persisted,
  type PersistError,
  Storage,
  StorageUnavailable,
  StoredTransaction,
  timed
} from "./Storage.ts"

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

/** `document` as the server stores it: undefined fields left out, values through BSON and back. */
const asStored = (document: TransactionDocument): BSON.Document =>
  BSON.deserialize(BSON.serialize(document, { ignoreUndefined: true }))

/** The read concern of the read after a duplicate key: only a majority-committed document counts. */
const confirmConcern = { level: "majority" } as const

const decode = (document: unknown) =>
  Schema.decodeUnknownEffect(StoredTransaction)({ ...(document as object), id: (document as { _id: unknown })._id })

/** {@link Storage} over the `transactions` collection of the {@link Mongo} database. */
export const layer: Layer.Layer<Storage, never, Mongo | DagMetrics> = Layer.effect(
  Storage,
  Effect.gen(function*() {
    const { db } = yield* Mongo
    const metrics = yield* DagMetrics
    const transactions = db.collection<TransactionDocument>(collectionName)
    /** After a duplicate key on `tx`'s id: the stored document is `tx`'s own (a retry that had landed), or not. */
    const confirm = (tx: StoredTransaction, document: TransactionDocument) =>
      Effect.tryPromise({
        try: () => transactions.findOne({ _id: document._id }, { readConcern: confirmConcern }),
        catch: (error) => new StorageUnavailable({ operation: "persist", reason: reasonOf(error) })
      }).pipe(Effect.flatMap((found): Effect.Effect<Persisted, PersistError> => {
        if (found === null) {
          return Effect.fail(
            new StorageUnavailable({
              operation: "persist",
              reason: `duplicate key on insert, but no committed document ${tx.id} to compare`
            })
          )
        }
        return isDeepStrictEqual(found, asStored(document))
          ? Effect.succeed({ stored: tx, alreadyStored: true })
          : Effect.fail(new DuplicateTransaction({ id: tx.id }))
      }))
    const insert = (tx: StoredTransaction) => {
      const document = toDocument(tx)
      return Effect.tryPromise({
        try: () => transactions.insertOne(document, { writeConcern, ignoreUndefined: true }),
        catch: (error) => error
      }).pipe(
        Effect.as<Persisted>({ stored: tx, alreadyStored: false }),
        Effect.catch((error) =>
          error instanceof MongoError && error.code === duplicateKey
            ? confirm(tx, document)
            : Effect.fail(new StorageUnavailable({ operation: "persist", reason: reasonOf(error) }))
        )
      )
    }
    return yield* make({
      persist: (tx) => timed(metrics, insert(tx), { operation: "insert", collection: collectionName }),
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
