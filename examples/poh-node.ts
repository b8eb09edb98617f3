/**
 * A PoH node process: `poh.PohService` over gRPC on `POH_GRPC_BIND` (default
 * `0.0.0.0:50051`), sequencing on its own hash chain as `POH_NODE_NAME`
 * (default `poh-1`) in region `POH_NODE_REGION` (default `eu-central`), with
 * `ObservabilityLive` and its own `/metrics` on `POH_METRICS_BIND` (default
 * `0.0.0.0:8001`, beside the sending DAG's `:8000`). With `PRESENCE_ADDRESS`
 * it announces itself to the Presence service there every
 * `PRESENCE_HEARTBEAT_INTERVAL` (default 1 s) as reachable at
 * `POH_ADVERTISED_ADDRESS` (default: the address it bound, a wildcard host as
 * 127.0.0.1), and leaves when it stops. Each call continues the sending DAG's
 * trace. SIGTERM leaves Presence, stops taking calls, lets those in flight
 * finish, flushes spans and exits 0. Started by the network's launcher, it
 * tells it where it listens.
 */
import { Effect, Layer, Option } from "effect"
import { Main, MetricsServer, ObservabilityLive, Settings } from "../src/index.ts"
import { Poh, Presence } from "../src/dag/index.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import * as PresenceGrpc from "../src/dag/PresenceGrpc.ts"
import { announce, hostPort, reachable } from "./NodeProcess.ts"

const nameSetting = (variable: string, fallback: string) =>
  Settings.setting(variable, fallback, {
    expected: "a name of 1 to 64 letters, digits, '.', '_' or '-'",
    parse: (text) => /^[\w.-]{1,64}$/.test(text) ? text : undefined
  })

const settings = Settings.read({
  bind: Settings.setting("POH_GRPC_BIND", { host: "0.0.0.0", port: 50051 }, Settings.bind("0.0.0.0:50051")),
  name: nameSetting("POH_NODE_NAME", "poh-1"),
  region: nameSetting("POH_NODE_REGION", "eu-central"),
  presence: Settings.optional("PRESENCE_ADDRESS", hostPort("the Presence service")),
  advertised: Settings.optional("POH_ADVERTISED_ADDRESS", hostPort("this node as the sending DAG reaches it")),
  interval: Presence.heartbeatInterval
})

const PohNodeLive = Layer.unwrap(Effect.gen(function*() {
  const { bind, name } = yield* settings
  return PohGrpc.layerServer({ ...bind, setting: "POH_GRPC_BIND" }).pipe(Layer.provide(Poh.layerSequencer(name)))
}))

/** Announces the node to Presence once it listens, when `PRESENCE_ADDRESS` is set. */
const Heartbeat = Layer.unwrap(Effect.gen(function*() {
  const { name, region, presence, advertised, interval } = yield* settings
  const node = yield* PohGrpc.PohNode
  if (Option.isNone(presence)) return Layer.empty
  const address = Option.getOrElse(advertised, () => reachable(node.address))
  return PresenceGrpc.layerHeartbeat({ address: presence.value, node: { id: name, region, address }, interval })
}))

Effect.gen(function*() {
  const node = yield* PohGrpc.PohNode
  const metrics = yield* MetricsServer.MetricsServer
  const { name, region } = yield* settings
  yield* Effect.log(`poh-node ${name} (${region}): gRPC on ${node.address}; metrics at ${metrics.url}; Ctrl-C stops`)
  yield* announce({ grpc: node.address, metrics: metrics.url })
  return yield* Effect.never
}).pipe(
  Effect.provide(Heartbeat.pipe(Layer.provideMerge(PohNodeLive))),
  Effect.provide(ObservabilityLive("poh-node", {
    metricsServer: MetricsServer.config("POH_METRICS_BIND", { host: "0.0.0.0", port: 8001 })
  })),
  Main.runMain
)
