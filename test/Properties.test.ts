/**
 * Property tests with fast-check: the request schema `Transaction.Transaction` accepts every transaction SPEC §6
 * allows and rejects every object breaking one of its rules, and round-trips through JSON; the W3C trace context read
 * by `Http.serve` never fails a request, never yields an invalid parent, and continues a valid `traceparent` exactly.
 */
import { createServer, request } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it, layer } from "@effect/vitest"
import { Effect, Exit, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import * as fc from "fast-check"
import { Transaction } from "../src/dag/index.ts"
import { Http, ObservabilityTest, Testing } from "../src/index.ts"

/** How the sending DAG decodes a body (examples/SendingDagApi.ts). */
const decode = (input: unknown) =>
  Schema.decodeUnknownExit(Transaction.Transaction)(input, { errors: "all", onExcessProperty: "error" })

/** A string of 1 to `max` UTF-16 code units (what the schema counts): any code points, or ASCII up to the bound. */
const text = (max: number) =>
  fc.oneof(
    fc.string({ unit: "binary", minLength: 1, maxLength: Math.floor(max / 2) }),
    fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: max }),
    fc.constant("x".repeat(max)),
    fc.constant("\u{1F600}".repeat(max / 2))
  )

/** A finite number above 0, tiny and huge ones included. */
const amount = fc.oneof(
  fc.double({ min: Number.MIN_VALUE, max: Number.MAX_VALUE, noNaN: true }),
  fc.integer({ min: 1 }),
  fc.constantFrom(Number.MIN_VALUE, Number.MAX_VALUE, 0.01)
)

/** A valid transaction as JSON would carry it. */
const validTransaction = fc.record(
  {
    from: text(128),
    to: text(128),
    amount,
    region: text(64),
    memo: fc.oneof(fc.string({ unit: "binary", maxLength: 512 }), fc.constant("m".repeat(1024)))
  },
  { requiredKeys: ["from", "to", "amount", "region"] }
)

type Fields = Record<string, unknown>

/** A string longer than `max` code units: one more, often. */
const tooLong = (max: number) =>
  fc.oneof(
    fc.constant("x".repeat(max + 1)),
    fc.string({ unit: "binary", minLength: max + 1, maxLength: 2 * max }),
    fc.string({ unit: "grapheme-ascii", minLength: max + 1, maxLength: max + 3 })
  )

/** Anything JSON may hold but a string. */
const notAString = fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string()), fc.object())

/** One way to break one rule: the key it breaks and the broken object. */
const violations: ReadonlyArray<readonly [string, string, fc.Arbitrary<unknown> | "missing"]> = [
  ...["from", "to", "region"].flatMap((key) => [
    [key, "missing", "missing"] as const,
    [key, "empty", fc.constant("")] as const,
    [key, "too long", tooLong(key === "region" ? 64 : 128)] as const,
    [key, "not a string", notAString] as const
  ]),
  ["amount", "missing", "missing"],
  ["amount", "zero or below", fc.oneof(fc.constantFrom(0, -0), fc.double({ max: 0, noNaN: true }))],
  ["amount", "not finite", fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY)],
  ["amount", "not a number", fc.oneof(fc.string(), fc.constant(null), fc.boolean(), fc.object(), fc.bigInt())],
  ["memo", "too long", tooLong(1024)],
  ["memo", "not a string", fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string()))]
]

const violation = fc.constantFrom(...violations).chain(([key, rule, value]) =>
  fc.tuple(
    fc.constant(`${key} ${rule}`),
    fc.constant(key),
    validTransaction,
    value === "missing" ? fc.constant(undefined) : value
  ).map(([name, broken, valid, bad]): readonly [string, string, Fields] => {
    const fields: Fields = { ...valid }
    if (value === "missing") delete fields[broken]
    else fields[broken] = bad
    return [name, broken, fields]
  })
)

/** A key no transaction has. */
const extraKey = fc.string({ minLength: 1, maxLength: 20 }).filter((key) =>
  !["from", "to", "amount", "region", "memo"].includes(key)
)

describe("Transaction.Transaction", () => {
  it("decodes every valid transaction to the same fields", () =>
    fc.assert(
      fc.property(validTransaction, (fields) => {
        const decoded = decode(fields)
        assert.isTrue(Exit.isSuccess(decoded), JSON.stringify(fields))
        if (Exit.isSuccess(decoded)) assert.deepStrictEqual({ ...decoded.value }, fields)
      }),
      { numRuns: 500 }
    ))

  it("round-trips: encode, JSON, decode gives the same transaction", () =>
    fc.assert(
      fc.property(validTransaction, (fields) => {
        const transaction = Schema.decodeUnknownSync(Transaction.Transaction)(fields)
        const wire = JSON.parse(JSON.stringify(Schema.encodeSync(Transaction.Transaction)(transaction))) as unknown
        assert.deepStrictEqual(wire, fields)
        const again = Schema.decodeUnknownSync(Transaction.Transaction)(wire)
        assert.deepStrictEqual({ ...again }, { ...transaction })
      }),
      { numRuns: 300 }
    ))

  it("rejects every object breaking one rule, naming the key it breaks", () =>
    fc.assert(
      fc.property(violation, ([name, key, fields]) => {
        const decoded = decode(fields)
        assert.isTrue(Exit.isFailure(decoded), `${name}: ${fc.stringify(fields)}`)
        if (Exit.isFailure(decoded)) assert.include(String(decoded.cause), `["${key}"]`, name)
      }),
      { numRuns: 1000 }
    ))

  it("rejects a valid transaction with any extra key", () =>
    fc.assert(
      fc.property(validTransaction, extraKey, fc.jsonValue(), (fields, key, value) => {
        const decoded = decode({ ...fields, [key]: value })
        assert.isTrue(Exit.isFailure(decoded), key)
      }),
      { numRuns: 300 }
    ))
})

/** A server with one route, instrumented by `Http.serve`, and spans kept in memory. */
const Server = Http.serve(HttpRouter.add("GET", "/ping", HttpServerResponse.text("pong")), {
  disableLogger: true,
  disableListenLog: true
}).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provideMerge(ObservabilityTest)
)

/** `length` lowercase hex digits. */
const hex = (length: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: length, maxLength: length })

/** A valid W3C `traceparent` (version 00, or a later version with what follows it). */
const validTraceparent = fc.tuple(
  fc.oneof({ weight: 4, arbitrary: fc.constant("00") }, hex(2).filter((version) => version !== "ff")),
  hex(32).filter((id) => !/^0+$/.test(id)),
  hex(16).filter((id) => !/^0+$/.test(id)),
  hex(2),
  fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 20 })
).map(([version, traceId, spanId, flags, rest]) =>
  `${version}-${traceId}-${spanId}-${flags}${version === "00" || rest === "" ? "" : `-${rest}`}`
)

/** Printable ASCII: what a header value may hold. */
const printable = fc.string({
  unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
  maxLength: 80
})

/** `tracestate` values: printable garbage, and long percent-encoded ones. */
const tracestates = fc.oneof(printable, fc.string({ maxLength: 2000 }).map(encodeURIComponent))

/** Malformed or random `traceparent` values, many of them one edit away from a valid one. */
const anyTraceparent = fc.oneof(
  printable,
  fc.string({ unit: fc.constantFrom(..."0123456789abcdefABCDEF-"), maxLength: 60 }),
  fc.tuple(validTraceparent, fc.nat(), printable).map(([valid, at, insert]) =>
    `${valid.slice(0, at % (valid.length + 1))}${insert.slice(0, 2)}${valid.slice(at % (valid.length + 1) + 1)}`
  ),
  fc.tuple(validTraceparent, fc.nat()).map(([valid, at]) => valid.slice(0, at % valid.length)),
  validTraceparent.map((valid) => valid.toUpperCase()),
  validTraceparent.map((valid) => valid.replace(/^[0-9a-f]{2}/, "ff")),
  validTraceparent.map((valid) => valid.replace(/-[0-9a-f]{32}-/, `-${"0".repeat(32)}-`)),
  validTraceparent.map((valid) => valid.replace(/-[0-9a-f]{16}-/, `-${"0".repeat(16)}-`)),
  validTraceparent.map((valid) => `00${valid.slice(2)}-extra`),
  validTraceparent
).map((value) => value.trim())

/** The W3C rules (Trace Context §3.2), independently of OpenTelemetry's parser: the parent a header names, if any. */
const oracle = (header: string) => {
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(header)
  if (match === null) return undefined
  const [, version, traceId, spanId, flags, rest] = match
  if (version === "ff" || /^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined
  if (version === "00" && rest !== undefined) return undefined
  return { traceId: traceId!, spanId: spanId!, flags: Number.parseInt(flags!, 16) }
}

const get = (base: string, headers: Record<string, string>) =>
  Effect.promise(() =>
    new Promise<number>((resolve, reject) => {
      const outgoing = request(new URL("/ping", base), { headers }, (incoming) => {
        incoming.resume()
        incoming.on("end", () => resolve(incoming.statusCode ?? 0))
      })
      outgoing.on("error", reject)
      outgoing.end()
    })
  )

/** Sends GET /ping with `headers`; the status and the one span it made. */
const ping = (headers: Record<string, string>) =>
  Effect.gen(function*() {
    const { address } = yield* HttpServer.HttpServer
    const spans = yield* Testing.TestSpans
    yield* spans.clear
    const status = yield* get(HttpServer.formatAddress(address), headers)
    const finished = yield* spans.finished
    assert.strictEqual(finished.length, 1)
    return { status, span: finished[0]! }
  })

const validId = (id: string, length: number) => new RegExp(`^(?!0+$)[0-9a-f]{${length}}$`).test(id)

layer(Server, { excludeTestServices: true })("W3C trace context read by Http.serve", (served) => {
  served.effect("any traceparent: 200, never an invalid parent, a valid one continued exactly, else a new trace", () =>
    Effect.gen(function*() {
      const run = yield* Effect.context<HttpServer.HttpServer | Testing.TestSpans>()
      const seen = { continued: 0, fresh: 0 }
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(anyTraceparent, async (traceparent) => {
            const { status, span } = await Effect.runPromiseWith(run)(ping({ traceparent }))
            assert.strictEqual(status, 200)
            const expected = oracle(traceparent)
            const parent = span.parentSpanContext
            assert.isTrue(validId(span.spanContext().traceId, 32) && validId(span.spanContext().spanId, 16))
            if (expected === undefined) {
              seen.fresh++
              assert.isUndefined(parent, traceparent)
            } else {
              seen.continued++
              assert.isDefined(parent, traceparent)
              assert.strictEqual(span.spanContext().traceId, expected.traceId)
              assert.strictEqual(parent!.traceId, expected.traceId)
              assert.strictEqual(parent!.spanId, expected.spanId)
              assert.strictEqual(parent!.traceFlags & 1, expected.flags & 1, "the sampled flag")
              assert.isTrue(parent!.isRemote)
            }
          }),
          { numRuns: 400 }
        )
      )
      // Both sides of the oracle were exercised.
      assert.isAbove(seen.continued, 20)
      assert.isAbove(seen.fresh, 100)
    }), { timeout: 60_000 })

  served.effect("any tracestate beside a valid traceparent: 200 and the traceparent continued", () =>
    Effect.gen(function*() {
      const run = yield* Effect.context<HttpServer.HttpServer | Testing.TestSpans>()
      yield* Effect.promise(() =>
        fc.assert(
          fc.asyncProperty(validTraceparent, tracestates, async (traceparent, tracestate) => {
            const { status, span } = await Effect.runPromiseWith(run)(ping({ traceparent, tracestate }))
            assert.strictEqual(status, 200)
            assert.strictEqual(span.parentSpanContext?.spanId, oracle(traceparent)?.spanId)
          }),
          { numRuns: 150 }
        )
      )
    }), { timeout: 60_000 })
})
