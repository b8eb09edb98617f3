/**
 * `Http.serve` shutting down under a keep-alive client: a request in flight
 * when the layer is released still gets its answer, with `Connection: close`,
 * and the server closes at once instead of waiting for the client to let go of
 * its connection (Node's `server.close()` waits for every open connection).
 */
import { Agent, request } from "node:http"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Layer, Scope } from "effect"
import { HttpRouter, HttpServer, HttpServerResponse } from "effect/http"
import { Http, ObservabilityTest } from "../src/index.ts"

/** GET `url` over `agent`: status and `Connection` header. */
const get = (agent: Agent, url: string) =>
  Effect.callback<{ readonly status: number; readonly connection: string | undefined }, Error>((resume) => {
    const sent = request(url, { agent }, (response) => {
      response.resume()
      response.once("end", () =>
        resume(Effect.succeed({ status: response.statusCode ?? 0, connection: response.headers.connection })))
    })
    sent.once("error", (error) => resume(Effect.fail(error)))
    sent.end()
  })

it.live("a request in flight at shutdown is answered with Connection: close, and the server closes promptly", () =>
  Effect.gen(function*() {
    const entered = yield* Deferred.make<void>()
    const release = yield* Deferred.make<void>()
    const Routes = Layer.mergeAll(
      HttpRouter.add("GET", "/ping", HttpServerResponse.json({ ok: true })),
      HttpRouter.add(
        "GET",
        "/slow",
        Effect.andThen(Deferred.succeed(entered, undefined), Deferred.await(release)).pipe(
          Effect.as(HttpServerResponse.jsonUnsafe({ ok: true }))
        )
      )
    )
    const Server = Http.serve(Routes, { disableLogger: true, disableListenLog: true }).pipe(
      Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
      Layer.provideMerge(ObservabilityTest)
    )
    const scope = yield* Scope.make()
    const context = yield* Layer.buildWithScope(Server, scope)
    const base = HttpServer.formatAddress(Effect.runSync(Effect.provide(HttpServer.HttpServer, context)).address)
    const agent = new Agent({ keepAlive: true })
    yield* Effect.addFinalizer(() => Effect.sync(() => agent.destroy()))

    const before = yield* get(agent, `${base}/ping`)
    assert.deepStrictEqual(before, { status: 200, connection: "keep-alive" })

    const slow = yield* Effect.forkChild(get(agent, `${base}/slow`))
    yield* Deferred.await(entered)
    const started = Date.now()
    const closing = yield* Effect.forkChild(Scope.close(scope, Exit.void))
    yield* Effect.sleep(100)
    yield* Deferred.succeed(release, undefined)
    const answer = yield* Fiber.join(slow)
    yield* Fiber.join(closing).pipe(Effect.timeout("10 seconds"))
    const closedMs = Date.now() - started

    assert.deepStrictEqual(answer, { status: 200, connection: "close" })
    // Without `Connection: close` the idle keep-alive connection holds `server.close()` for the 5 s keepAliveTimeout.
    assert.isBelow(closedMs, 2_000, `closed in ${closedMs} ms`)
  }).pipe(Effect.scoped))
