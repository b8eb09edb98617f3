/**
 * Safe retries of `POST /tx`. A client names its transaction, with the
 * `Idempotency-Key` header (the IETF draft's name) or its own `id` in the
 * body; a request naming one already stored with the same content is answered
 * the original `201` — the same id and PoH_ACK — without a second PoH request
 * or write, one naming it with other content is `422`. Keys are kept as long as
 * their transaction is stored (the transaction id is the key's digest, so the
 * store itself remembers them). Requests naming the same transaction run one
 * after the other in a process; across processes (the sending DAG's workers)
 * a race is settled by the store, the later request answered as the earlier.
 */
import { createHash } from "node:crypto"
import { Deferred, Effect, Exit, Option } from "effect"
import { HttpServerRequest, type HttpServerResponse } from "effect/http"
import { type Storage, type Transaction } from "../src/dag/index.ts"
import { failure } from "./TransactionBody.ts"

/** How a request names its transaction: its own id, a key's digest, or none (a new id is drawn). */
export type Naming = { readonly id: string; readonly by: "id" | "Idempotency-Key" } | undefined

const keyPattern = /^[\x21-\x7e]{1,255}$/

/**
 * The transaction the current request names: the body's `id`, else the
 * digest of its `Idempotency-Key` (1–255 visible ASCII characters), else none;
 * `400` for a malformed key, or a key beside an `id`.
 */
export const naming = (id: string | undefined): Effect.Effect<
  Naming,
  HttpServerResponse.HttpServerResponse,
  HttpServerRequest.HttpServerRequest
> =>
  Effect.flatMap(HttpServerRequest.HttpServerRequest, (request): Effect.Effect<Naming, HttpServerResponse.HttpServerResponse> => {
    const key = request.headers["idempotency-key"]
    if (key === undefined) return Effect.succeed(id === undefined ? undefined : { id, by: "id" as const })
    if (!keyPattern.test(key)) {
      return Effect.fail(failure(400, "Idempotency-Key must be 1 to 255 visible ASCII characters"))
    }
    if (id !== undefined) return Effect.fail(failure(400, "give either an id or an Idempotency-Key, not both"))
    const digest = createHash("sha256").update(key).digest("hex").slice(0, 40)
    return Effect.succeed({ id: `key-${digest}`, by: "Idempotency-Key" as const })
  })

/** Whether `stored` holds what `tx` asks for (the id and the PoH_ACK aside). */
export const sameRequest = (stored: Storage.StoredTransaction, tx: Transaction.Transaction): boolean =>
  stored.from === tx.from && stored.to === tx.to && stored.amount === tx.amount && stored.region === tx.region &&
  stored.memo === tx.memo

/** What an already stored transaction means for a request naming it: its answer, or `422`. */
export const replay = (
  stored: Storage.StoredTransaction,
  tx: Transaction.Transaction,
  named: NonNullable<Naming>
): Effect.Effect<Storage.StoredTransaction, HttpServerResponse.HttpServerResponse> =>
  sameRequest(stored, tx)
    ? Effect.succeed(stored)
    : Effect.fail(failure(422, `${named.by} already names another transaction`, { id: stored.id }))

/**
 * Runs `effect` for transaction `id` once no other run for `id` is in flight
 * in this process: a retry arriving while the first attempt still runs waits
 * for it, then finds its transaction stored.
 */
export const oneAtATime = (inFlight: Map<string, Deferred.Deferred<void>>) =>
<A, E, R>(id: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const running = inFlight.get(id)
    if (running !== undefined) return Effect.andThen(Deferred.await(running), oneAtATime(inFlight)(id, effect))
    const done = Deferred.makeUnsafe<void>()
    inFlight.set(id, done)
    return Effect.ensuring(
      effect,
      Effect.sync(() => {
        inFlight.delete(id)
        Deferred.doneUnsafe(done, Exit.void)
      })
    )
  })

/** The stored transaction `id`, when there is one (a store that cannot be read answers as for an outage). */
export const storedAs = (
  storage: Storage.Storage["Service"],
  id: string
): Effect.Effect<Storage.StoredTransaction | undefined, Storage.StorageUnavailable> =>
  Effect.map(storage.find(id), (found) => Option.getOrUndefined(found))
