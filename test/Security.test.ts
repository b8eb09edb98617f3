/**
 * `/metrics` kept private: bound to loopback (`PROMETHEUS_BIND=127.0.0.1:…`) it is not reachable on any other
 * address; behind `PROMETHEUS_BEARER_TOKEN` it answers only `Authorization: Bearer <token>`, and the token appears in
 * no answer, error or log line.
 */
import { connect } from "node:net"
import { networkInterfaces } from "node:os"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Layer, Option, Redacted } from "effect"
import * as NetAddress from "effect/net/NetAddress"
import { DagMetrics } from "../src/dag/index.ts"
import { MetricsServer, ObservabilityTest, Settings } from "../src/index.ts"
import { capturingOutput } from "./support/Output.ts"
import { environment } from "./support/Environment.ts"

const token = "s3cr3t-T0ken_with.all~chars+/="

/** `env` as the only configuration. */

/** `MetricsServer.layerConfig()` configured by `env`, over a fresh test registry holding the DAG's metrics. */
const Configured = (env: Record<string, string>) =>
  Layer.fresh(MetricsServer.layerConfig()).pipe(
    Layer.provideMerge(DagMetrics.layer()),
    Layer.provideMerge(ObservabilityTest),
    Layer.provide(environment(env))
  )

const scrape = (headers: Record<string, string> = {}, method = "GET") =>
  Effect.gen(function*() {
    const { url } = yield* MetricsServer.MetricsServer
    return yield* Effect.promise(async () => {
      const response = await fetch(url, { headers, method })
      return {
        status: response.status,
        authenticate: response.headers.get("www-authenticate"),
        body: await response.text()
      }
    })
  })

/** The IPv4 address and port the server listens on. */
const listening = Effect.map(MetricsServer.MetricsServer, ({ address, url }) => {
  assert.strictEqual(address._tag, "InetAddressV4")
  const inet = address as NetAddress.InetAddressV4
  return { host: NetAddress.formatIp(inet.address), port: inet.port, url }
})

/** Whether a TCP connection to `host:port` is accepted. */
const reachable = (host: string, port: number) =>
  Effect.promise(() =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ host, port, timeout: 2_000 })
      socket.once("connect", () => {
        socket.destroy()
        resolve(true)
      })
      socket.once("error", () => resolve(false))
      socket.once("timeout", () => {
        socket.destroy()
        resolve(false)
      })
    })
  )

describe("/metrics behind a bearer token", () => {
  it.live("with PROMETHEUS_BEARER_TOKEN set, only the right bearer token is answered", () =>
    Effect.gen(function*() {
      const metrics = yield* DagMetrics.DagMetrics
      yield* metrics.recordTxCommitted("eu-central")
      const missing = yield* scrape()
      assert.deepStrictEqual(missing, {
        status: 401,
        authenticate: "Bearer realm=\"metrics\"",
        body: "Unauthorized: /metrics needs Authorization: Bearer <token>\n"
      })
      const refused = [
        { authorization: `Bearer ${token}x` },
        { authorization: `Bearer ${token.slice(0, -1)}` },
        { authorization: "Bearer " },
        { authorization: `Basic ${Buffer.from(`user:${token}`).toString("base64")}` },
        { authorization: token },
        { authorization: `Bearer ${token} extra` }
      ]
      for (const headers of refused) {
        const answer = yield* scrape(headers)
        assert.strictEqual(answer.status, 401, headers.authorization)
        assert.strictEqual(answer.authenticate, "Bearer realm=\"metrics\", error=\"invalid_token\"")
        assert.notInclude(answer.body, token)
      }
      assert.strictEqual((yield* scrape({}, "HEAD")).status, 401)
      assert.strictEqual((yield* scrape({}, "POST")).status, 401, "no method is answered without the token")
      for (const authorization of [`Bearer ${token}`, `bearer ${token}`, `BEARER  ${token}`]) {
        const answer = yield* scrape({ authorization })
        assert.strictEqual(answer.status, 200, authorization)
        assert.include(answer.body, "tx_committed_total{region=\"eu-central\"} 1")
        assert.notInclude(answer.body, token)
      }
    }).pipe(Effect.provide(Configured({ PROMETHEUS_BIND: "127.0.0.1:0", PROMETHEUS_BEARER_TOKEN: token }))))

  it.live("without PROMETHEUS_BEARER_TOKEN, /metrics asks for nothing", () =>
    Effect.gen(function*() {
      const answer = yield* scrape()
      assert.strictEqual(answer.status, 200)
      assert.isNull(answer.authenticate)
    }).pipe(Effect.provide(Configured({ PROMETHEUS_BIND: "127.0.0.1:0" }))))

  it.effect("the token is read redacted: it prints as <redacted>", () =>
    Effect.gen(function*() {
      const read = yield* Settings.read(Settings.metricsBearerToken)
      assert.isTrue(Option.isSome(read))
      const redacted = Option.getOrThrow(read)
      assert.strictEqual(Redacted.value(redacted), token)
      for (const shown of [String(redacted), JSON.stringify({ redacted }), `${redacted}`]) {
        assert.notInclude(shown, token)
      }
    }).pipe(Effect.provide(environment({ PROMETHEUS_BEARER_TOKEN: token }))))

  it.effect.each([
    ["two words", "two words"],
    ["a tab", "tab\there"],
    ["not ASCII", "é-not-ascii"],
    ["4097 characters", "x".repeat(4097)]
  ])(
    "an invalid token fails at start without repeating it: %s",
    ([, value]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Layer.build(Configured({ PROMETHEUS_BEARER_TOKEN: value })))
        assert.strictEqual(error._tag, "InvalidConfig")
        assert.match(error.message, /^PROMETHEUS_BEARER_TOKEN="<redacted>" is not valid: expected a bearer token/)
        assert.notInclude(error.message, value)
        assert.notInclude(String(error.stack), value)
      })
  )

  it.live("the token appears in no log line, error or answer of a server that refuses and serves", () =>
    Effect.gen(function*() {
      const { exit, lines } = yield* capturingOutput(
        Effect.gen(function*() {
          yield* Effect.log("metrics served")
          assert.strictEqual((yield* scrape({ authorization: "Bearer wrong" })).status, 401)
          assert.strictEqual((yield* scrape({ authorization: `Bearer ${token}` })).status, 200)
          yield* Effect.logError(yield* Effect.flip(Layer.build(Configured({ PROMETHEUS_BEARER_TOKEN: `${token} x` }))))
        }).pipe(
          Effect.scoped,
          Effect.provide(Configured({ PROMETHEUS_BIND: "127.0.0.1:0", PROMETHEUS_BEARER_TOKEN: token }))
        )
      )
      assert.strictEqual(exit._tag, "Success", exit._tag === "Failure" ? Cause.pretty(exit.cause) : "")
      assert.isTrue(lines.some((line) => line.includes("metrics served")), "the capture sees log lines")
      assert.isTrue(lines.some((line) => line.includes("PROMETHEUS_BEARER_TOKEN")), "and the error logged")
      for (const line of lines) assert.notInclude(line, token.slice(0, 12))
    }))
})

describe("/metrics bound to loopback", () => {
  it.live("PROMETHEUS_BIND=127.0.0.1:0 listens on 127.0.0.1 only: no other address reaches it", () =>
    Effect.gen(function*() {
      const { host, port, url } = yield* listening
      assert.strictEqual(host, "127.0.0.1")
      assert.isAbove(port, 0)
      assert.strictEqual(url, `http://127.0.0.1:${port}/metrics`)
      assert.isTrue(yield* reachable("127.0.0.1", port))
      // Every address of 127.0.0.0/8 is this host on Linux, yet only the bound one accepts.
      assert.isFalse(yield* reachable("127.0.0.2", port))
      const others = Object.values(networkInterfaces()).flat()
        .filter((info) => info !== undefined && !info.internal && info.family === "IPv4")
        .map((info) => info!.address)
      for (const other of others) assert.isFalse(yield* reachable(other, port), other)
    }).pipe(Effect.provide(Configured({ PROMETHEUS_BIND: "127.0.0.1:0" }))))

  it.live("while 0.0.0.0, the default host, is reachable on those same addresses", () =>
    Effect.gen(function*() {
      const { host, port } = yield* listening
      assert.strictEqual(host, "0.0.0.0")
      assert.isTrue(yield* reachable("127.0.0.2", port))
    }).pipe(Effect.provide(Configured({ PROMETHEUS_BIND: ":0" }))))
})

describe("credentials in connection strings", () => {
  it.each([
    ["mongodb://user:pw@host:27017/dag", "mongodb://***@host:27017/dag"],
    ["mongodb:user:pw@host/dag", "mongodb:***@host/dag"],
    ["mongodb:/user:pw@host", "mongodb:***@host"],
    ["mongodb://user:p/w@host/dag", "mongodb://***@host/dag"],
    ["mongodb://user:p@w@host/dag", "mongodb://***@host/dag"],
    ["MONGODB+SRV://USER:PW@cluster.example/", "MONGODB+SRV://***@cluster.example/"],
    ["error at mongodb://user:pw@h1:1,h2:2/dag?x=1: refused", "error at mongodb://***@h1:1,h2:2/dag?x=1: refused"],
    ["mongodb://127.0.0.1:27017/dag", "mongodb://127.0.0.1:27017/dag"]
  ])("redactCredentials(%s) hides the user and password, malformed or not", (text, shown) => {
    assert.strictEqual(Settings.redactCredentials(text), shown)
  })
})
