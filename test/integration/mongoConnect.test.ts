/**
 * Bounded connect against FerretDB behind test/support/MongoProxy.ts: a host that accepts connections and never
 * answers holds a persist for the driver's three connection attempts of one connect timeout each (1 s here, 5 s by
 * default, the driver's own 30 s), and the sending DAG answers `503` within that bound, read from
 * `MONGODB_CONNECT_TIMEOUT`; `MONGODB_SERVER_SELECTION_TIMEOUT` bounds the wait for a server that never answers.
 */
import { randomBytes } from "node:crypto"
import { once } from "node:events"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { inject } from "vitest"
import * as SendingDagApi from "../../examples/SendingDagApi.ts"
import { DagMetrics, Poh, Presence, Storage } from "../../src/dag/index.ts"
import * as MongoStorage from "../../src/dag/MongoStorage.ts"
import { ObservabilityTest } from "../../src/index.ts"
import * as Mongo from "../../src/Mongo.ts"
import * as MongoProxy from "../support/MongoProxy.ts"

const run = randomBytes(3).toString("hex")

/** How much later than its bound a failure may come: event-loop and scheduling slack on a busy 2-core machine. */
const slack = 1_500

/**
 * Attempts the driver (7.x) makes to open a connection for one operation: a connection that cannot be opened is
 * labelled `SystemOverloadedError` and retried `maxAdaptiveRetries` (2) more times, after random backoffs of at most
 * 200 and 400 ms.
 */
const connectAttempts = 3
const maxBackoff = 600

/**
 * The proxy hangs, and the driver has seen its connection closed (so the next operation must open a new one rather
 * than fail at once on the dead one).
 */
const hang = (proxy: MongoProxy.MongoProxy) =>
  Effect.flatMap(Mongo.Mongo, ({ client }) =>
    Effect.promise(() => {
      const closed = once(client, "connectionClosed", { signal: AbortSignal.timeout(5_000) })
      proxy.hang()
      return closed
    }))

const transaction = (id: string) =>
  new Storage.StoredTransaction({
    id,
    from: "alice",
    to: "bob",
    amount: 5,
    region: "eu-central",
    ack: new Poh.PohAck({ seq: 1, hash: "ef".repeat(32), timestamp: "2025-01-01T00:00:00.000Z", node: "poh-1" })
  })

/** MongoStorage on `uri` with `options`, the DAG's metrics and in-memory spans beside. */
const StorageOn = (uri: string, options: Mongo.Options) =>
  MongoStorage.layer.pipe(
    Layer.provideMerge(DagMetrics.layer()),
    Layer.provideMerge(Mongo.layer(uri, options)),
    Layer.provideMerge(ObservabilityTest)
  )

/** Runs `effect`, returning its value and how many milliseconds it took. */
const clocked = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const started = Date.now()
    const value = yield* effect
    return { value, elapsed: Date.now() - started }
  })

const env = (variables: Record<string, string>) =>
  Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: variables })))

describe("bounded connect", () => {
  it.live("Mongo.layer's defaults: connectTimeoutMS 5000 and serverSelectionTimeoutMS 2000, not the driver's 30 000", () =>
    Effect.gen(function*() {
      const { client } = yield* Mongo.Mongo
      assert.strictEqual(client.options.connectTimeoutMS, 5_000)
      assert.strictEqual(client.options.serverSelectionTimeoutMS, 2_000)
      assert.strictEqual(Duration.toMillis(Mongo.defaultConnectTimeout), 5_000)
    }).pipe(Effect.provide(Mongo.layer(inject("mongodbUri"), { database: `dag_defaults_${run}` }))))

  it.live("a new connection never answered: StorageUnavailable after 3 attempts of 1 s; with 30 s, attempt 1 still waits", () =>
    Effect.gen(function*() {
      const proxy = yield* MongoProxy.make(inject("mongodbUri"))
      /** One write through the proxy, then the proxy hangs and a second write must open a new connection. */
      const persistWhileHanging = (connectTimeout: Duration.Input, label: string, observe: Duration.Input) =>
        Effect.gen(function*() {
          const storage = yield* Storage.Storage
          yield* storage.persist(transaction(`tx-${label}-before`))
          const silenced = proxy.connections().silenced
          yield* hang(proxy)
          const result = yield* clocked(
            storage.persist(transaction(`tx-${label}-during`)).pipe(Effect.flip, Effect.timeoutOption(observe))
          )
          const swallowed = proxy.connections().silenced - silenced
          proxy.resume()
          return { ...result, swallowed }
        }).pipe(Effect.provide(StorageOn(proxy.uri(`dag_connect_${label}_${run}`), { connectTimeout })))

      const bound = connectAttempts * 1_000 + maxBackoff
      const bounded = yield* persistWhileHanging("1 second", "bounded", bound + slack)
      const error = Option.getOrUndefined(bounded.value)
      assert.strictEqual(error?._tag, "StorageUnavailable", `failed within ${bound} ms + ${slack} ms`)
      assert.match(error?.message ?? "", /^storage unavailable during persist: MongoNetworkTimeoutError: /)
      assert.strictEqual(bounded.swallowed, connectAttempts, "each attempt opened a connection that was swallowed")
      assert.isAtLeast(bounded.elapsed, connectAttempts * 950, "each attempt waited its connect timeout")
      assert.isBelow(bounded.elapsed, bound + slack)

      // With the driver's 30 s, the first attempt alone is still waiting when the bounded persist had long failed.
      const unbounded = yield* persistWhileHanging("30 seconds", "driver_default", bound + slack)
      assert.isTrue(Option.isNone(unbounded.value), `still waiting after ${bound + slack} ms`)
      assert.strictEqual(unbounded.swallowed, 1, "the first attempt's connection, still open")
    }), 30_000)

  it.live("POST /tx answers 503 within 3 × MONGODB_CONNECT_TIMEOUT=1s while new connections hang, then 201 again", () =>
    Effect.gen(function*() {
      const proxy = yield* MongoProxy.make(inject("mongodbUri"))
      const App = SendingDagApi.layer.pipe(
        Layer.provideMerge(NodeHttpServer.layer(createServer, { host: "127.0.0.1", port: 0 })),
        Layer.provide(Layer.mergeAll(Poh.layerInProcess(), Presence.layerStatic({ nodes: [], failureRatio: 0 }))),
        Layer.provideMerge(MongoStorage.layer),
        Layer.provideMerge(DagMetrics.layer()),
        Layer.provideMerge(Mongo.layerConfig()),
        Layer.provideMerge(ObservabilityTest),
        env({
          MONGODB_URI: proxy.uri(`dag_connect_http_${run}`),
          MONGODB_CONNECT_TIMEOUT: "1s",
          MONGODB_SERVER_SELECTION_TIMEOUT: "1500"
        })
      )
      yield* Effect.gen(function*() {
        const { client } = yield* Mongo.Mongo
        assert.strictEqual(client.options.connectTimeoutMS, 1_000)
        assert.strictEqual(client.options.serverSelectionTimeoutMS, 1_500)
        const { address } = yield* HttpServer.HttpServer
        const post = Effect.promise(async () => {
          const response = await fetch(`${HttpServer.formatAddress(address)}/tx`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ from: "alice", to: "bob", amount: 5, region: "eu-central" })
          })
          return { status: response.status, body: await response.text() }
        })
        assert.strictEqual((yield* post).status, 201)
        yield* hang(proxy)
        const { value: answer, elapsed } = yield* clocked(post)
        assert.strictEqual(answer.status, 503, answer.body)
        const body = JSON.parse(answer.body) as { readonly error?: string }
        assert.match(body.error ?? "", /^storage unavailable during persist: MongoNetworkTimeoutError: /)
        assert.strictEqual(proxy.connections().silenced, connectAttempts)
        assert.isAtLeast(elapsed, connectAttempts * 950)
        assert.isBelow(elapsed, connectAttempts * 1_000 + maxBackoff + slack)
        proxy.resume()
        const again = yield* post
        assert.strictEqual(again.status, 201, again.body)
      }).pipe(Effect.provide(App))
    }), 30_000)

  it.live("MONGODB_SERVER_SELECTION_TIMEOUT=500ms: a host that never answers fails the layer within it, not in 2 s", () =>
    Effect.gen(function*() {
      const proxy = yield* MongoProxy.make(inject("mongodbUri"))
      proxy.hang()
      const { elapsed, value: failure } = yield* clocked(
        Layer.build(Mongo.layerConfig()).pipe(
          Effect.scoped,
          Effect.flip,
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({
            env: {
              MONGODB_URI: proxy.uri(`dag_selection_${run}`),
              MONGODB_SERVER_SELECTION_TIMEOUT: "500ms",
              MONGODB_CONNECT_TIMEOUT: "10 seconds"
            }
          })))
        )
      )
      assert.strictEqual(failure._tag, "MongoUnavailable")
      assert.match(failure.message, /: MongoServerSelectionError: /)
      assert.isAtLeast(proxy.connections().silenced, 1, "the monitor's connection was swallowed")
      assert.isAtLeast(elapsed, 450)
      assert.isBelow(elapsed, 500 + slack)
    }))
})
