/**
 * PoH over gRPC: one transaction is one trace across the sending DAG and the PoH node, every call is timed on both
 * sides, failures (node down, timeout, deadline, shutdown) are counted and traced as what they are, and retries are
 * counted once per attempt.
 */
import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { Clock, Context, Effect, Exit, Fiber, Layer, Schedule, Scope } from "effect"
import { Poh } from "../src/dag/index.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import {
  byKind,
  DagTest,
  finished,
  Network,
  Node,
  rawCall,
  rawClient,
  Sender,
  service,
  settled,
  stoppedNode,
  tracedClient
} from "./support/PohNetwork.ts"

describe("PoH over gRPC", () => {
  it.live("one request is one trace: Poh.request → client call → server call → Poh.sequence", () =>
    Effect.gen(function*() {
      const node = yield* PohGrpc.PohNode
      const poh = yield* Poh.Poh
      const ack = yield* poh.request({ txId: "tx-1", region: "eu-central" })
      assert.strictEqual(ack.seq, 1)
      assert.strictEqual(ack.node, "poh-test")
      assert.match(ack.hash, /^[0-9a-f]{64}$/)
      const spans = yield* finished
      assert.deepStrictEqual(Testing.formatTree(Testing.spanTree(spans)), [
        "Poh.request",
        "  poh.PohService/Request",
        "    poh.PohService/Request",
        "      Poh.sequence"
      ])
      assert.strictEqual(new Set(spans.map((span) => span.spanContext().traceId)).size, 1)
      const [client] = byKind(spans, SpanKind.CLIENT)
      const [server] = byKind(spans, SpanKind.SERVER)
      assert.strictEqual(byKind(spans, SpanKind.CLIENT).length, 1)
      assert.strictEqual(byKind(spans, SpanKind.SERVER).length, 1)
      for (const span of [client!, server!]) {
        assert.strictEqual(span.name, "poh.PohService/Request")
        assert.deepInclude(span.attributes, {
          "rpc.system": "grpc",
          "rpc.service": "poh.PohService",
          "rpc.method": "Request",
          "rpc.grpc.status_code": 0,
          "server.address": "127.0.0.1",
          "server.port": node.port
        })
        assert.strictEqual(span.status.code, SpanStatusCode.UNSET)
      }
      // The server continued the trace it read from the metadata, not a context of its own process.
      assert.strictEqual(server!.parentSpanContext?.spanId, client!.spanContext().spanId)
      assert.isTrue(server!.parentSpanContext?.isRemote)
      const value = Testing.metricValue
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count", { ...service, code: "OK" }), 1)
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), 1)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", { ...service, code: "OK" }), 1)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count"), 1)
      assert.strictEqual(yield* value("poh_requests_total", { region: "eu-central", status: "ok" }), 1)
      assert.strictEqual(yield* value("poh_requests_total"), 1)
      assert.strictEqual(yield* value("poh_ack_total", { region: "eu-central" }), 1)
      const text = yield* Metrics.Metrics.use((metrics) => metrics.render("openmetrics"))
      const exemplars = [["grpc_method_latency_seconds", server!], ["grpc_client_latency_seconds", client!]] as const
      for (const [family, span] of exemplars) {
        const exemplar = `# {trace_id="${span.spanContext().traceId}",span_id="${span.spanContext().spanId}"}`
        assert.isTrue(
          text.split("\n").some((line) => line.startsWith(`${family}_bucket{`) && line.includes(exemplar)),
          `${family} has the ${span.kind === SpanKind.SERVER ? "server" : "client"} span as exemplar`
        )
      }
    }).pipe(Effect.provide(Network())))

  it.live("a malformed traceparent starts a new trace at the server and the call still succeeds", () =>
    Effect.gen(function*() {
      // Bound inside a span: the server's own async context must not become the parent of a call.
      const built = yield* Layer.build(Node()).pipe(Effect.withSpan("startup"))
      const { address } = Context.get(built, PohGrpc.PohNode)
      const client = yield* rawClient(address)
      const metadata = new grpc.Metadata()
      metadata.set("traceparent", "00-not-a-trace-id-01")
      metadata.set("tracestate", "=;=")
      const { response, caller } = yield* Effect.gen(function*() {
        const span = yield* Effect.currentSpan
        return { response: yield* rawCall(client, { txId: "tx-1", region: "eu-central" }, metadata), caller: span }
      }).pipe(Effect.withSpan("caller"))
      assert.strictEqual(response["seq"], 1)
      const spans = yield* finished
      const [server] = byKind(spans, SpanKind.SERVER)
      assert.isDefined(server)
      assert.isUndefined(server!.parentSpanContext)
      assert.match(server!.spanContext().traceId, /^(?!0{32})[0-9a-f]{32}$/)
      assert.notStrictEqual(server!.spanContext().traceId, caller.traceId)
      const sequence = spans.find((span) => span.name === "Poh.sequence")
      assert.strictEqual(sequence?.parentSpanContext?.spanId, server!.spanContext().spanId)
      assert.strictEqual(sequence?.spanContext().traceId, server!.spanContext().traceId)
      assert.strictEqual(yield* Testing.metricValue("grpc_method_latency_seconds_count", { code: "OK" }), 1)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("invalid request fields are answered INVALID_ARGUMENT without reaching the sequencer", () =>
    Effect.gen(function*() {
      const { address } = yield* PohGrpc.PohNode
      const client = yield* tracedClient(address)
      const invalid = [
        { txId: "", region: "eu-central" },
        { txId: "tx-1", region: "" },
        { region: "eu-central" },
        { txId: "x".repeat(129), region: "eu-central" },
        { txId: "tx-1", region: "r".repeat(100_000) }
      ]
      for (const request of invalid) {
        const error = yield* Effect.flip(rawCall(client, request))
        assert.strictEqual(error.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(request).slice(0, 80))
        assert.isAtMost(error.details.length, 256)
      }
      const value = Testing.metricValue
      const n = invalid.length
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count", { ...service, code: "INVALID_ARGUMENT" }), n)
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), n)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", { ...service, code: "INVALID_ARGUMENT" }), n)
      const spans = yield* finished
      assert.isFalse(spans.some((span) => span.name === "Poh.sequence"))
      const servers = byKind(spans, SpanKind.SERVER)
      assert.strictEqual(servers.length, n)
      for (const span of servers) {
        assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(span.attributes["rpc.grpc.status_code"], grpc.status.INVALID_ARGUMENT)
        assert.strictEqual(span.attributes["error.type"], "INVALID_ARGUMENT")
      }
      // A valid request still goes through.
      assert.strictEqual((yield* rawCall(client, { txId: "tx-1", region: "eu-central" }))["seq"], 1)
    }).pipe(Effect.scoped, Effect.provide(Network())))

  it.live.each([
    ["the default policy", 3, undefined],
    ["no retries", 1, Schedule.recurs(0)],
    ["4 retries", 5, Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 4 }))]
  ] as const)("with the node down, PohUnavailable after %s: %s attempts, each counted", ([, attempts, retry]) =>
    Effect.gen(function*() {
      const address = yield* stoppedNode
      const error = yield* Effect.flip(
        Poh.Poh.use((poh) => poh.request({ txId: "tx-1", region: "us-east" })).pipe(
          Effect.provide(Sender(retry === undefined ? {} : { retry }, address))
        )
      )
      assert.strictEqual(error._tag, "PohUnavailable")
      assert.include(error.message, "UNAVAILABLE")
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "us-east", status: "error" }), attempts)
      assert.strictEqual(yield* value("poh_requests_total"), attempts)
      assert.strictEqual(yield* value("poh_ack_total"), 0)
      const unavailable = { ...service, code: "UNAVAILABLE" }
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", unavailable), attempts)
      const spans = yield* finished
      assert.deepStrictEqual(
        Testing.formatTree(Testing.spanTree(spans)),
        ["Poh.request", ...Array.from({ length: attempts }, () => "  poh.PohService/Request")]
      )
      const request = spans.find((span) => span.name === "Poh.request")
      assert.strictEqual(request?.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(request?.attributes["error.type"], "PohUnavailable")
      for (const span of byKind(spans, SpanKind.CLIENT)) {
        assert.strictEqual(span.attributes["error.type"], "UNAVAILABLE")
        assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
      }
    }).pipe(Effect.provide(DagTest)))

  it.live("a node slower than the timeout gives PohTimeout, counted once as timeout, and cancels the call", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Poh.Poh.use((poh) => poh.request({ txId: "tx-slow", region: "ap-south" }))
      )
      assert.strictEqual(error._tag, "PohTimeout")
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "ap-south", status: "timeout" }), 1)
      assert.strictEqual(yield* value("poh_requests_total"), 1)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", { ...service, code: "CANCELLED" }), 1)
      const cancelled = { ...service, code: "CANCELLED" }
      assert.strictEqual(
        yield* settled(value("grpc_method_latency_seconds_count", cancelled), (count) => count > 0),
        1
      )
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), 1)
      // The client's cancel reached the handler: its fiber was interrupted well before the sequencer answered.
      const slow = yield* settled(
        Effect.map(finished, (spans) => spans.find((span) => span.name === "slow")),
        (span) => span !== undefined
      )
      assert.strictEqual(slow?.attributes["effect.fiber.interrupted"], true)
      assert.isBelow(slow!.duration[0] * 1000 + slow!.duration[1] / 1e6, 900)
    }).pipe(Effect.provide(Network({ timeout: "100 millis" }, Node({ delay: 1000 })))))

  it.live("a call past its deadline is DEADLINE_EXCEEDED on both sides", () =>
    Effect.gen(function*() {
      const { address } = yield* PohGrpc.PohNode
      const client = yield* tracedClient(address)
      const request = { txId: "tx-1", region: "eu-central" }
      const error = yield* Effect.flip(rawCall(client, request, new grpc.Metadata(), 100))
      assert.strictEqual(error.code, grpc.status.DEADLINE_EXCEEDED)
      const value = Testing.metricValue
      const expired = { ...service, code: "DEADLINE_EXCEEDED" }
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", expired), 1)
      assert.strictEqual(yield* settled(value("grpc_method_latency_seconds_count", expired), (n) => n > 0), 1)
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), 1)
      const [server] = byKind(yield* finished, SpanKind.SERVER)
      assert.strictEqual(server?.attributes["rpc.grpc.status_code"], grpc.status.DEADLINE_EXCEEDED)
    }).pipe(Effect.scoped, Effect.provide(Network({}, Node({ delay: 1000 })))))

  it.live("release waits for a call in flight, then refuses new ones", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { address } = Context.get(yield* Layer.buildWithScope(Node({ delay: 300 }), scope), PohGrpc.PohNode)
      const client = yield* rawClient(address)
      const inFlight = yield* Effect.forkChild(
        rawCall(client, { txId: "tx-1", region: "eu-central" }).pipe(Effect.andThen(Clock.currentTimeMillis))
      )
      yield* Effect.sleep("100 millis")
      yield* Scope.close(scope, Exit.void)
      const closedAt = yield* Clock.currentTimeMillis
      const answeredAt = yield* Fiber.join(inFlight)
      assert.isAtMost(answeredAt, closedAt)
      const refused = yield* Effect.flip(rawCall(client, { txId: "tx-2", region: "eu-central" }))
      assert.strictEqual(refused.code, grpc.status.UNAVAILABLE)
      assert.strictEqual(yield* Testing.metricValue("grpc_method_latency_seconds_count", { code: "OK" }), 1)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("a call outliving the shutdown timeout is cancelled and release ends in time", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const built = yield* Layer.buildWithScope(Node({ delay: 5000, shutdownTimeout: "200 millis" }), scope)
      const client = yield* rawClient(Context.get(built, PohGrpc.PohNode).address)
      const inFlight = yield* Effect.forkChild(Effect.flip(rawCall(client, { txId: "tx-1", region: "eu-central" })))
      yield* Effect.sleep("100 millis")
      const started = yield* Clock.currentTimeMillis
      yield* Scope.close(scope, Exit.void)
      assert.isBelow((yield* Clock.currentTimeMillis) - started, 1000)
      const error = yield* Fiber.join(inFlight)
      assert.oneOf(error.code, [grpc.status.CANCELLED, grpc.status.UNAVAILABLE])
      assert.strictEqual(
        yield* settled(Testing.metricValue("grpc_method_latency_seconds_count", { code: "CANCELLED" }), (n) => n > 0),
        1
      )
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))
})

describe("Poh.layer retries", () => {
  it.live("an attempt that fails then one that is acknowledged count error once and ok once", () =>
    Effect.gen(function*() {
      const ack = yield* Poh.Poh.use((poh) => poh.request({ txId: "tx-1", region: "eu-west-9" }))
      assert.strictEqual(ack.seq, 1)
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "other", status: "error" }), 1)
      assert.strictEqual(yield* value("poh_requests_total", { region: "other", status: "ok" }), 1)
      assert.strictEqual(yield* value("poh_ack_total"), 1)
      assert.strictEqual(yield* value("poh_approval_latency_seconds_count"), 1)
      // The approval latency runs from the first attempt: it includes the 50 ms backoff.
      assert.isAtLeast(yield* value("poh_approval_latency_seconds_sum"), 0.05)
    }).pipe(Effect.provide(Layer.unwrap(Effect.sync(() => {
      let attempts = 0
      const flaky = Layer.effect(
        Poh.PohClient,
        Effect.gen(function*() {
          const sequencer = yield* Poh.PohSequencer
          return Poh.PohClient.of({
            stamp: (request) =>
              Effect.suspend(() =>
                attempts++ === 0
                  ? Effect.fail(new Poh.PohUnavailable({ region: request.region, reason: "UNAVAILABLE: first" }))
                  : sequencer.sequence(request.txId)
              )
          })
        })
      ).pipe(Layer.provide(Poh.layerSequencer("poh-test")))
      return Poh.layer().pipe(Layer.provide(flaky), Layer.provideMerge(DagTest))
    })))))
})

