/**
 * The sending DAG's HTTP API (SPEC §6), served with `Http.serve` so every
 * request is one server span and one latency sample:
 *
 * - `GET /ping` → `200 {"ok":true}`
 * - `POST /tx`, `POST /poh` with a transaction → `201 {"id","region","ack"}` once the PoH_ACK is in and the write is
 *   acknowledged; `400` bad body (examples/TransactionBody.ts: malformed or ambiguous JSON, not UTF-8, invalid
 *   transaction), `413` too large, `415` not JSON in UTF-8 or encoded, `503` storage or PoH node down, `504` PoH
 *   timeout; named with `Idempotency-Key` or an `id`, asked again → the original `201`, other content `422`
 *   (examples/Idempotency.ts)
 * - `GET /tx/:id` → `200` the stored transaction, or `404`
 * - anything else → `404 {"error"}` (one route label, `/*`)
 */
import { type Deferred, Effect, Layer, Option, Schema } from "effect"
import { HttpRouter, type HttpServerResponse } from "effect/http"
import { Http } from "../src/index.ts"
import { Storage, Transaction } from "../src/dag/index.ts"
import { naming, oneAtATime, replay, storedAs } from "./Idempotency.ts"
import { answer, failure, readTransaction } from "./TransactionBody.ts"

export { maxBodyBytes } from "./TransactionBody.ts"

/**
 * Commits the transaction `tx` under the id `id` a client named, unless it is
 * stored already: then the stored one is the answer (or `422`, other content).
 * A race with another process committing it is settled the same way.
 */
const commitNamed = (tx: Transaction.Transaction, named: { readonly id: string; readonly by: "id" | "Idempotency-Key" }) =>
  Effect.gen(function*() {
    const storage = yield* Storage.Storage
    const already = yield* storedAs(storage, named.id)
    if (already !== undefined) {
      yield* Effect.logInfo(`transaction ${named.id} asked again (${named.by}): answered as stored`)
      return yield* replay(already, tx, named)
    }
    const settle = (error: Storage.DuplicateTransaction) =>
      Effect.flatMap(storedAs(storage, named.id), (stored) =>
        stored === undefined ? Effect.fail<Storage.DuplicateTransaction | HttpServerResponse.HttpServerResponse>(error) : replay(stored, tx, named))
    return yield* Transaction.commit(tx, named.id).pipe(Effect.catchTag("DuplicateTransaction", settle))
  })

/** `POST /tx`: one transaction committed (or, named again, answered as stored); its answer. */
const submit = (inFlight: Map<string, Deferred.Deferred<void>>) =>
  Effect.gen(function*() {
    const { id, ...fields } = yield* readTransaction
    const tx = new Transaction.Transaction(fields)
    const named = yield* naming(id)
    const stored = named === undefined
      ? yield* Transaction.commit(tx)
      : yield* oneAtATime(inFlight)(named.id, commitNamed(tx, named))
    yield* Effect.logInfo(`transaction ${stored.id} committed: PoH #${stored.ack.seq} by ${stored.ack.node}`)
    return answer(201, { id: stored.id, region: stored.region, ack: stored.ack })
  }).pipe(
    Effect.catchTags({
      PohTimeout: (error) => Effect.succeed(failure(504, error.message)),
      PohUnavailable: (error) => Effect.succeed(failure(503, error.message)),
      StorageUnavailable: (error) => Effect.succeed(failure(503, error.message)),
      DuplicateTransaction: (error) => Effect.succeed(failure(409, error.message))
    }),
    Effect.catch(Effect.succeed)
  )

const find = Effect.gen(function*() {
  const { id } = yield* HttpRouter.schemaPathParams(Schema.Struct({ id: Schema.String }))
  const storage = yield* Storage.Storage
  const stored = yield* storage.find(id)
  return Option.match(stored, {
    onNone: () => failure(404, `no transaction ${id}`),
    onSome: (tx) => answer(200, tx)
  })
}).pipe(
  Effect.catchTag("StorageUnavailable", (error) => Effect.succeed(failure(503, error.message))),
  Effect.catch(() => Effect.succeed(failure(400, "bad transaction id")))
)

/** The routes; requests naming the same transaction run one after the other (examples/Idempotency.ts). */
export const Routes = Layer.unwrap(Effect.sync(() => {
  const inFlight = new Map<string, Deferred.Deferred<void>>()
  return Layer.mergeAll(
    HttpRouter.add("GET", "/ping", answer(200, { ok: true })),
    HttpRouter.add("POST", "/tx", submit(inFlight)),
    HttpRouter.add("POST", "/poh", submit(inFlight)),
    HttpRouter.add("GET", "/tx/:id", find),
    HttpRouter.add("*", "/*", failure(404, "no such route"))
  )
}))

/** The API served with the instrumentation; needs an `HttpServer`, the workflows and `Metrics`. */
export const layer = Http.serve(Routes, { disableLogger: true })
