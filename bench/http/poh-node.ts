/**
 * The PoH node of `bench/real.ts`: `poh.PohService` over gRPC on a free loopback port (`PohGrpc.layerServer`, with
 * the library's server interceptor), in one of two set-ups (argv[2]):
 *
 * - `bare`: Effect's tracer off and no OpenTelemetry provider registered, so the interceptor's spans are the
 *   OpenTelemetry API's no-op ones; it still observes `grpc_method_latency_seconds`;
 * - `otlp`: `ObservabilityLive` as examples/poh-node.ts deploys it: each call continues the caller's trace, spans
 *   exported over OTLP gRPC to the collector the environment names, `/metrics` on `PROMETHEUS_BIND`.
 *
 * Prints `{"port":…}` once serving; answers each `report` line on stdin with the calls it served, the spans Effect
 * started in the bare set-up and the exporter's outcomes, as one JSON line (bench/http/child.ts).
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { Poh } from "../../src/dag/index.ts"
import * as PohGrpc from "../../src/dag/PohGrpc.ts"
import { Metrics, ObservabilityLive } from "../../src/index.ts"
import { total } from "../support.ts"
import { exportReport, reporting, tracerOff } from "./child.ts"

const kind = process.argv[2]
if (kind !== "bare" && kind !== "otlp") throw new Error(`usage: poh-node.ts bare|otlp, not ${kind}`)

const bare = tracerOff()

const Serving = reporting(
  Effect.gen(function*() {
    return (yield* PohGrpc.PohNode).port
  }),
  async (registry) => ({
    served: await total(registry, "grpc_method_latency_seconds"),
    effectSpans: bare.started(),
    ...(await exportReport(registry))
  })
).pipe(
  Layer.provideMerge(PohGrpc.layerServer({ host: "127.0.0.1", port: 0 })),
  Layer.provide(Poh.layerSequencer("bench"))
)

NodeRuntime.runMain(Layer.launch(
  kind === "bare"
    ? Serving.pipe(Layer.provide(Metrics.layer), Layer.provide(bare.layer))
    : Serving.pipe(Layer.provide(ObservabilityLive("bench-poh-node")))
))
