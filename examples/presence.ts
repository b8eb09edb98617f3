/**
 * The Presence service process: `presence.PresenceService` over gRPC on
 * `PRESENCE_GRPC_BIND` (default `0.0.0.0:50050`): PoH nodes announce
 * themselves with heartbeats and are online until `PRESENCE_TTL` (default 5 s)
 * after the last one; the sending DAG asks it who is online in a region.
 * `ObservabilityLive` with its own `/metrics` on `PRESENCE_METRICS_BIND`
 * (default `0.0.0.0:8010`): `presence_online_nodes{region}` for every region a
 * node has announced (`DAG_REGIONS` bounds the label), and the gRPC latency
 * of every call. Each look-up continues the sending DAG's trace. SIGTERM
 * stops taking calls, lets those in flight finish, flushes spans and exits 0.
 * Started by the network's launcher, it tells it where it listens.
 */
import { Effect, Layer } from "effect"
import { Main, MetricsServer, ObservabilityLive, Settings } from "../src/index.ts"
import { DagMetrics, Presence } from "../src/dag/index.ts"
import * as PresenceGrpc from "../src/dag/PresenceGrpc.ts"
import { announce } from "./NodeProcess.ts"

const settings = Settings.read({
  bind: Settings.setting("PRESENCE_GRPC_BIND", { host: "0.0.0.0", port: 50050 }, Settings.bind("0.0.0.0:50050")),
  ttl: Presence.ttl,
  regions: DagMetrics.regions
})

const PresenceLive = Layer.unwrap(Effect.gen(function*() {
  const { bind, ttl, regions } = yield* settings
  return PresenceGrpc.layerServer({ ...bind, ttl, regions: [], setting: "PRESENCE_GRPC_BIND" }).pipe(
    Layer.provide(DagMetrics.layer({ regions }))
  )
}))

Effect.gen(function*() {
  const presence = yield* PresenceGrpc.PresenceServer
  const metrics = yield* MetricsServer.MetricsServer
  yield* Effect.log(
    `presence: gRPC on ${presence.address}, nodes online for ${presence.directory.ttlMillis} ms after a heartbeat; ` +
      `metrics at ${metrics.url}; Ctrl-C stops`
  )
  yield* announce({ grpc: presence.address, metrics: metrics.url })
  return yield* Effect.never
}).pipe(
  Effect.provide(PresenceLive),
  Effect.provide(ObservabilityLive("presence", {
    metricsServer: MetricsServer.config("PRESENCE_METRICS_BIND", { host: "0.0.0.0", port: 8010 })
  })),
  Main.runMain
)
