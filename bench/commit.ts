/**
 * The traced commit workflow the in-process benchmarks run (`effect + ours` of bench/workflow.ts, bench/soak.ts,
 * the load of bench/scrape.ts, bench/profile-workflow.ts): `Transaction.commit` (Presence → in-process PoH →
 * Storage, 6 metric updates) under a `POST /tx` server span, its layers, and the checks that every workflow left its
 * spans and metric updates.
 */
import { AlwaysOnSampler, type SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { DagMetrics, Poh, Presence, Storage, Transaction } from "../src/dag/index.ts"
import { Metrics, Tracing } from "../src/index.ts"
import { type SpanTally, total } from "./support.ts"

/** The spans of one workflow; only `POST /tx` has no parent. */
export const spanNames = ["POST /tx", "Presence.onlineNodes", "Poh.request", "Poh.sequence", "Storage.persist"]

/** The metrics one workflow updates once each. */
export const counted = [
  "presence_calls_total",
  "poh_requests_total",
  "poh_ack_total",
  "poh_approval_latency_seconds",
  "storage_latency_seconds",
  "tx_committed_total"
]

export const presenceNodes = [{ id: "n1", region: "eu-central", address: "in-process" }]

/**
 * Presence, in-process PoH and `storage` (the in-memory store by default) over the DAG's metrics on `metrics` (a
 * fresh test registry by default).
 */
export const workflowsLayer = <E = never>(options: {
  readonly storage?: Layer.Layer<Storage.Storage, never, DagMetrics.DagMetrics>
  readonly metrics?: Layer.Layer<Metrics.Metrics, E>
} = {}) =>
  Layer.mergeAll(
    Poh.layerInProcess("bench"),
    options.storage ?? Storage.layerMemory,
    Presence.layerStatic({ nodes: presenceNodes, failureRatio: 0 })
  ).pipe(Layer.provideMerge(DagMetrics.layer()), Layer.provideMerge(options.metrics ?? Metrics.layerTest))

/** This library's tracing as the benchmarks install it: every span sampled, handed to `processor`. */
export const tracing = (processor: SpanProcessor): Layer.Layer<never> =>
  Tracing.layerProvider(processor, {
    resource: { serviceName: "bench" },
    sampler: new AlwaysOnSampler(),
    shutdownTimeout: "5 seconds"
  })

const tx = new Transaction.Transaction({ from: "alice", to: "bob", amount: 1, region: "eu-central" })

/** One workflow: a transaction committed under a `POST /tx` server span. */
export const commitOne = Transaction.commit(tx).pipe(Effect.withSpan("POST /tx", { kind: "server" }))

/** `count` workflows, one after the other. */
export const commits = (count: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < count; i++) yield* commitOne
  })

/** The registry of the Metrics service in scope. */
export const registry = Effect.map(Metrics.Metrics, (metrics) => metrics.registry)

/** Fails unless each of `names` (all that one workflow updates by default) totals `workflows` in `registry`. */
export const checkMetrics = async (
  name: string,
  metrics: Parameters<typeof total>[0],
  workflows: number,
  names: ReadonlyArray<string> = counted
): Promise<void> => {
  for (const metric of names) {
    const value = await total(metrics, metric)
    if (value !== workflows) throw new Error(`${name}: ${metric} counted ${value}, expected ${workflows}`)
  }
}

/** Fails unless `tally` holds `workflows` spans of each name, all with a parent but `POST /tx`, and no others. */
export const checkSpans = (name: string, tally: SpanTally, workflows: number): void => {
  for (const span of spanNames) {
    const entry = tally.byName.get(span)
    const parents = span === "POST /tx" ? 0 : workflows
    if (entry?.count !== workflows || entry.withParent !== parents) {
      throw new Error(`${name}: span ${span} ${JSON.stringify(entry)}, expected ${workflows} with ${parents} parents`)
    }
  }
  if (tally.total !== workflows * spanNames.length) throw new Error(`${name}: ${tally.total} spans in all`)
}
