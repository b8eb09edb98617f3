/**
 * PoH across several nodes over gRPC: a request goes to an online node of its region, in turn; on PohUnavailable it
 * fails over to the next, each attempt its own client span under `Poh.request` naming its node; a region without
 * nodes goes to another region's, counted as `cross_region`; the `node` label keeps known ids, else `other`.
 */
import { assert, describe, it } from "@effect/vitest"
import { SpanKind } from "@opentelemetry/api"
import { Context, Effect, Layer } from "effect"
import { DagMetrics, Poh, type Presence } from "../src/dag/index.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import { ObservabilityTest, Testing } from "../src/index.ts"
import { stoppedNode } from "./support/PohNetwork.ts"

/** A PoH node named `id` on a free loopback port, stopped with the scope. */
const node = (id: string, region: string) =>
  Effect.map(
    Layer.build(PohGrpc.layerServer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provide(Poh.layerSequencer(id)))),
    (built): Presence.PresenceNode => ({ id, region, address: Context.get(built, PohGrpc.PohNode).address })
  )

const Sender = Poh.layer().pipe(
  Layer.provide(PohGrpc.layerClient()),
  Layer.provideMerge(DagMetrics.layer({ regions: DagMetrics.defaultRegions, nodes: ["poh-a", "poh-b", "poh-c"] })),
  Layer.provideMerge(ObservabilityTest)
)

const request = (online: Presence.Online, txId = "tx-1") =>
  Poh.Poh.use((poh) => poh.request({ txId, region: "eu-central", online }))

const requests = (labels: Record<string, string>) => Testing.metricValue("poh_requests_total", labels)

describe("PoH failover across nodes", () => {
  it.live("a node down: the request fails over to the next, one client span per attempt naming its node", () =>
    Effect.gen(function*() {
      const alive = yield* node("poh-b", "eu-central")
      const dead = { id: "poh-a", region: "eu-central", address: yield* stoppedNode }
      // Two requests, so that one of them starts with the node that is down, whichever turn comes first.
      const acks = [yield* request({ nodes: [dead, alive], elsewhere: [] }, "tx-1"), yield* request({ nodes: [dead, alive], elsewhere: [] }, "tx-2")]
      assert.deepStrictEqual(acks.map((ack) => ack.node), ["poh-b", "poh-b"])
      const spans = yield* Testing.finishedSpans
      const requestSpans = spans.filter((span) => span.name === "Poh.request")
      const failedOver = requestSpans.find((span) => span.attributes["dag.poh.attempts"] === 2)
      assert.isDefined(failedOver, "one request tried the node that is down first")
      const attempts = spans
        .filter((span) => span.kind === SpanKind.CLIENT && span.parentSpanContext?.spanId === failedOver!.spanContext().spanId)
        .map((span) => [span.attributes["dag.poh.node"], span.attributes["rpc.grpc.status_code"], span.attributes["server.port"]])
      assert.deepStrictEqual(attempts, [
        ["poh-a", 14, Number(dead.address.split(":")[1])],
        ["poh-b", 0, Number(alive.address.split(":")[1])]
      ])
      assert.deepInclude(failedOver!.attributes, { "dag.poh.node": "poh-b", "dag.poh.placement": "local" })
      assert.strictEqual(yield* requests({ node: "poh-a", status: "error", placement: "local" }), 1)
      assert.strictEqual(yield* requests({ node: "poh-b", status: "ok", placement: "local" }), 2)
      assert.strictEqual(yield* Testing.metricValue("poh_approval_latency_seconds_count", { node: "poh-b" }), 2)
      assert.strictEqual(yield* Testing.metricValue("poh_ack_total", { node: "poh-b" }), 2)
    }).pipe(Effect.scoped, Effect.provide(Sender)))

  it.live("the nodes of a region take turns: 8 requests over 2 nodes are 4 each, each on its own chain", () =>
    Effect.gen(function*() {
      const online = { nodes: [yield* node("poh-a", "eu-central"), yield* node("poh-b", "eu-central")], elsewhere: [] }
      const acks = yield* Effect.forEach(Array.from({ length: 8 }, (_, i) => `tx-${i}`), (id) => request(online, id))
      const byNode = Object.groupBy(acks, (ack) => ack.node)
      assert.deepStrictEqual(Object.keys(byNode).toSorted(), ["poh-a", "poh-b"])
      for (const chain of Object.values(byNode)) assert.deepStrictEqual(chain!.map((ack) => ack.seq), [1, 2, 3, 4])
    }).pipe(Effect.scoped, Effect.provide(Sender)))

  it.live("no node online in the region: another region's, counted cross_region and said on the span", () =>
    Effect.gen(function*() {
      const away = yield* node("poh-c", "us-east")
      const ack = yield* request({ nodes: [], elsewhere: [away] })
      assert.strictEqual(ack.node, "poh-c")
      assert.strictEqual(yield* requests({ region: "eu-central", node: "poh-c", placement: "cross_region", status: "ok" }), 1)
      const span = (yield* Testing.finishedSpans).find((candidate) => candidate.name === "Poh.request")
      assert.deepInclude(span?.attributes, { "dag.poh.placement": "cross_region", "dag.poh.node": "poh-c" })
    }).pipe(Effect.scoped, Effect.provide(Sender)))

  it.live("a node id outside DAG_NODES is labelled other; none online and no default node is PohUnavailable", () =>
    Effect.gen(function*() {
      const stranger = yield* node("poh-zz", "eu-central")
      yield* request({ nodes: [stranger], elsewhere: [] })
      assert.strictEqual(yield* requests({ node: "other", status: "ok" }), 1)
      assert.strictEqual(yield* requests({ node: "poh-zz" }), 0)
      const error = yield* Effect.flip(request({ nodes: [], elsewhere: [] }))
      assert.strictEqual(error._tag, "PohUnavailable")
      assert.include(error.message, "no PoH node online")
      assert.strictEqual(yield* requests({ status: "error", placement: "default" }), 3, "each attempt counted")
    }).pipe(Effect.scoped, Effect.provide(Sender)))
})
