/** Stored transactions for the storage specs: fixed content, any field overridden. */
import { Poh, Storage } from "../../src/dag/index.ts"

/** A PoH_ACK with sequence number `seq`. */
export const ack = (seq = 7): Poh.PohAck =>
  new Poh.PohAck({ seq, hash: "ab".repeat(32), timestamp: "2025-01-01T00:00:00.000Z", node: "poh-1" })

/** A stored transaction `id` from alice to bob, without a memo, with `fields` over the defaults. */
export const storedTransaction = (
  id: string,
  fields: Partial<ConstructorParameters<typeof Storage.StoredTransaction>[0]> = {}
): Storage.StoredTransaction =>
  new Storage.StoredTransaction({
    id,
    from: "alice-sender",
    to: "bob-receiver",
    amount: 5,
    region: "eu-central",
    ack: ack(),
    ...fields
  })
