/**
 * Memory soak (issue 7, item 6): 1 000 000 traced workflows in one process, heap and RSS sampled; the goal is flat
 * after warm-up (< 5 % growth).
 *
 * The workflow is `effect + ours` of bench/workflow.ts (bench/commit.ts): `Transaction.commit` under a `POST /tx`
 * server span, 5 spans through `Tracing.layerProvider` into a `BatchSpanProcessor` whose exporter counts and
 * discards, 6 metric updates. The store is the bench's own and keeps only the last KEEP transactions:
 * `Storage.layerMemory` keeps every transaction by design, and would be the growth measured. Workflows run back to
 * back; every EVERY workflows the span queue is flushed (it holds up to 65 536 spans, bounded), heap used and RSS
 * are read, then read again after a full garbage collection (`global.gc`, hence `--expose-gc`). Growth is from the
 * sample at the end of warm-up (the first WARMUP share of the run) to the last one; the slope is the least-squares
 * fit of heap after GC over the samples after warm-up. At the end every span and metric update is counted.
 *
 * Run: `npm run bench:soak` (`node --expose-gc bench/soak.ts`; WORKFLOWS, EVERY, WARMUP (share), KEEP override the
 * defaults).
 */
import { Effect, Layer, ManagedRuntime, Option } from "effect"
import { DagMetrics, Storage } from "../src/dag/index.ts"
import { checkMetrics, checkSpans, commits, registry, tracing, workflowsLayer } from "./commit.ts"
import { countingProcessor, describeTally, machine, makeTally } from "./support.ts"

const workflows = Number(process.env["WORKFLOWS"] ?? 1_000_000)
const every = Number(process.env["EVERY"] ?? 50_000)
const warmup = Number(process.env["WARMUP"] ?? 0.2)
const keep = Number(process.env["KEEP"] ?? 1_000)
const goal = 5

const gc = globalThis.gc
if (gc === undefined) throw new Error("run with node --expose-gc (npm run bench:soak does)")

/** A store of the last `keep` transactions that, like `Storage.layerMemory`, times its writes. */
const windowStore = Layer.effect(
  Storage.Storage,
  Effect.flatMap(DagMetrics.DagMetrics, (metrics) => {
    const rows = new Map<string, Storage.StoredTransaction>()
    return Storage.make({
      persist: (tx) =>
        Effect.suspend(() => {
          const started = performance.now()
          rows.set(tx.id, tx)
          if (rows.size > keep) rows.delete(rows.keys().next().value!)
          return metrics.recordStorageLatency((performance.now() - started) / 1e3).pipe(
            Effect.as({ stored: tx, alreadyStored: false })
          )
        }),
      find: (id) => Effect.sync(() => Option.fromUndefinedOr(rows.get(id)))
    })
  })
)

const tally = makeTally()
const processor = countingProcessor(tally)
const runtime = ManagedRuntime.make(
  workflowsLayer({ storage: windowStore }).pipe(Layer.provideMerge(tracing(processor)))
)

interface Sample {
  readonly workflows: number
  readonly heap: number
  readonly heapAfterGc: number
  readonly rss: number
  readonly usPerWorkflow: number
}

const sample = async (done: number, usPerWorkflow: number): Promise<Sample> => {
  await processor.forceFlush()
  const { heapUsed } = process.memoryUsage()
  gc()
  const after = process.memoryUsage()
  return { workflows: done, heap: heapUsed, heapAfterGc: after.heapUsed, rss: after.rss, usPerWorkflow }
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1)

/** Least-squares slope of `y` over `x`. */
const slope = (points: ReadonlyArray<readonly [number, number]>) => {
  const mean = (pick: (point: readonly [number, number]) => number) =>
    points.reduce((sum, point) => sum + pick(point), 0) / points.length
  const [mx, my] = [mean(([x]) => x), mean(([, y]) => y)]
  return mean(([x, y]) => (x - mx) * (y - my)) / mean(([x]) => (x - mx) ** 2)
}

await runtime.runPromise(registry) // builds the layers before the first sample
const samples = [await sample(0, 0)]
for (let done = 0; done < workflows;) {
  const count = Math.min(every, workflows - done)
  const started = performance.now()
  await runtime.runPromise(commits(count))
  done += count
  samples.push(await sample(done, ((performance.now() - started) * 1000) / count))
  const last = samples.at(-1)!
  console.error(`${done} workflows: heap after GC ${mb(last.heapAfterGc)} MB, RSS ${mb(last.rss)} MB`)
}

await processor.forceFlush()
checkSpans("soak", tally, workflows)
await checkMetrics("soak", await runtime.runPromise(registry), workflows)
await runtime.dispose()

const warm = samples.findLast((entry) => entry.workflows <= warmup * workflows && entry.workflows > 0) ?? samples[1]!
const end = samples.at(-1)!
const settled = samples.filter((entry) => entry.workflows >= warm.workflows)
const growth = (pick: (entry: Sample) => number) => ((pick(end) - pick(warm)) / pick(warm)) * 100
const peak = (pick: (entry: Sample) => number) => Math.max(...settled.map(pick))

console.log(machine())
console.log(
  `${workflows} traced workflows back to back, sampled every ${every}; store keeps the last ${keep}; ` +
    `warm-up: the first ${warmup * 100} % (to ${warm.workflows})`
)
console.log(`verified: ${tally.total} spans exported (${describeTally(tally)}), every metric at ${workflows}`)
console.log()
console.log("| workflows | heap used MB | heap used after GC MB | RSS after GC MB | µs/workflow |")
console.log("|---|---|---|---|---|")
for (const entry of samples) {
  const us = entry.workflows === 0 ? "" : entry.usPerWorkflow.toFixed(1)
  console.log(`| ${entry.workflows} | ${mb(entry.heap)} | ${mb(entry.heapAfterGc)} | ${mb(entry.rss)} | ${us} |`)
}
console.log()
console.log(`| measure | end of warm-up MB | end MB | peak after warm-up MB | growth | goal < ${goal} % |`)
console.log("|---|---|---|---|---|---|")
const rows: ReadonlyArray<readonly [string, (entry: Sample) => number, boolean]> = [
  ["heap used after GC", (entry) => entry.heapAfterGc, true],
  ["RSS", (entry) => entry.rss, true],
  ["heap used (no GC)", (entry) => entry.heap, false]
]
for (const [name, pick, judged] of rows) {
  const value = growth(pick)
  const verdict = judged ? (value < goal ? "met" : "not met") : "(not judged: depends on when GC last ran)"
  console.log(
    `| ${name} | ${mb(pick(warm))} | ${mb(pick(end))} | ${mb(peak(pick))} | ${value >= 0 ? "+" : ""}` +
      `${value.toFixed(1)} % | ${verdict} |`
  )
}
const perWorkflow = slope(settled.map((entry) => [entry.workflows, entry.heapAfterGc] as const))
console.log()
console.log(
  `heap after GC, least-squares slope after warm-up: ${perWorkflow.toFixed(3)} bytes/workflow ` +
    `(${mb(perWorkflow * 1e6)} MB per million workflows)`
)
