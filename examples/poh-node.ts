/**
 * The PoH node process: `poh.PohService` over gRPC on `POH_GRPC_BIND` (default
 * `0.0.0.0:50051`), sequencing as `POH_NODE_NAME` (default `poh-1`), with
 * `ObservabilityLive` and its own `/metrics` on `PROMETHEUS_BIND` (default
 * `0.0.0.0:8001` for this process, beside the sending DAG's `:8000`). Each call
 * continues the sending DAG's trace. SIGTERM stops taking calls, lets those in
 * flight finish, flushes spans and exits 0.
 */
import { ConfigProvider, Effect, Layer } from "effect"
import { Config, Main, MetricsServer, ObservabilityLive, Poh, PohGrpc } from "../src/index.ts"

const settings = Effect.all({
  bind: Config.variable(
    "POH_GRPC_BIND",
    { host: "0.0.0.0", port: 50051 },
    "host:port with a port from 0 to 65535, such as 0.0.0.0:50051",
    Config.parseBind
  ),
  name: Config.variable(
    "POH_NODE_NAME",
    "poh-1",
    "a name of 1 to 64 letters, digits, '.', '_' or '-'",
    (value) => /^[\w.-]{1,64}$/.test(value) ? value : undefined
  )
})

const PohNodeLive = Layer.unwrap(Effect.gen(function*() {
  const { bind, name } = yield* settings
  return PohGrpc.layerServer(bind).pipe(Layer.provide(Poh.PohSequencer.layer(name)))
}))

/** This process's defaults, used where the environment sets nothing. */
const Defaults = ConfigProvider.layerAdd(ConfigProvider.fromUnknown({ PROMETHEUS_BIND: "0.0.0.0:8001" }))

Effect.gen(function*() {
  const node = yield* PohGrpc.PohNode
  const metrics = yield* MetricsServer.MetricsServer
  yield* Effect.log(`poh-node: gRPC on ${node.address}; metrics at ${metrics.url}; Ctrl-C stops`)
  return yield* Effect.never
}).pipe(
  Effect.provide(PohNodeLive),
  Effect.provide(ObservabilityLive("poh-node")),
  Effect.provide(Defaults),
  Main.runMain
)
