/**
 * Per-operation cost of one transaction workflow (Presence → PoH → Storage,
 * in-process PoH, in-memory store, metrics recorded) traced through the
 * OpenTelemetry SDK vs the same workflow untraced. The traced contender's
 * spans go through a real BatchSpanProcessor to an exporter that counts and
 * discards them, so the cost is the library's, not the network's; its span
 * count is checked so it cannot win by doing less.
 *
 * Run: `npm run bench:workflow` (ROUNDS and OPS override the defaults).
 */
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace"
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, ManagedRuntime } from "effect"
import { Metrics, Poh, Presence, Storage, Tracing, Transaction } from "../src/index.ts"

const rounds = Number(process.env["ROUNDS"] ?? 5)
const ops = Number(process.env["OPS"] ?? 20_000)
const spansPerOp = 5

let exportedSpans = 0
const processor = new BatchSpanProcessor({
  exporter: {
    export: (spans, done) => {
      exportedSpans += spans.length
      done({ code: 0 })
    },
    shutdown: () => Promise.resolve()
  },
  maxQueueSize: 65_536,
  maxExportBatchSize: 512,
  scheduledDelayMillis: 200
})

const Workflows = Layer.mergeAll(
  Poh.Poh.layerInProcess("bench"),
  Storage.Storage.layerMemory,
  Presence.Presence.layerStatic({ nodes: [{ id: "n1", region: "eu-central", address: "in-process" }], failureRatio: 0 })
).pipe(Layer.provideMerge(Metrics.Metrics.layerTest))

const traced = ManagedRuntime.make(Workflows.pipe(Layer.provideMerge(
  Tracing.layerProvider(processor, { serviceName: "bench", sampler: new AlwaysOnSampler(), shutdownTimeout: "5 seconds" })
)))
const untraced = ManagedRuntime.make(Workflows)

const tx = new Transaction.Transaction({ from: "alice", to: "bob", amount: 1, region: "eu-central" })
const one = Transaction.commit(tx).pipe(Effect.withSpan("POST /tx", { kind: "server" }))

const loop = (count: number, tracing: boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* one
  }).pipe(Effect.withTracerEnabled(tracing))

const measure = async (runtime: typeof traced | typeof untraced, tracing: boolean): Promise<number> => {
  const started = performance.now()
  await runtime.runPromise(loop(ops, tracing))
  return ((performance.now() - started) * 1000) / ops
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = values.toSorted((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

await measure(untraced, false)
await measure(traced, true)
await processor.forceFlush()
exportedSpans = 0

const results = { untraced: [] as Array<number>, traced: [] as Array<number> }
for (let round = 0; round < rounds; round++) {
  results.untraced.push(await measure(untraced, false))
  results.traced.push(await measure(traced, true))
}
await processor.forceFlush()
await traced.dispose()
await untraced.dispose()

const expected = rounds * ops * spansPerOp
if (exportedSpans !== expected) throw new Error(`traced contender exported ${exportedSpans} spans, expected ${expected}`)

const bare = median(results.untraced)
const full = median(results.traced)
console.log(`node ${process.version}, ${rounds} rounds × ${ops} workflows, alternating; medians`)
console.log(`untraced  ${bare.toFixed(2)} µs/workflow`)
console.log(`traced    ${full.toFixed(2)} µs/workflow  (${spansPerOp} spans each, ${exportedSpans} exported)`)
console.log(`cost      ${(full - bare).toFixed(2)} µs/workflow, ${((full - bare) / spansPerOp).toFixed(2)} µs/span, ratio ${(full / bare).toFixed(2)}×`)
