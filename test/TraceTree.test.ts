/**
 * `npm run trace`'s pure parts: a trace of Jaeger's query API (a fixture shaped
 * as Jaeger v2 answers, extra fields included) as exact lines, durations, and
 * the trace ids the command line accepts.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { exitCode, traceIdOf } from "../scripts/trace.ts"
import { formatDuration, formatTrace, JaegerTraces } from "../scripts/TraceTree.ts"

const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"

/** A span as Jaeger returns it; `tags` as key → value, typed the way Jaeger types them. */
const span = (
  spanID: string,
  operationName: string,
  processID: string,
  startTime: number,
  duration: number,
  parent: string | undefined,
  tags: Record<string, string | number | boolean>
) => ({
  traceID,
  spanID,
  operationName,
  references: parent === undefined ? [] : [{ refType: "CHILD_OF", traceID, spanID: parent }],
  startTime: 1_795_950_263_000_000 + startTime,
  duration,
  tags: Object.entries({ "otel.scope.name": "effect", ...tags }).map(([key, value]) => ({
    key,
    type: typeof value === "string" ? "string" : typeof value === "number" ? "int64" : "bool",
    value
  })),
  logs: [],
  processID,
  warnings: null
})

const failed = { error: true, "otel.status_code": "ERROR" }

/** One `POST /tx` of the example network, given in no particular order, with an unrelated root before it. */
const body = {
  data: [{
    traceID,
    spans: [
      span("a7", "Storage.persist", "p1", 7600, 3200, "a1", {
        ...failed,
        "span.kind": "internal",
        "error.type": "DuplicateTransaction",
        "otel.status_description": "transaction tx-1 is already stored",
        "dag.tx.id": "tx-1"
      }),
      span("a5", "poh.PohService/Request", "p2", 1700, 4100, "a4", {
        "span.kind": "server",
        "rpc.system": "grpc",
        "rpc.method": "Request",
        "rpc.grpc.status_code": 0
      }),
      span("a1", "POST /tx", "p1", 1000, 14851, "00f067aa0ba902b7", {
        "span.kind": "server",
        "otel.status_code": "OK",
        "http.request.method": "POST",
        "http.route": "/tx",
        "http.response.status_code": 409
      }),
      span("a8", "insert dag.transactions", "p1", 7700, 2900, "a7", {
        ...failed,
        "span.kind": "client",
        "otel.status_description": "E11000 duplicate key",
        "db.operation.name": "insert",
        "db.collection.name": "transactions"
      }),
      span("a3", "Poh.request", "p1", 1400, 6100, "a1", { "dag.region": "eu-central" }),
      span("a6", "Poh.sequence", "p2", 1800, 95, "a5", { "poh.seq": 42 }),
      span("a2", "Presence.onlineNodes", "p1", 1100, 210, "a1", {
        "dag.region": "eu-central",
        "dag.presence.online": 3
      }),
      span("a4", "poh.PohService/Request", "p1", 1500, 5900, "a3", {
        "span.kind": "client",
        "rpc.method": "Request",
        "rpc.grpc.status_code": 0,
        "server.address": "127.0.0.1"
      }),
      span("a0", "Poh.flush", "p2", 500, 1_234_567, undefined, { "span.kind": "internal" })
    ],
    processes: {
      p1: { serviceName: "sending-dag", tags: [] },
      p2: { serviceName: "poh-node", tags: [{ key: "host.name", type: "string", value: "n2" }] }
    },
    warnings: null
  }],
  total: 0,
  limit: 0,
  offset: 0,
  errors: null
}

describe("formatTrace", () => {
  it("one line per span under its parent, children in start order, orphans at the root", () => {
    const { data } = Schema.decodeUnknownSync(JaegerTraces)(body)
    assert.deepStrictEqual(formatTrace(data![0]!), [
      "trace 4bf92f3577b34da6a3ce929d0e0e4736: 9 spans, 2 services (poh-node, sending-dag), 1.23 s",
      "poh-node: Poh.flush  1.23 s  OK",
      "sending-dag: POST /tx (server)  14.9 ms  OK  http.route=/tx http.response.status_code=409  " +
      "(parent 00f067aa0ba902b7 not in trace)",
      "├─ sending-dag: Presence.onlineNodes  210 µs  OK  dag.region=eu-central",
      "├─ sending-dag: Poh.request  6.10 ms  OK  dag.region=eu-central",
      "│  └─ sending-dag: poh.PohService/Request (client)  5.90 ms  OK  " +
      "rpc.method=Request rpc.grpc.status_code=0",
      "│     └─ poh-node: poh.PohService/Request (server)  4.10 ms  OK  " +
      "rpc.method=Request rpc.grpc.status_code=0",
      "│        └─ poh-node: Poh.sequence  95 µs  OK  poh.seq=42",
      "└─ sending-dag: Storage.persist  3.20 ms  ERROR DuplicateTransaction  dag.tx.id=tx-1",
      "   └─ sending-dag: insert dag.transactions (client)  2.90 ms  ERROR \"E11000 duplicate key\"  " +
      "db.operation.name=insert db.collection.name=transactions"
    ])
  })

  it("spans whose parents form a cycle are each shown once", () => {
    const spans = [span("b1", "x", "p9", 0, 5, "b2", {}), span("b2", "y", "p9", 1, 5, "b1", {})]
    const cycle = { traceID, processes: {}, spans }
    assert.deepStrictEqual(formatTrace(Schema.decodeUnknownSync(JaegerTraces)({ data: [cycle] }).data![0]!), [
      `trace ${traceID}: 2 spans, 1 service (p9), 6 µs`,
      "p9: x  5 µs  OK",
      "└─ p9: y  5 µs  OK"
    ])
  })
})

describe("formatDuration", () => {
  it("three significant digits in µs, ms or s", () => {
    assert.deepStrictEqual(
      [0, 999, 1000, 1573, 14851, 123456, 1_234_567, 61_000_000].map(formatDuration),
      ["0 µs", "999 µs", "1.00 ms", "1.57 ms", "14.9 ms", "123 ms", "1.23 s", "61.0 s"]
    )
  })
})

describe("traceIdOf", () => {
  it.effect("takes 32 hex digits, or the trace id of a traceresponse value, in lower case", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* traceIdOf([traceID]), traceID)
      assert.strictEqual(yield* traceIdOf([` ${traceID.toUpperCase()} `]), traceID)
      assert.strictEqual(yield* traceIdOf([`00-${traceID}-00f067aa0ba902b7-01`]), traceID)
    }))

  it.effect.each<readonly [string, ReadonlyArray<string>]>([
    ["no argument", []],
    ["not hex", ["xyz"]],
    ["31 digits", [traceID.slice(1)]],
    ["33 digits", [`${traceID}0`]],
    ["half a traceresponse", [`00-${traceID}`]],
    ["two ids", [traceID, traceID]],
    ["a line break", [`${traceID}\n`.repeat(2)]]
  ])(
    "anything else is a BadTraceId, exit code 2: %s",
    ([, args]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(traceIdOf(args))
        assert.strictEqual(exitCode(error), 2)
        assert.match(error.message, args.length === 0 ? /^usage: npm run trace -- <trace id>/ : /^not a trace id: /)
        assert.notInclude(error.message, "\n")
      })
  )
})
