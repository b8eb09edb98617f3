/**
 * The traced workflow of `bench/workflow.ts` alone, for a CPU profile of this library's tracing path:
 * `node --cpu-prof --cpu-prof-dir=.bench/prof bench/profile-workflow.ts`, then `node bench/profile-top.ts`.
 * OPS, ROUNDS override the defaults; TRACING=0 runs it untraced.
 */
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Metrics, Poh, Presence, Storage, Tracing, Transaction } from "../src/index.ts"
import { countingProcessor, makeTally } from "./support.ts"

const ops = Number(process.env["OPS"] ?? 50_000)
const rounds = Number(process.env["ROUNDS"] ?? 2)
const tracing = process.env["TRACING"] !== "0"

const tally = makeTally()
const processor = countingProcessor(tally)
const Workflows = Layer.mergeAll(
  Poh.Poh.layerInProcess("bench"),
  Storage.Storage.layerMemory,
  Presence.Presence.layerStatic({ nodes: [{ id: "n1", region: "eu-central", address: "in-process" }], failureRatio: 0 })
).pipe(Layer.provideMerge(Metrics.Metrics.layerTest))
const runtime = ManagedRuntime.make(
  tracing
    ? Workflows.pipe(Layer.provideMerge(Tracing.layerProvider(processor, {
      serviceName: "bench",
      sampler: new AlwaysOnSampler(),
      shutdownTimeout: "5 seconds"
    })))
    : Workflows
)
const tx = new Transaction.Transaction({ from: "alice", to: "bob", amount: 1, region: "eu-central" })
const one = Transaction.commit(tx).pipe(Effect.withSpan("POST /tx", { kind: "server" }))

const results: Array<string> = []
for (let round = 0; round < rounds; round++) {
  const started = performance.now()
  await runtime.runPromise(
    Effect.gen(function*() {
      for (let i = 0; i < ops; i++) yield* one
    }).pipe(Effect.withTracerEnabled(tracing))
  )
  results.push((((performance.now() - started) * 1000) / ops).toFixed(2))
}
await processor.forceFlush()
console.log(`${results.join(", ")} µs/workflow; ${tally.total} spans exported`)
await runtime.dispose()
