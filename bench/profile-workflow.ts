/**
 * The traced workflow of `bench/workflow.ts` alone, for a CPU profile of this library's tracing path:
 * `node --cpu-prof --cpu-prof-dir=.bench/prof bench/profile-workflow.ts`, then `node bench/profile-top.ts`.
 * OPS, ROUNDS override the defaults; TRACING=0 runs it untraced.
 */
import { Effect, Layer, ManagedRuntime } from "effect"
import { commits, tracing, workflowsLayer } from "./commit.ts"
import { countingProcessor, makeTally } from "./support.ts"

const ops = Number(process.env["OPS"] ?? 50_000)
const rounds = Number(process.env["ROUNDS"] ?? 2)
const traceOn = process.env["TRACING"] !== "0"

const tally = makeTally()
const processor = countingProcessor(tally)
const runtime = ManagedRuntime.make(
  traceOn ? workflowsLayer().pipe(Layer.provideMerge(tracing(processor))) : workflowsLayer()
)

const results: Array<string> = []
for (let round = 0; round < rounds; round++) {
  const started = performance.now()
  await runtime.runPromise(commits(ops).pipe(Effect.withTracerEnabled(traceOn)))
  results.push((((performance.now() - started) * 1000) / ops).toFixed(2))
}
await processor.forceFlush()
console.log(`${results.join(", ")} µs/workflow; ${tally.total} spans exported`)
await runtime.dispose()
