/**
 * `Http.layerServer` against hostile clients (issue 18, item 1), on real
 * loopback sockets with short bounds: a request asking to upgrade on a server
 * that does not upgrade is served as any request and stays under the request
 * timeout (before: handed to the raw upgrade path, never answered, open for
 * good); a connection that sends nothing is closed; connections over the cap
 * are closed at once, counted and warned of once. And HTTP manners (item 5):
 * `HEAD` on `GET` routes, a malformed percent-encoding, `OPTIONS *` and
 * `CONNECT` each get an answer.
 */
import { connect, type Socket } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Schema } from "effect"
import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Http, ObservabilityTest, Testing } from "../src/index.ts"

const Body = Schema.Struct({ amount: Schema.Number })

const Routes = Layer.mergeAll(
  HttpRouter.add(
    "POST",
    "/tx",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* Schema.decodeUnknownEffect(Body)(yield* request.json)
      return HttpServerResponse.jsonUnsafe(body, { status: 201 })
    }).pipe(Effect.catch(() => Effect.succeed(HttpServerResponse.jsonUnsafe({ error: "bad body" }, { status: 400 }))))
  ),
  HttpRouter.add("GET", "/tx/:id", Effect.map(HttpRouter.params, (params) => HttpServerResponse.jsonUnsafe(params))),
  HttpRouter.add("*", "/*", HttpServerResponse.jsonUnsafe({ error: "no such route" }, { status: 404 }))
)

/** Serves the routes bounded as `options` say until the scope closes; the server's port. */
const serve = (options: Http.ServerOptions) =>
  Effect.gen(function*() {
    const services = yield* Layer.build(
      Http.serve(Routes, { disableListenLog: true, disableLogger: true }).pipe(
        Layer.provideMerge(Http.layerServer({ host: "127.0.0.1", port: 0 }, options))
      )
    )
    return (Context.get(services, HttpServer.HttpServer).address as { readonly port: number }).port
  })

interface Exchange {
  readonly received: string
  /** How long the server kept the connection, ms. */
  readonly openMs: number
}

/** Sends `text` on a new connection and reads until the server closes it (or `limitMs` passes). */
const exchange = (port: number, text: string, limitMs = 5_000) =>
  Effect.callback<Exchange>((resume) => {
    const started = performance.now()
    let received = ""
    const socket = connect(port, "127.0.0.1", () => socket.write(text))
    socket.on("data", (chunk) => (received += chunk.toString()))
    socket.on("error", () => undefined)
    const timer = setTimeout(() => socket.destroy(), limitMs)
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed({ received, openMs: performance.now() - started }))
    })
  })

const post = (headers: string, body: string) =>
  `POST /tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${headers}Content-Length: ${body.length}\r\n` +
  `Connection: close\r\n\r\n${body}`

describe("Http.layerServer", () => {
  it.live.each([
    "Connection: Upgrade\r\nUpgrade: websocket\r\n",
    "Connection: Upgrade\r\nUpgrade: x-anything\r\n"
  ])("a request asking to upgrade (%j) is served as any request", (headers) =>
    Effect.gen(function*() {
      const port = yield* serve({})
      const { received } = yield* exchange(port, post(headers, JSON.stringify({ amount: 5 })))
      assert.match(received, /^HTTP\/1\.1 201 /)
      assert.include(received, "{\"amount\":5}")
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("an upgrade request that stops sending its body is answered 408 and closed within the request timeout", () =>
    Effect.gen(function*() {
      const port = yield* serve({ requestTimeout: 500 })
      const partial = `POST /tx HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: x-anything\r\n` +
        `Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"amount":`
      const { openMs, received } = yield* exchange(port, partial)
      assert.match(received, /^HTTP\/1\.1 408 /)
      assert.isBelow(openMs, 2_500, "closed by the request timeout (checked every 500 ms), not held open")
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("a connection that sends nothing is closed within the request timeout", () =>
    Effect.gen(function*() {
      const port = yield* serve({ requestTimeout: 500 })
      const { openMs, received } = yield* exchange(port, "")
      assert.match(received, /^HTTP\/1\.1 408 /)
      assert.isBelow(openMs, 2_500)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("over maxConnections, new connections are closed at once, counted, and warned of once", () =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const port = yield* serve({ maxConnections: 2 }).pipe(
        Effect.provide(Logger.layer([Logger.map(Logger.formatSimple, (line) => void warnings.push(line))]))
      )
      const held: Array<Socket> = []
      yield* Effect.addFinalizer(() => Effect.sync(() => held.forEach((socket) => socket.destroy())))
      for (let i = 0; i < 2; i++) {
        const socket = connect(port, "127.0.0.1")
        held.push(socket)
        yield* Effect.promise(() => new Promise((resolve) => socket.once("connect", resolve)))
      }
      yield* Effect.sleep("100 millis")
      const over = yield* Effect.all([exchange(port, "", 2_000), exchange(port, "", 2_000)])
      for (const { openMs, received } of over) {
        assert.strictEqual(received, "")
        assert.isBelow(openMs, 1_000, "refused at once")
      }
      assert.strictEqual(yield* Testing.metricValue("http_server_connections_rejected_total"), 2)
      const said = warnings.filter((line) => line.includes("refusing more"))
      assert.strictEqual(said.length, 1, warnings.join("\n"))
      assert.include(said[0], "http_server_connections_rejected_total")
      assert.isTrue(held.every((socket) => !socket.destroyed), "the connections within the cap stay open")
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("HEAD is served by the GET route without a body, its span and latency labelled HEAD", () =>
    Effect.gen(function*() {
      const port = yield* serve({})
      const head = yield* exchange(port, "HEAD /tx/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      const get = yield* exchange(port, "GET /tx/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      assert.match(head.received, /^HTTP\/1\.1 200 /)
      assert.match(head.received, /content-length: 12\r\n/i, "the GET answer's length")
      assert.isTrue(head.received.endsWith("\r\n\r\n"), "no body")
      assert.isTrue(get.received.endsWith("{\"id\":\"abc\"}"))
      const count = { method: "HEAD", route: "/tx/:id", status_code: 200 }
      assert.strictEqual(yield* Testing.metricValue("http_server_request_duration_seconds_count", count), 1)
      const names = (yield* Testing.finishedSpans).map((span) => span.name)
      assert.includeMembers(names, ["HEAD /tx/:id", "GET /tx/:id"])
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live.each([
    ["GET /tx/%zz", /^HTTP\/1\.1 400 [\s\S]*\{"error":"malformed percent-encoding in the URL path"\}$/],
    ["GET /tx/a%2", /^HTTP\/1\.1 400 [\s\S]*malformed percent-encoding/],
    ["OPTIONS *", /^HTTP\/1\.1 204 /],
    ["CONNECT example.com:443", /^HTTP\/1\.1 501 [\s\S]*\{"error":"CONNECT is not supported"\}$/]
  ] as const)("%s gets an answer", ([line, expected]) =>
    Effect.gen(function*() {
      const port = yield* serve({})
      const { received } = yield* exchange(port, `${line} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
      assert.match(received, expected)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))
})
