/**
 * The PoH node process: `poh.PohService` over gRPC on `POH_GRPC_BIND` (default
 * `0.0.0.0:50051`), sequencing as `POH_NODE_NAME` (default `poh-1`), with
 * `ObservabilityLive` and its own `/metrics` on `POH_METRICS_BIND` (default
 * `0.0.0.0:8001`, beside the sending DAG's `:8000`). Each call continues the
 * sending DAG's trace. SIGTERM stops taking calls, lets those in flight
 * finish, flushes spans and exits 0. Started by the network's launcher, it
 * tells it where it listens.
 */
import { Effect, Layer } from "effect"
import { Main, MetricsServer, ObservabilityLive, Settings } from "../src/index.ts"
import { Poh } from "../src/dag/index.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import { announce } from "./NodeProcess.ts"

const settings = Settings.read({
  bind: Settings.setting("POH_GRPC_BIND", { host: "0.0.0.0", port: 50051 }, Settings.bind("0.0.0.0:50051")),
  name: Settings.setting("POH_NODE_NAME", "poh-1", {
    expected: "a name of 1 to 64 letters, digits, '.', '_' or '-'",
    parse: (text) => /^[\w.-]{1,64}$/.test(text) ? text : undefined
  })
})

const PohNodeLive = Layer.unwrap(Effect.gen(function*() {
  const { bind, name } = yield* settings
  return PohGrpc.layerServer({ ...bind, setting: "POH_GRPC_BIND" }).pipe(Layer.provide(Poh.layerSequencer(name)))
}))

Effect.gen(function*() {
  const node = yield* PohGrpc.PohNode
  const metrics = yield* MetricsServer.MetricsServer
  yield* Effect.log(`poh-node: gRPC on ${node.address}; metrics at ${metrics.url}; Ctrl-C stops`)
  yield* announce({ grpc: node.address, metrics: metrics.url })
  return yield* Effect.never
}).pipe(
  Effect.provide(PohNodeLive),
  Effect.provide(ObservabilityLive("poh-node", {
    metricsServer: MetricsServer.config("POH_METRICS_BIND", { host: "0.0.0.0", port: 8001 })
  })),
  Main.runMain
)
