/**
 * What the sending DAG acknowledges is what it stores, against the real
 * FerretDB (issue 18, items 3 and 4): generated transactions with hostile
 * strings and numbers either are refused (4xx) or read back equal, field by
 * field, to what was sent and acknowledged; a request whose answer is lost
 * (the client half-closes, or resets its connection 2 ms after sending) and is
 * retried with its `Idempotency-Key` is answered with the stored transaction,
 * and the store holds one copy.
 */
import { randomBytes } from "node:crypto"
import { connect } from "node:net"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as fc from "fast-check"
import { MongoClient } from "mongodb"
import { inject } from "vitest"
import * as MongoStorage from "../../src/dag/MongoStorage.ts"
import * as Mongo from "../../src/Mongo.ts"
import { api, json, send } from "../support/Api.ts"

const database = `dag_acknowledged_${randomBytes(3).toString("hex")}`

const Store = MongoStorage.layer.pipe(Layer.provide(Mongo.layer(inject("mongodbUri"), { database })))

/** Strings a client may send: any code units (lone surrogates included), graphemes, and known troublemakers. */
const text = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }),
  fc.constantFrom("\ud800", "a\udc00b", "\u0000", "\ufffd", "😀", "\u202eevil", "$where", "{\"$gt\":\"\"}", "x".repeat(128))
)

/** Amounts as JSON text: doubles as JavaScript writes them, and literals a double cannot carry. */
const amount = fc.oneof(
  fc.double({ min: 1e-6, max: 1e15, noNaN: true }).map(String),
  fc.constantFrom("9007199254740993", "123456789012345678901234567890", "1.00000000000000000001", "0.1", "5.0", "1e2")
)

const body = fc.record({ from: text, to: text, region: text, amount, memo: fc.option(text, { nil: undefined }) }).map(
  ({ amount: literal, ...strings }) => JSON.stringify(strings).replace(/^\{/, `{"amount":${literal},`)
)

const parse = (answer: { readonly body: string }) => JSON.parse(answer.body) as Record<string, unknown>

/** Sends `request` on a new connection, then half-closes it or resets it after `resetAfterMs`; no answer is read. */
const lose = (port: number, request: string, how: "half-close" | "reset") =>
  Effect.callback<void>((resume) => {
    const socket = connect(port, "127.0.0.1", () => {
      socket.write(request)
      if (how === "half-close") socket.end()
      else setTimeout(() => socket.resetAndDestroy(), 2)
    })
    socket.on("error", () => undefined)
    socket.on("data", () => undefined)
    socket.on("close", () => resume(Effect.void))
  })

layer(api({}, Store), { timeout: 120_000 })("the sending DAG over FerretDB", (it) => {
  it.effect("every 201 reads back equal, field by field, to what was sent and acknowledged", () =>
    Effect.gen(function*() {
      const statuses: Record<number, number> = {}
      for (const sent of fc.sample(body, { numRuns: 200, seed: 1129 })) {
        const answer = yield* send({ headers: json, body: sent })
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
        assert.isBelow(answer.status, 500, `${sent} → ${answer.status} ${answer.body}`)
        if (answer.status !== 201) continue
        const acknowledged = parse(answer)
        const stored = parse(yield* send({ method: "GET", path: `/tx/${acknowledged["id"]}` }))
        const { memo, ...fields } = JSON.parse(sent) as Record<string, unknown>
        assert.deepStrictEqual(stored, {
          id: acknowledged["id"],
          ...fields,
          ...(memo === undefined ? {} : { memo }),
          ack: acknowledged["ack"]
        }, sent)
      }
      assert.isAbove(statuses[201] ?? 0, 20, JSON.stringify(statuses))
      assert.isAbove(statuses[400] ?? 0, 20, JSON.stringify(statuses))
    }))

  it.effect.each(["half-close", "reset"] as const)(
    "an answer lost to a %s, retried with its Idempotency-Key: the stored transaction, one copy",
    (how) =>
      Effect.gen(function*() {
        const { address } = yield* HttpServer.HttpServer
        const port = (address as { readonly port: number }).port
        const client = yield* Effect.acquireRelease(
          Effect.promise(() => MongoClient.connect(inject("mongodbUri"))),
          (opened) => Effect.promise(() => opened.close())
        )
        const transactions = client.db(database).collection("transactions")
        for (let i = 0; i < 20; i++) {
          const marker = `${how}-${i}-${randomBytes(4).toString("hex")}`
          const sent = JSON.stringify({ from: marker, to: "bob", amount: 5, region: "eu-central" })
          const headers = `Content-Type: application/json\r\nIdempotency-Key: ${marker}\r\n`
          yield* lose(port, `POST /tx HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: ${sent.length}\r\n\r\n${sent}`, how)
          const retried = yield* send({ headers: { ...json, "idempotency-key": marker }, body: sent })
          assert.strictEqual(retried.status, 201, retried.body)
          const stored = yield* Effect.promise(() => transactions.find({ from: marker }).toArray())
          assert.deepStrictEqual(stored.map((document) => document._id), [parse(retried)["id"]], "one copy")
        }
      })
  )
})
