/**
 * Hostile input against the sending DAG's HTTP API (examples/SendingDagApi.ts), served in process on a free
 * loopback port with `ObservabilityTest`, in-process PoH and memory storage: every row of the table gets its status
 * and JSON error; a trickling client is cut off by the request timeout; floods of unknown paths and of regions leave
 * the label sets bounded; and afterwards the service still serves and `/metrics` stays small.
 */
import { createServer, type Server } from "node:http"
import { connect } from "node:net"
import { assert, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as SendingDagApi from "../examples/SendingDagApi.ts"
import { type Answer, api, exchange, json, type Sent, send, tx } from "./support/Api.ts"
import { DagMetrics } from "../src/dag/index.ts"
import { Http, Metrics, MetricsServer, Testing } from "../src/index.ts"

/** The request timeout of the server under test, and how often Node checks it (`Http.layerServer`: a quarter of it). */
const requestTimeout = 1_000
const checkInterval = requestTimeout / 4

const Api = api({ requestTimeout })

/** One hostile input and what the API must answer. */
interface Row extends Sent {
  readonly name: string
  readonly status: number
  /** The `error` of the JSON body, or what it must match; absent for a 2xx. */
  readonly error?: string | RegExp
  /** `details` exactly (a string), or what it must match (as JSON text unless a string); absent: no `details`. */
  readonly details?: string | RegExp
}

const minLength = "Expected a value with a length of at least 1"
const maxLength = (max: number) => `Expected a value with a length of at most ${max}`
const positive = "Expected a value greater than 0"
const excess = "Expected no excess property"

/** A valid transaction whose amount is the JSON literal `literal`. */
const amountLiteral = (literal: string) => tx().replace("\"amount\":5", `"amount":${literal}`)

/** A schema issue as the API's `details` gives it: what was expected, then where. */
const at = (key: string, expected: string) => `${expected}\n  at ["${key}"]`

const invalid = (name: string, body: string, details: string | RegExp): Row => ({
  name,
  headers: json,
  body,
  status: 400,
  error: "invalid transaction",
  details
})

const malformed = (name: string, body: string | Buffer): Row => ({
  name,
  headers: json,
  body,
  status: 400,
  error: "malformed JSON",
  details: /JSON/
})

const accepted = (name: string, body: string, headers: Record<string, string> = json): Row => ({
  name,
  headers,
  body,
  status: 201
})

const tooLarge = `body larger than ${SendingDagApi.maxBodyBytes} bytes`
const oversized = tx({ memo: "m".repeat(SendingDagApi.maxBodyBytes) })

/** The table: at least 25 hostile inputs, with the accepted boundaries beside them. */
const rows: ReadonlyArray<Row> = [
  malformed("truncated JSON", tx().slice(0, 20)),
  malformed("unquoted keys", "{from: 'alice'}"),
  malformed("empty body", ""),
  malformed("trailing garbage", `${tx()}}`),
  malformed("a lone byte-order mark", Buffer.from([0xef, 0xbb, 0xbf])),
  invalid("null", "null", "Expected object"),
  invalid("an array", `[${tx()}]`, "Expected object"),
  invalid("a string", "\"alice\"", "Expected object"),
  invalid("amount as a string", tx({ amount: "5" }), at("amount", "Expected number")),
  invalid("from as a number", tx({ from: 42 }), at("from", "Expected string")),
  invalid("to as an array", tx({ to: ["bob"] }), at("to", "Expected string")),
  invalid("region null", tx({ region: null }), at("region", "Expected string")),
  invalid("amount as an operator object", tx({ amount: { $gt: 0 } }), at("amount", "Expected number")),
  invalid("missing from", tx({ from: undefined }), at("from", "Missing key")),
  invalid("missing amount", tx({ amount: undefined }), at("amount", "Missing key")),
  invalid("an extra field", tx({ admin: true }), at("admin", excess)),
  invalid("a __proto__ field", `{"__proto__":{"admin":true},${tx().slice(1)}`, at("__proto__", excess)),
  invalid("empty from", tx({ from: "" }), at("from", minLength)),
  invalid("empty region", tx({ region: "" }), at("region", minLength)),
  invalid("from of 129 characters", tx({ from: "f".repeat(129) }), at("from", maxLength(128))),
  invalid("to of 129 characters", tx({ to: "t".repeat(129) }), at("to", maxLength(128))),
  invalid("region of 65 characters", tx({ region: "r".repeat(65) }), at("region", maxLength(64))),
  invalid("memo of 1025 characters", tx({ memo: "m".repeat(1025) }), at("memo", maxLength(1024))),
  invalid("memo not a string", tx({ memo: 7 }), at("memo", "Expected string | undefined")),
  invalid("amount 0", tx({ amount: 0 }), at("amount", positive)),
  invalid("amount -0", amountLiteral("-0"), at("amount", positive)),
  invalid("amount negative", tx({ amount: -5 }), at("amount", positive)),
  invalid("amount \"NaN\"", tx({ amount: "NaN" }), at("amount", "Expected number")),
  invalid("amount \"Infinity\"", tx({ amount: "Infinity" }), at("amount", "Expected number")),
  {
    name: "amount 1e400 (parses to Infinity)",
    headers: json,
    body: amountLiteral("1e400"),
    status: 400,
    error: "the number 1e400 cannot be carried exactly",
    details: /^\{"field":"amount"\}$/
  },
  invalid(
    "every field wrong at once",
    "{\"from\":1,\"to\":2,\"amount\":\"x\",\"region\":3}",
    [at("from", "Expected string"), at("to", "Expected string"), at("amount", "Expected number"),
      at("region", "Expected string")].join("\n")
  ),
  {
    name: "not UTF-8",
    headers: json,
    body: Buffer.from(tx({ from: "AAAA" }).replace("AAAA", "\u00ff\u00fe"), "latin1"),
    status: 400,
    error: "body is not valid UTF-8"
  },
  {
    name: `${oversized.length} bytes, truthful content-length`,
    headers: json,
    body: oversized,
    status: 413,
    error: tooLarge
  },
  {
    name: `${oversized.length} bytes, chunked`,
    headers: json,
    body: [oversized.slice(0, 4096), oversized.slice(4096, 12_000), oversized.slice(12_000)],
    status: 413,
    error: tooLarge
  },
  {
    name: "content-type text/plain",
    headers: { "content-type": "text/plain" },
    body: tx(),
    status: 415,
    error: "content-type must be application/json",
    details: /"contentType":"text\/plain"/
  },
  {
    name: "content-type form-urlencoded",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "from=alice&to=bob&amount=5&region=eu-central",
    status: 415,
    error: "content-type must be application/json",
    details: /x-www-form-urlencoded/
  },
  { name: "unknown path", method: "GET", path: "/admin", status: 404, error: "no such route" },
  { name: "PUT /tx", method: "PUT", headers: json, body: tx(), status: 404, error: "no such route" },
  {
    name: "path traversal",
    method: "GET",
    path: "/tx/..%2f..%2fetc%2fpasswd",
    status: 404,
    error: "no transaction ../../etc/passwd"
  },
  accepted("from and to of 128 characters", tx({ from: "f".repeat(128), to: "t".repeat(128) })),
  accepted("memo of 1024 characters", tx({ memo: "m".repeat(1024) })),
  accepted("unknown region", tx({ region: "mars-1" })),
  accepted("application/json; charset=utf-8", tx(), { "content-type": "application/json; charset=utf-8" }),
  accepted("no content-type", tx(), {})
]

/** Asserts `answer` is the row's status and body. */
const assertAnswer = (row: Row, answer: Answer) => {
  const what = `${row.name}: ${answer.status} ${answer.body.slice(0, 300)}`
  assert.strictEqual(answer.status, row.status, what)
  assert.match(String(answer.headers["content-type"]), /^application\/json/, what)
  const body = JSON.parse(answer.body) as Record<string, unknown>
  if (row.status < 300) {
    assert.deepStrictEqual(Object.keys(body).toSorted(), ["ack", "id", "region"], what)
    return
  }
  const keys = row.details === undefined ? ["error"] : ["details", "error"]
  assert.deepStrictEqual(Object.keys(body).toSorted(), keys, what)
  if (row.error instanceof RegExp) assert.match(String(body["error"]), row.error, what)
  else assert.strictEqual(body["error"], row.error, what)
  const details = body["details"]
  if (typeof row.details === "string") assert.strictEqual(details, row.details, what)
  else if (row.details !== undefined) {
    assert.match(typeof details === "string" ? details : JSON.stringify(details), row.details, what)
  }
}

/** Every value of `label` among the series of `histogram` or counter `name`. */
const labelValues = (name: string, label: string) =>
  Effect.gen(function*() {
    const { registry } = yield* Metrics.Metrics
    const family = registry.getSingleMetric(name)
    assert.isDefined(family, name)
    const { values } = yield* Effect.promise(() => family!.get())
    return new Set(values.map((sample) => String(sample.labels[label])))
  })

/** Runs `count` requests made by `make`, `concurrency` at a time; how many answered each status. */
const flood = (count: number, make: (i: number) => Sent) =>
  Effect.gen(function*() {
    const statuses = new Map<number, number>()
    yield* Effect.forEach(
      Array.from({ length: count }, (_, i) => i),
      (i) => Effect.map(send(make(i)), ({ status }) => statuses.set(status, (statuses.get(status) ?? 0) + 1)),
      { concurrency: 32, discard: true }
    )
    return Object.fromEntries(statuses)
  })

layer(Api, { excludeTestServices: true, timeout: 120_000 })("the sending DAG under hostile input", (it) => {
  it.effect("has at least 25 hostile rows", () =>
    Effect.sync(() => assert.isAtLeast(rows.filter((row) => row.status >= 400).length, 25)))

  it.effect.each(rows)("$name → $status", (row) =>
    Effect.gen(function*() {
      assertAnswer(row, yield* send(row))
    }))

  it.effect.each([
    ["no dashes", "0af7651916cd43dd8448eb211c80319cb7ad6b716920333101"],
    ["a zero trace id", `00-${"0".repeat(32)}-b7ad6b7169203331-01`],
    ["uppercase hex", "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01"],
    ["8 KiB", `00-${"a".repeat(8192)}`],
    ["JSON", "{\"traceId\":\"0af7651916cd43dd8448eb211c80319c\"}"]
  ])("a malformed traceparent (%s): 201 in a new trace", ([, traceparent]) =>
    Effect.gen(function*() {
      const spans = yield* Testing.TestSpans
      yield* spans.clear
      const answer = yield* send({ headers: { ...json, traceparent, tracestate: "=,=;".repeat(512) }, body: tx() })
      assert.strictEqual(answer.status, 201, answer.body)
      const server = (yield* spans.finished).filter((span) => span.name === "POST /tx")
      assert.strictEqual(server.length, 1)
      assert.isUndefined(server[0]!.parentSpanContext)
      assert.notStrictEqual(server[0]!.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c")
    }))

  it.effect("an 8 KiB tracestate beside a valid traceparent: 201, the trace continued", () =>
    Effect.gen(function*() {
      const spans = yield* Testing.TestSpans
      yield* spans.clear
      const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
      const tracestate = Array.from({ length: 512 }, (_, i) => `k${i}=${"v".repeat(12)}`).join(",")
      const answer = yield* send({ headers: { ...json, traceparent, tracestate }, body: tx() })
      assert.strictEqual(answer.status, 201, answer.body)
      const [server] = (yield* spans.finished).filter((span) => span.name === "POST /tx")
      assert.strictEqual(server?.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c")
      assert.strictEqual(server?.parentSpanContext?.spanId, "b7ad6b7169203331")
    }))

  it.effect("headers over Node's 16 KiB limit (a 20 KiB traceparent): 431 before the API, which still serves", () =>
    Effect.gen(function*() {
      const answer = yield* send({ headers: { ...json, traceparent: `00-${"a".repeat(20_480)}` }, body: tx() })
      assert.strictEqual(answer.status, 431)
      assert.strictEqual((yield* send({ headers: json, body: tx() })).status, 201)
    }))

  it.effect("a client trickling its body is answered 408 and cut off by the request timeout", () =>
    Effect.gen(function*() {
      const { address } = yield* HttpServer.HttpServer
      const port = (address as { port: number }).port
      const started = Date.now()
      const { text, closedAfter, sent } = yield* Effect.promise(() =>
        new Promise<{ text: string; closedAfter: number; sent: number }>((resolve, reject) => {
          const socket = connect(port, "127.0.0.1")
          const body = tx()
          let written = 0
          let received = ""
          socket.on("error", reject)
          socket.on("data", (chunk) => (received += chunk.toString()))
          const head = ["POST /tx HTTP/1.1", "host: x", "content-type: application/json"]
          socket.write(`${head.join("\r\n")}\r\ncontent-length: ${body.length}\r\n\r\n`)
          const trickle = setInterval(() => {
            if (written < body.length - 1 && !socket.destroyed) socket.write(body[written++]!)
          }, 100)
          socket.on("close", () => {
            clearInterval(trickle)
            resolve({ text: received, closedAfter: Date.now() - started, sent: written })
          })
        })
      )
      assert.match(text, /^HTTP\/1\.1 408 /, text)
      assert.isBelow(sent, tx().length - 1, "cut off before the body was complete")
      assert.isAtLeast(closedAfter, requestTimeout - 50)
      assert.isBelow(closedAfter, requestTimeout + 5 * checkInterval + 500)
    }))

  it.effect("the slow client's timeout of Http.layerServer, the sending DAG's server, is 10 s by default", () =>
    Effect.gen(function*() {
      let created: Server | undefined
      yield* Layer.build(Http.layerServer({ host: "127.0.0.1", port: 0 }, { createServer: () => (created = createServer()) }))
      assert.strictEqual(created?.requestTimeout, 10_000)
      assert.strictEqual(created?.headersTimeout, 10_000)
    }).pipe(Effect.scoped, Effect.provide(Metrics.layerTest)))

  it.effect("10 000 distinct unknown paths: 404 each, one route label", () =>
    Effect.gen(function*() {
      const catchAll = { route: "/*", status_code: 404 }
      const before = yield* Testing.metricValue("http_server_request_duration_seconds_count", catchAll)
      const statuses = yield* flood(10_000, (i) => ({ method: "GET", path: `/unknown/${i}/${"x".repeat(i % 50)}` }))
      assert.deepStrictEqual(statuses, { 404: 10_000 })
      // The API's catch-all route `/*` takes every unknown path: one label value for all of them.
      const routes = yield* labelValues("http_server_request_duration_seconds", "route")
      assert.deepStrictEqual([...routes].toSorted(), ["/*", "/tx", "/tx/:id"])
      assert.strictEqual(
        (yield* Testing.metricValue("http_server_request_duration_seconds_count", catchAll)) - before,
        10_000
      )
    }), { timeout: 120_000 })

  it.effect("10 000 distinct regions: committed, each recorded as other", () =>
    Effect.gen(function*() {
      const before = yield* Testing.metricValue("tx_committed_total", { region: DagMetrics.otherRegion })
      const statuses = yield* flood(10_000, (i) => ({ headers: json, body: tx({ region: `region-${i}` }) }))
      assert.deepStrictEqual(statuses, { 201: 10_000 })
      assert.strictEqual(
        (yield* Testing.metricValue("tx_committed_total", { region: DagMetrics.otherRegion })) - before,
        10_000
      )
      const bounded = new Set([...DagMetrics.defaultRegions, DagMetrics.otherRegion])
      for (const name of ["tx_committed_total", "poh_requests_total", "poh_ack_total", "presence_calls_total"]) {
        const regions = yield* labelValues(name, "region")
        assert.isTrue([...regions].every((region) => bounded.has(region)), `${name}: ${[...regions].join(", ")}`)
      }
    }), { timeout: 120_000 })

  it.effect("afterwards the service still serves and /metrics stays under 64 KiB", () =>
    Effect.gen(function*() {
      const ping = yield* send({ method: "GET", path: "/ping" })
      assert.deepStrictEqual([ping.status, JSON.parse(ping.body)], [200, { ok: true }])
      const posted = yield* send({ headers: json, body: tx() })
      assert.strictEqual(posted.status, 201, posted.body)
      const { url } = yield* MetricsServer.MetricsServer
      const scraped = yield* exchange(url, { method: "GET", path: "/metrics" })
      assert.strictEqual(scraped.status, 200)
      const bytes = Buffer.byteLength(scraped.body)
      assert.isBelow(bytes, 64 * 1024, `/metrics is ${bytes} bytes`)
      assert.notMatch(scraped.body, /region-\d|\/unknown\//)
    }))
})
