/**
 * The sending DAG's API (issue 18, items 3–5): what it acknowledges is what
 * it stores — bodies that JSON.parse or the MongoDB driver would change are
 * refused, naming the field — bodies it cannot read as UTF-8 JSON are `415`,
 * and a client can retry safely: the same `Idempotency-Key` (or `id`) with
 * the same body is answered the original `201` without a second PoH request,
 * with another body `422`.
 */
import { gzipSync } from "node:zlib"
import { assert, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Testing } from "../src/index.ts"
import { api, json, send, tx } from "./support/Api.ts"

const body = (answer: { readonly body: string }) => JSON.parse(answer.body) as Record<string, unknown>

/** A transaction body with `literal` as the raw JSON text of `field`. */
const withLiteral = (field: string, literal: string) => tx().replace(/\}$/, `,"${field}":${literal}}`)

layer(api())("the sending DAG's API", (it) => {
  it.effect.each(["from", "to", "region", "memo"])("a lone surrogate in %s is 400 naming it", (field) =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: json, body: tx({ [field]: undefined }).replace(/\}$/, `,"${field}":"a\\ud800"}`) })
      assert.strictEqual(answer.status, 400)
      assert.deepStrictEqual(body(answer), { error: "a string is not well-formed Unicode", details: { field } })
    }))

  it.effect.each([
    ["9007199254740993"],
    ["123456789012345678901234567890"],
    ["1.00000000000000000001"]
  ])("an amount of %s, which a double cannot carry, is 400", ([literal]) =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: json, body: tx().replace("\"amount\":5", `"amount":${literal}`) })
      assert.strictEqual(answer.status, 400)
      assert.deepStrictEqual(body(answer), {
        error: `the number ${literal} cannot be carried exactly`,
        details: { field: "amount" }
      })
    }))

  it.effect.each([
    ["a second amount", withLiteral("amount", "7")],
    ["a string amount before the number", tx().replace("\"amount\":5", "\"amount\":\"x\",\"amount\":5")]
  ])("a duplicate key (%s) is 400", ([, text]) =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: json, body: text })
      assert.strictEqual(answer.status, 400)
      assert.deepStrictEqual(body(answer), { error: "the key \"amount\" is given twice", details: { field: "amount" } })
    }))

  it.effect("a gzip body is 415, not an unreadable 400", () =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: { ...json, "content-encoding": "gzip" }, body: gzipSync(tx()) })
      assert.strictEqual(answer.status, 415)
      assert.strictEqual(body(answer).error, "content-encoding is not supported: send the body as it is")
    }))

  it.effect.each([
    ["application/json; charset=latin1", 415],
    ["application/json; charset=\"ISO-8859-1\"", 415],
    ["application/json; charset=utf-8", 201],
    ["application/json;charset=UTF8", 201]
  ] as const)("%s answers %s", ([contentType, status]) =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: { "content-type": contentType }, body: tx() })
      assert.strictEqual(answer.status, status, answer.body)
    }))

  it.effect("the same Idempotency-Key and body: the original 201, one PoH request; another body: 422", () =>
    Effect.gen(function*() {
      const requests = yield* Testing.metricValue("poh_requests_total")
      const keyed = { ...json, "idempotency-key": "order-7f3a" }
      const first = yield* send({ headers: keyed, body: tx({ memo: "rent" }) })
      const again = yield* send({ headers: keyed, body: tx({ memo: "rent" }) })
      assert.strictEqual(first.status, 201)
      assert.strictEqual(again.status, 201)
      assert.deepStrictEqual(body(again), body(first), "same id, same ack")
      assert.strictEqual(yield* Testing.metricValue("poh_requests_total"), requests + 1)
      const other = yield* send({ headers: keyed, body: tx({ memo: "another" }) })
      assert.strictEqual(other.status, 422)
      assert.deepStrictEqual(body(other), {
        error: "Idempotency-Key already names another transaction",
        details: { id: body(first)["id"] }
      })
      const stored = yield* send({ method: "GET", path: `/tx/${body(first)["id"]}` })
      assert.strictEqual(body(stored)["memo"], "rent")
    }))

  it.effect("requests with the same key at once: one commit, both answered the same", () =>
    Effect.gen(function*() {
      const requests = yield* Testing.metricValue("poh_requests_total")
      const keyed = { ...json, "idempotency-key": "concurrent-1" }
      const answers = yield* Effect.all(Array.from({ length: 5 }, () => send({ headers: keyed, body: tx() })), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(answers.map((answer) => answer.status), [201, 201, 201, 201, 201])
      assert.strictEqual(new Set(answers.map((answer) => answer.body)).size, 1)
      assert.strictEqual(yield* Testing.metricValue("poh_requests_total"), requests + 1)
    }))

  it.effect("the client's own id names the transaction too", () =>
    Effect.gen(function*() {
      const first = yield* send({ headers: json, body: tx({ id: "client-tx-42" }) })
      const again = yield* send({ headers: json, body: tx({ id: "client-tx-42" }) })
      assert.strictEqual(body(first)["id"], "client-tx-42")
      assert.deepStrictEqual(body(again), body(first))
      assert.strictEqual((yield* send({ headers: json, body: tx({ id: "client-tx-42", amount: 6 }) })).status, 422)
    }))

  it.effect.each([
    ["a key of 256 characters", { "idempotency-key": "k".repeat(256) }, tx(), "Idempotency-Key must be 1 to 255 visible ASCII characters"],
    ["a key with a space", { "idempotency-key": "a b" }, tx(), "Idempotency-Key must be 1 to 255 visible ASCII characters"],
    ["a key and an id", { "idempotency-key": "k-1" }, tx({ id: "tx-1" }), "give either an id or an Idempotency-Key, not both"]
  ] as const)("%s is 400", ([, headers, text, error]) =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: { ...json, ...headers }, body: text })
      assert.strictEqual(answer.status, 400)
      assert.strictEqual(body(answer).error, error)
    }))
})
