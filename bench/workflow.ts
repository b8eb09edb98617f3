/**
 * Per-operation cost of one transaction workflow (Presence → PoH → Storage,
 * in-process PoH, in-memory store, 6 metric updates), four contenders in the
 * same run, alternating, medians:
 *
 * - `effect bare`: this library's workflow with the tracer off (metrics on);
 * - `effect + ours`: the same with this library's tracing (5 spans);
 * - `plain TS`: the same work written in plain TypeScript, prom-client updated by hand, no spans;
 * - `plain TS + raw OTel`: the same plus the 5 spans (same names, kinds, parents and attributes) through the raw
 *   OpenTelemetry SDK (`BasicTracerProvider`, `startActiveSpan`), exemplars on the histograms as the library does.
 *
 * Both traced contenders export through a `BatchSpanProcessor` to an exporter that counts and discards, so the cost
 * is the SDK's and the library's, not a network's. Spans (by name, kind, parent) and metric updates are counted for
 * every contender at the end, so that nobody wins by doing less.
 *
 * Run: `npm run bench:workflow` (ROUNDS and OPS override the defaults).
 */
import { createHash, randomUUID } from "node:crypto"
import { type Span, SpanKind, SpanStatusCode } from "@opentelemetry/api"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { AlwaysOnSampler, BasicTracerProvider } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer, ManagedRuntime } from "effect"
import { DagMetrics } from "../src/dag/index.ts"
import { Metrics } from "../src/index.ts"
import {
  checkMetrics,
  checkSpans,
  commits,
  counted,
  presenceNodes,
  registry,
  spanNames,
  tracing,
  workflowsLayer
} from "./commit.ts"
import { countingProcessor, describeTally, machine, makeTally, median, ratio, type SpanTally } from "./support.ts"

const rounds = Number(process.env["ROUNDS"] ?? 7)
const ops = Number(process.env["OPS"] ?? 20_000)

// --- this library -----------------------------------------------------------------------------------------------

const oursTally = makeTally()
const oursProcessor = countingProcessor(oursTally)

const Workflows = workflowsLayer()

// Built first: its provider registers the global AsyncLocalStorage context manager that `startActiveSpan` uses too.
const traced = ManagedRuntime.make(Workflows.pipe(Layer.provideMerge(tracing(oursProcessor))))
const untraced = ManagedRuntime.make(Workflows)

const effectLoop = (runtime: typeof traced | typeof untraced, traceOn: boolean) => (count: number) =>
  runtime.runPromise(commits(count).pipe(Effect.withTracerEnabled(traceOn)))

// --- plain TypeScript, by hand ----------------------------------------------------------------------------------

interface PlainTx {
  readonly from: string
  readonly to: string
  readonly amount: number
  readonly region: string
}

interface Ack {
  readonly seq: number
  readonly hash: string
  readonly timestamp: string
  readonly node: string
}

/** The span as a histogram exemplar (prom-client types exemplar labels as the metric's own label names). */
const exemplar = <L extends string>(span: Span | undefined): Partial<Record<L, string>> => {
  if (span === undefined) return {}
  const context = span.spanContext()
  return { trace_id: context.traceId, span_id: context.spanId } as Partial<Record<L, string>>
}

/**
 * The six instruments the library's workflows update, registered by hand on `metrics` as `DagMetrics.layer` does:
 * the same names, label names and buckets, exemplars on the histograms.
 */
const instruments = (metrics: Metrics.Metrics["Service"]) => ({
  pohRequests: metrics.counter({
    name: "poh_requests_total",
    help: "PoH_REQUESTs issued, by region and status (ok, error, timeout).",
    labelNames: ["region", "status"]
  }),
  pohAcks: metrics.counter({ name: "poh_ack_total", help: "PoH_ACKs received, by region.", labelNames: ["region"] }),
  approvalLatency: metrics.histogram({
    name: "poh_approval_latency_seconds",
    help: "Time from PoH_REQUEST issued to PoH_ACK received (approval delay).",
    labelNames: ["region"]
  }),
  txCommitted: metrics.counter({
    name: "tx_committed_total",
    help: "Transactions acknowledged by PoH and persisted.",
    labelNames: ["region"]
  }),
  storageLatency: metrics.histogram({
    name: "storage_latency_seconds",
    help: "Storage write completion latency.",
    labelNames: ["operation", "collection"]
  }),
  presenceCalls: metrics.counter({
    name: "presence_calls_total",
    help: "Presence look-ups, by region and outcome (success, failure).",
    labelNames: ["region", "outcome"]
  })
})

/** The same work as the library's in-memory workflows, with prom-client updated by hand; `withSpans` adds the spans. */
const makePlain = async (withSpans: boolean, tally: SpanTally) => {
  const metrics = await Effect.runPromise(Metrics.make({ defaultMetrics: false }))
  const m = instruments(metrics)
  const allowed = new Set(DagMetrics.defaultRegions)
  const region = (value: string) => allowed.has(value) ? value : "other"
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ "service.name": "bench-raw" }),
    sampler: new AlwaysOnSampler(),
    spanProcessors: [countingProcessor(tally)]
  })
  const tracer = provider.getTracer("bench-raw")
  const noSpan = undefined as Span | undefined

  /** Runs `fn` in an active span as most hand-instrumented code does: error status on a throw, always ended. */
  const inSpan = <A>(name: string, kind: SpanKind, fn: (span: Span | undefined) => A): A =>
    withSpans
      ? tracer.startActiveSpan(name, { kind }, (span) => {
        try {
          return fn(span)
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR })
          throw error
        } finally {
          span.end()
        }
      })
      : fn(noSpan)

  let seq = 0
  let hash = "0".repeat(64)
  const rows = new Map<string, PlainTx & { readonly id: string; readonly ack: Ack }>()

  const onlineNodes = (value: string) =>
    inSpan("Presence.onlineNodes", SpanKind.INTERNAL, (span) => {
      span?.setAttribute("dag.region", region(value))
      const nodes = presenceNodes.filter((node) => node.region === value)
      m.presenceCalls.inc({ region: region(value), outcome: "success" })
      span?.setAttribute("dag.presence.online", nodes.length)
      return nodes
    })

  const sequence = (txId: string): Ack =>
    inSpan("Poh.sequence", SpanKind.INTERNAL, (span) => {
      const now = new Date()
      seq += 1
      hash = createHash("sha256").update(hash).update(txId).digest("hex")
      span?.setAttribute("poh.seq", seq)
      return { seq, hash, timestamp: now.toISOString(), node: "bench" }
    })

  const request = (poh: { readonly txId: string; readonly region: string; readonly address?: string }) =>
    inSpan("Poh.request", SpanKind.INTERNAL, (span) => {
      const value = poh.region
      span?.setAttribute("dag.region", region(value))
      const started = process.hrtime.bigint()
      const ack = sequence(poh.txId)
      const elapsed = Number(process.hrtime.bigint() - started) / 1e9
      m.pohRequests.inc({ region: region(value), status: "ok" })
      m.pohAcks.inc({ region: region(value) })
      m.approvalLatency.observe({ labels: { region: region(value) }, value: elapsed, exemplarLabels: exemplar(span) })
      return ack
    })

  const persist = (stored: PlainTx & { readonly id: string; readonly ack: Ack }) =>
    inSpan("Storage.persist", SpanKind.INTERNAL, (span) => {
      span?.setAttribute("dag.tx.id", stored.id)
      const started = process.hrtime.bigint()
      if (rows.has(stored.id)) throw new Error(`transaction ${stored.id} is already stored`)
      rows.set(stored.id, stored)
      m.storageLatency.observe({
        labels: { operation: "insert", collection: "transactions" },
        value: Number(process.hrtime.bigint() - started) / 1e9,
        exemplarLabels: exemplar(span)
      })
    })

  const commit = (body: PlainTx) =>
    inSpan("POST /tx", SpanKind.SERVER, () => {
      const id = randomUUID()
      const target = onlineNodes(body.region)[0]
      const ack = request(target === undefined ? { txId: id, region: body.region } : {
        txId: id,
        region: body.region,
        address: target.address
      })
      const stored = { ...body, id, ack }
      persist(stored)
      m.txCommitted.inc({ region: region(body.region) })
      return stored
    })

  const body: PlainTx = { from: "alice", to: "bob", amount: 1, region: "eu-central" }
  const loop = async (count: number) => {
    for (let i = 0; i < count; i++) {
      commit(body)
      // Lets the batch processor's export run, as the Effect runtime's scheduler does between fibers' steps.
      if ((i & 255) === 255) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return { loop, registry: metrics.registry, provider }
}

// --- the run ------------------------------------------------------------------------------------------------------

const rawTally = makeTally()
const plain = await makePlain(false, makeTally())
const raw = await makePlain(true, rawTally)

interface Contender {
  readonly name: string
  readonly loop: (count: number) => Promise<unknown>
  readonly results: Array<number>
}

const contenders: ReadonlyArray<Contender> = [
  { name: "effect bare", loop: effectLoop(untraced, false), results: [] },
  { name: "effect + ours", loop: effectLoop(traced, true), results: [] },
  { name: "plain TS", loop: plain.loop, results: [] },
  { name: "plain TS + raw OTel", loop: raw.loop, results: [] }
]

const measure = async (contender: Contender) => {
  const started = performance.now()
  await contender.loop(ops)
  return ((performance.now() - started) * 1000) / ops
}

for (const contender of contenders) await measure(contender) // warm-up round, counted below like the others
for (let round = 0; round < rounds; round++) {
  // Alternating: each round starts with the next contender.
  for (let i = 0; i < contenders.length; i++) {
    const contender = contenders[(round + i) % contenders.length]!
    contender.results.push(await measure(contender))
  }
}

// --- verification: every contender did the same work ------------------------------------------------------------

await oursProcessor.forceFlush()
await raw.provider.forceFlush()
const workflows = (rounds + 1) * ops
const registries = {
  "effect bare": await untraced.runPromise(registry),
  "effect + ours": await traced.runPromise(registry),
  "plain TS": plain.registry,
  "plain TS + raw OTel": raw.registry
}
for (const [name, metrics] of Object.entries(registries)) await checkMetrics(name, metrics, workflows)
checkSpans("effect + ours", oursTally, workflows)
checkSpans("plain TS + raw OTel", rawTally, workflows)
await Promise.all([traced.dispose(), untraced.dispose(), raw.provider.shutdown()])

const medians = Object.fromEntries(contenders.map((contender) => [contender.name, median(contender.results)]))
const bare = medians["effect bare"]!
const ours = medians["effect + ours"]!
const plainBare = medians["plain TS"]!
const rawFull = medians["plain TS + raw OTel"]!
console.log(machine())
console.log(`${rounds} rounds × ${ops} workflows per contender, alternating, after a warm-up round; medians`)
console.log(`verified: ${workflows} workflows each, ${counted.length} metric updates each (${counted.join(", ")})`)
console.log(`  ours: ${describeTally(oursTally)}`)
console.log(`  raw:  ${describeTally(rawTally)}`)
console.log()
console.log("| contender | µs/workflow (median) | rounds |")
console.log("|---|---|---|")
for (const contender of contenders) {
  const rows = contender.results.map((value) => value.toFixed(1)).join(", ")
  console.log(`| ${contender.name} | ${medians[contender.name]!.toFixed(2)} | ${rows} |`)
}
console.log()
console.log(`| tracing cost | µs/workflow | µs/span |`)
console.log("|---|---|---|")
const costRow = (name: string, cost: number) =>
  console.log(`| ${name} | ${cost.toFixed(2)} | ${(cost / spanNames.length).toFixed(2)} |`)
costRow("ours (effect + ours − effect bare)", ours - bare)
costRow("raw (plain TS + raw OTel − plain TS)", rawFull - plainBare)
console.log()
console.log(`ours/raw, whole traced workflow: ${ratio(ours, rawFull)} (goal ≤ 1.5×)`)
console.log(`ours/raw, tracing cost alone:    ${ratio(ours - bare, rawFull - plainBare)}`)
console.log(`effect bare/plain TS (no spans): ${ratio(bare, plainBare)}`)
