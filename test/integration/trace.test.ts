/**
 * `npm run trace` against the real Jaeger that globalSetup starts: a request
 * to `Http.serve` exported through `Tracing.layer`, its `traceresponse` header
 * handed to the script as a user would paste it, and the printed tree; then
 * the script's one-line failures and exit codes.
 */
import { execFile } from "node:child_process"
import { randomBytes, randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { createServer as createTcpServer } from "node:net"
import { fileURLToPath } from "node:url"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { inject } from "vitest"
import { Http, Metrics, Tracing } from "../../src/index.ts"
import { fetchTrace } from "./Jaeger.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

/** Unique per run, so that nothing another run exported to a shared Jaeger is mistaken for ours. */
const serviceName = `trace-it-${randomUUID().slice(0, 8)}`

class DuplicateTransaction extends Schema.TaggedError<DuplicateTransaction>()("DuplicateTransaction", {}) {}

/** Sequential steps, each a millisecond long, so that their start order is plain in microseconds. */
const step = (name: string, attributes: Record<string, unknown>) =>
  Effect.withSpan(Effect.sleep("1 millis"), name, { attributes })

const submit = Effect.gen(function*() {
  yield* step("Presence.onlineNodes", { "dag.region": "eu-central" })
  yield* step("Poh.sequence", { "poh.seq": 7 }).pipe(
    Effect.andThen(Effect.sleep("1 millis")),
    Effect.withSpan("Poh.request", { attributes: { "dag.region": "eu-central" } })
  )
  yield* Effect.fail(new DuplicateTransaction()).pipe(
    Effect.withSpan("Storage.persist", { attributes: { "dag.tx.id": "tx-1", "error.type": "DuplicateTransaction" } }),
    Effect.ignore
  )
  return HttpServerResponse.text("stored", { status: 201 })
})

/** `POST /tx` served by `Http.serve`, its spans exported to globalSetup's Jaeger. */
const Server = Http.serve(HttpRouter.add("POST", "/tx", submit), { disableLogger: true, disableListenLog: true }).pipe(
  Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
  Layer.provide(Tracing.layer({
    resource: { serviceName },
    otlpEndpoint: inject("otlpEndpoint"),
    sampler: { name: "always_on", ratio: 1 }
  })),
  Layer.provide(Metrics.layerTest)
)

/** The `traceresponse` of one `POST /tx`; the server's layer is closed, so its spans are flushed, when it returns. */
const postTx = Effect.gen(function*() {
  const { address } = yield* HttpServer.HttpServer
  return yield* Effect.promise(async () => {
    const response = await fetch(`${HttpServer.formatAddress(address)}/tx`, { method: "POST" })
    await response.arrayBuffer()
    assert.strictEqual(response.status, 201)
    return response.headers.get("traceresponse") ?? ""
  })
}).pipe(Effect.provide(Server))

/** How a run of the script ended. */
interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `command args` in the repository with `JAEGER_QUERY_URL=queryUrl`. */
const run = (command: string, args: ReadonlyArray<string>, queryUrl = inject("jaegerQueryUrl")) =>
  Effect.callback<Run>((resume) => {
    const env = { ...process.env, JAEGER_QUERY_URL: queryUrl }
    execFile(command, [...args], { cwd: root, env }, (error, stdout, stderr) =>
      resume(Effect.succeed({ code: typeof error?.code === "number" ? error.code : 0, stdout, stderr })))
  })

/** `node scripts/trace.ts args`, with the Node.js running the tests. */
const trace = (args: ReadonlyArray<string>, queryUrl?: string) =>
  run(process.execPath, ["scripts/trace.ts", ...args], queryUrl)

/** A loopback URL where nothing listens. */
const closedPort = Effect.promise(() =>
  new Promise<string>((resolve) => {
    const server = createTcpServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { readonly port: number }
      server.close(() => resolve(`http://127.0.0.1:${port}`))
    })
  })
)

/** The lines of `text`, with every duration as `<d>`. */
const lines = (text: string) =>
  text.trimEnd().split("\n").map((line) => line.replace(/\d+(\.\d+)? (µs|ms|s)\b/g, "<d>"))

describe("npm run trace", () => {
  it.live("prints the trace a traceresponse header names as a tree", () =>
    Effect.gen(function*() {
      const traceresponse = yield* postTx
      assert.match(traceresponse, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/)
      const traceId = traceresponse.slice(3, 35)
      yield* fetchTrace(traceId, 5)
      const printed = yield* run("npm", ["run", "--silent", "trace", "--", traceresponse])
      assert.deepStrictEqual({ ...printed, stdout: lines(printed.stdout) }, {
        code: 0,
        stderr: "",
        stdout: [
          `trace ${traceId}: 5 spans, 1 service (${serviceName}), <d>`,
          `${serviceName}: POST /tx (server)  <d>  OK  http.route=/tx http.response.status_code=201`,
          `├─ ${serviceName}: Presence.onlineNodes  <d>  OK  dag.region=eu-central`,
          `├─ ${serviceName}: Poh.request  <d>  OK  dag.region=eu-central`,
          `│  └─ ${serviceName}: Poh.sequence  <d>  OK  poh.seq=7`,
          `└─ ${serviceName}: Storage.persist  <d>  ERROR DuplicateTransaction  dag.tx.id=tx-1`
        ]
      })
    }))

  it.live("not a trace id: one line naming it, exit 2", () =>
    Effect.gen(function*() {
      const { code, stderr, stdout } = yield* trace(["tx-1"])
      assert.deepStrictEqual({ code, stdout }, { code: 2, stdout: "" })
      assert.match(stderr, /^not a trace id: "tx-1" \(usage: npm run trace -- <trace id>[^\n]*\n$/)
    }))

  it.live("a trace Jaeger does not have: one line, exit 1", () =>
    Effect.gen(function*() {
      const missing = randomBytes(16).toString("hex")
      const { code, stderr, stdout } = yield* trace([missing])
      assert.deepStrictEqual({ code, stdout }, { code: 1, stdout: "" })
      const where = inject("jaegerQueryUrl").replace(/\/+$/, "")
      assert.strictEqual(stderr.split("\n").length, 2)
      assert.isTrue(stderr.startsWith(`trace ${missing} is not in Jaeger at ${where} (JAEGER_QUERY_URL): `), stderr)
    }))

  it.live("Jaeger unreachable: one line saying how to start it, exit 1", () =>
    Effect.gen(function*() {
      const nowhere = yield* closedPort
      const { code, stderr, stdout } = yield* trace([randomBytes(16).toString("hex")], nowhere)
      assert.deepStrictEqual({ code, stdout }, { code: 1, stdout: "" })
      assert.strictEqual(stderr.split("\n").length, 2)
      assert.include(stderr, `cannot reach Jaeger's query API at ${nowhere} (JAEGER_QUERY_URL): connect ECONNREFUSED`)
      assert.include(stderr, "start it with `npm start`")
    }))
})
