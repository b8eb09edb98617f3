/**
 * A transaction as the sending DAG accepts it, and {@link commit}: presence
 * look-up → PoH request → storage write → `tx_committed_total`. Each step is
 * its own span under the caller's (the HTTP server span in the examples).
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Transaction } from "dag-observability/dag"
 *
 * const submit = (body: unknown) =>
 *   Effect.flatMap(Schema.decodeUnknownEffect(Transaction.Transaction)(body), (tx) => Transaction.commit(tx))
 * ```
 */
import { randomUUID } from "node:crypto"
import { Effect, Schema } from "effect"
import { DagMetrics } from "./DagMetrics.ts"
import { Poh } from "./Poh.ts"
import { Presence } from "./Presence.ts"
import { Storage, StoredTransaction } from "./Storage.ts"

const text = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max))

/** A transaction request (SPEC §6): `from`, `to` 1–128 characters, `amount` > 0, `region`, optional `memo` ≤ 1 KiB. */
export class Transaction extends Schema.Class<Transaction>("dag-observability/dag/Transaction")({
  from: text(128),
  to: text(128),
  amount: Schema.Number.check(Schema.isFinite(), Schema.isGreaterThan(0)),
  region: text(64),
  memo: Schema.optional(Schema.String.check(Schema.isMaxLength(1024)))
}) {}

/**
 * Commits `tx`: asks Presence who is online in its region (its last answer
 * while Presence is down, for a bounded time; a failed look-up is counted and
 * leaves the choice to the PoH client's default node), gets a PoH_ACK from one
 * of those nodes, failing over to the next when one is unavailable, persists
 * the acknowledged transaction and counts it. Returns what was stored.
 */
export const commit = Effect.fnUntraced(function*(tx: Transaction, id: string = randomUUID()) {
  const presence = yield* Presence
  const poh = yield* Poh
  const storage = yield* Storage
  const metrics = yield* DagMetrics
  const online = yield* presence.onlineNodes(tx.region).pipe(Effect.option)
  const ack = yield* poh.request(
    online._tag === "Some" ? { txId: id, region: tx.region, online: online.value } : { txId: id, region: tx.region }
  )
  const stored = new StoredTransaction({ ...tx, id, ack })
  yield* storage.persist(stored)
  yield* metrics.recordTxCommitted(tx.region)
  return stored
})
