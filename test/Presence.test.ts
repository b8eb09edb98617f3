/**
 * Presence: the service's table (heartbeats, TTL, leaving), the service over gRPC as the sending DAG and a PoH node
 * use it (a look-up is one client and one server span under `Presence.onlineNodes`, heartbeats are not traced), and
 * the sending DAG's side when the service is down or slow: counted failures with their own `error.type`, the
 * region's last answer for a bounded time, then the failure.
 */
import { createServer, type Server } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { AlwaysOnSampler, ParentBasedSampler, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Context, type Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { TestClock } from "effect/testing"
import { DagMetrics, Presence } from "../src/dag/index.ts"
import * as PresenceGrpc from "../src/dag/PresenceGrpc.ts"
import { Metrics, ObservabilityTest, Testing, Tracing } from "../src/index.ts"

const poh1 = { id: "poh-1", region: "eu-central", address: "127.0.0.1:50051" }
const poh2 = { id: "poh-2", region: "us-east", address: "127.0.0.1:50052" }
const poh3 = { id: "poh-3", region: "eu-central", address: "127.0.0.1:50053" }

const DagTest = DagMetrics.layer().pipe(Layer.provideMerge(ObservabilityTest))

/** A Presence service on a free loopback port, closed with the scope; its address and table. */
const service = (ttl: Duration.Input = "5 seconds") =>
  Effect.map(
    Layer.build(PresenceGrpc.layerServer({ host: "127.0.0.1", port: 0, ttl })),
    (built) => Context.get(built, PresenceGrpc.PresenceServer)
  )

/** The sending DAG's Presence over gRPC to `address`, as a service of its own. */
const lookups = (address: string, options: Partial<PresenceGrpc.ClientOptions> = {}) =>
  Effect.map(
    Layer.build(PresenceGrpc.layerClient({ address, ...options })),
    (built) => Context.get(built, Presence.Presence)
  )

/** A TCP port that accepts connections and never answers: a Presence service that hangs. */
const hung = Effect.acquireRelease(
  Effect.callback<{ server: Server; port: number }>((resume) => {
    const server = createServer(() => undefined)
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, port: (server.address() as { port: number }).port })))
  }),
  ({ server }) => Effect.sync(() => server.close())
)

const presenceCalls = (outcome: string) => Testing.metricValue("presence_calls_total", { outcome })

const named = (spans: ReadonlyArray<ReadableSpan>, name: string) => spans.filter((span) => span.name === name)

describe("Presence.makeDirectory", () => {
  it.effect("a node is online until the TTL after its last heartbeat, back with the next one, gone when it leaves", () =>
    Effect.gen(function*() {
      const directory = yield* Presence.makeDirectory("5 seconds")
      assert.isTrue(yield* directory.announce(poh1))
      assert.isTrue(yield* directory.announce(poh2))
      assert.isTrue(yield* directory.announce(poh3))
      assert.deepStrictEqual(yield* directory.online("eu-central"), { nodes: [poh1, poh3], elsewhere: [poh2] })
      yield* TestClock.adjust("4 seconds")
      assert.isFalse(yield* directory.announce(poh1), "a heartbeat of a node online is no news")
      yield* TestClock.adjust("1001 millis")
      assert.deepStrictEqual(yield* directory.online("eu-central"), { nodes: [poh1], elsewhere: [] })
      assert.deepStrictEqual(yield* directory.expire, [poh2, poh3])
      assert.isTrue(yield* directory.announce(poh3), "back with its next heartbeat")
      assert.isTrue(yield* directory.leave("poh-1"))
      assert.isFalse(yield* directory.leave("poh-1"))
      assert.deepStrictEqual(yield* directory.online("us-east"), { nodes: [], elsewhere: [poh3] })
    }))
})

describe("Presence over gRPC", () => {
  it.live("a look-up crosses processes: Presence.onlineNodes → OnlineNodes client → server, counted", () =>
    Effect.gen(function*() {
      const server = yield* service()
      yield* server.directory.announce(poh1)
      yield* server.directory.announce(poh2)
      const presence = yield* lookups(server.address)
      const online = yield* presence.onlineNodes("eu-central").pipe(Effect.withSpan("POST /tx"))
      assert.deepStrictEqual(online, { nodes: [poh1], elsewhere: [poh2] })
      const spans = yield* Testing.finishedSpans
      assert.deepStrictEqual(Testing.formatTree(Testing.spanTree(spans)), [
        "POST /tx",
        "  Presence.onlineNodes",
        "    presence.PresenceService/OnlineNodes",
        "      presence.PresenceService/OnlineNodes"
      ])
      const [client, serverSpan] = named(spans, "presence.PresenceService/OnlineNodes").toSorted((a, b) => b.kind - a.kind)
      assert.strictEqual(client?.kind, SpanKind.CLIENT)
      assert.strictEqual(serverSpan?.kind, SpanKind.SERVER)
      assert.strictEqual(serverSpan?.parentSpanContext?.spanId, client?.spanContext().spanId)
      const lookup = named(spans, "Presence.onlineNodes")[0]!
      assert.deepInclude(lookup.attributes, { "dag.region": "eu-central", "dag.presence.online": 1, "dag.presence.elsewhere": 1 })
      assert.strictEqual(yield* presenceCalls("success"), 1)
      const served = { service: "presence.PresenceService", method: "OnlineNodes", code: "OK" }
      assert.strictEqual(yield* Testing.metricValue("grpc_method_latency_seconds_count", served), 1)
    }).pipe(Effect.scoped, Effect.provide(DagTest)))

  it.live("a heartbeat makes a node online at once and counts it per region; leaving makes it offline at once", () =>
    Effect.gen(function*() {
      const server = yield* service()
      const scope = yield* Scope.make()
      const presence = yield* lookups(server.address)
      yield* Layer.buildWithScope(PresenceGrpc.layerHeartbeat({ address: server.address, node: poh2, interval: "50 millis" }), scope)
      const warming = yield* Effect.flip(presence.onlineNodes("us-east"))
      assert.include(warming.message, "has heard from no node yet", "a fresh Presence that has heard from nobody")
      yield* Effect.repeat(server.directory.all, { until: (nodes) => nodes.length > 0, schedule: Schedule.spaced("10 millis") })
      assert.deepStrictEqual((yield* presence.onlineNodes("us-east")).nodes, [poh2])
      assert.strictEqual(yield* Testing.metricValue("presence_online_nodes", { region: "us-east" }), 1)
      yield* Scope.close(scope, Exit.void)
      assert.deepStrictEqual((yield* presence.onlineNodes("us-east")).nodes, [], "offline once it left, not after the TTL")
      assert.strictEqual(yield* Testing.metricValue("presence_online_nodes", { region: "us-east" }), 0)
      const announced = { service: "presence.PresenceService", method: "Announce", code: "OK" }
      assert.isAtLeast(yield* Testing.metricValue("grpc_client_latency_seconds_count", announced), 1)
    }).pipe(Effect.scoped, Effect.provide(DagTest)))

  it.live("heartbeats are timed but, under a parent-based sampler, not traced; look-ups are", () =>
    Effect.gen(function*() {
      const server = yield* service()
      yield* Layer.build(PresenceGrpc.layerHeartbeat({ address: server.address, node: poh1, interval: "20 millis" }))
      const presence = yield* lookups(server.address)
      yield* Effect.sleep("200 millis")
      yield* presence.onlineNodes("eu-central")
      const names = recorded.map((span) => `${span.name} ${SpanKind[span.kind]}`).toSorted()
      assert.deepStrictEqual(names, [
        "Presence.onlineNodes INTERNAL",
        "presence.PresenceService/OnlineNodes CLIENT",
        "presence.PresenceService/OnlineNodes SERVER"
      ])
      const announced = { service: "presence.PresenceService", method: "Announce", code: "OK" }
      assert.isAtLeast(yield* Testing.metricValue("grpc_method_latency_seconds_count", announced), 3)
    }).pipe(Effect.scoped, Effect.provide(ParentBased)))

  it.live("Presence down: PresenceUnavailable counted; the last answer serves for its bound, then the failure", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const built = yield* Layer.buildWithScope(PresenceGrpc.layerServer({ host: "127.0.0.1", port: 0 }), scope)
      const server = Context.get(built, PresenceGrpc.PresenceServer)
      yield* server.directory.announce(poh1)
      const presence = yield* lookups(server.address, { lastAnswerFor: "300 millis" })
      const fresh = yield* presence.onlineNodes("eu-central")
      yield* Scope.close(scope, Exit.void)
      const stale = yield* presence.onlineNodes("eu-central")
      assert.deepStrictEqual(stale, fresh, "the last answer while Presence is down")
      yield* Effect.sleep("400 millis")
      const error = yield* Effect.flip(presence.onlineNodes("eu-central"))
      assert.strictEqual(error._tag, "PresenceUnavailable")
      assert.include(error.message, "UNAVAILABLE")
      const never = yield* Effect.flip(presence.onlineNodes("us-east"))
      assert.strictEqual(never._tag, "PresenceUnavailable", "no last answer for a region never answered")
      assert.strictEqual(yield* presenceCalls("success"), 1)
      assert.strictEqual(yield* presenceCalls("failure"), 3)
      const lookupSpans = named(yield* Testing.finishedSpans, "Presence.onlineNodes")
      assert.deepInclude(lookupSpans[1]!.attributes, { "dag.presence.stale": true, "error.type": "PresenceUnavailable" })
      assert.strictEqual(lookupSpans[1]!.status.code, SpanStatusCode.OK, "answered, from the last answer")
      for (const span of lookupSpans.slice(2)) {
        assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(span.attributes["error.type"], "PresenceUnavailable")
      }
    }).pipe(Effect.scoped, Effect.provide(DagTest)))

  it.live("Presence slow: PresenceTimeout after the look-up timeout, its own error.type", () =>
    Effect.gen(function*() {
      const { port } = yield* hung
      const presence = yield* lookups(`127.0.0.1:${port}`, { timeout: "200 millis" })
      const started = Date.now()
      const error = yield* Effect.flip(presence.onlineNodes("eu-central"))
      assert.strictEqual(error._tag, "PresenceTimeout")
      assert.isBelow(Date.now() - started, 1_500)
      const [span] = named(yield* Testing.finishedSpans, "Presence.onlineNodes")
      assert.strictEqual(span?.attributes["error.type"], "PresenceTimeout")
      assert.strictEqual(yield* presenceCalls("failure"), 1)
    }).pipe(Effect.scoped, Effect.provide(DagTest)))
})

/** Spans of a provider sampling as deployed (`parentbased_always_on`), kept here. */
const recorded: Array<ReadableSpan> = []

const ParentBased = DagMetrics.layer().pipe(
  Layer.provideMerge(Layer.merge(
    Tracing.layerProvider({
      onStart: () => undefined,
      onEnd: (span) => void recorded.push(span),
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve()
    }, { resource: { serviceName: "test" }, sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), shutdownTimeout: 0 }),
    Metrics.layerTest
  ))
)
