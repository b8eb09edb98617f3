/**
 * The DAG network's own metrics (SPEC §4) as an Effect service whose
 * instruments are registered on the shared {@link Metrics} registry when the
 * layer is built: `poh_requests_total`, `poh_ack_total`,
 * `poh_approval_latency_seconds`, `tx_committed_total`,
 * `storage_latency_seconds` and `presence_calls_total`. Its methods are the
 * seed's `record_*` helpers; the shipped workflows call them. Every label is
 * bounded: regions outside the configured list (`DAG_REGIONS`) are `other`.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Metrics } from "dag-observability"
 * import { DagMetrics } from "dag-observability/dag"
 *
 * const program = Effect.gen(function*() {
 *   const dag = yield* DagMetrics.DagMetrics
 *   yield* dag.recordPohRequest("eu-central", "ok")
 * }).pipe(Effect.provide(DagMetrics.layer().pipe(Layer.provide(Metrics.layerTest))))
 * ```
 */
import { type Config, Context, Effect, Layer } from "effect"
import { Metrics, observe } from "../Metrics.ts"
import * as Settings from "../Settings.ts"

/** The outcome of one PoH_REQUEST. */
export type PohStatus = "ok" | "error" | "timeout"

/** The region label given to any region outside the configured list. */
export const otherRegion = "other"

/** Regions used when `DAG_REGIONS` is unset. */
export const defaultRegions: ReadonlyArray<string> = ["us-east", "us-west", "eu-central", "ap-south"]

const regionPattern = /^[a-z0-9][a-z0-9-]{0,31}$/

/** `DAG_REGIONS`: the region label values metrics keep; any other region is `other`. */
export const regions: Config.Config<ReadonlyArray<string>> = Settings.setting("DAG_REGIONS", defaultRegions, {
  expected: "a comma-separated list of lowercase region names (letters, digits, '-'; at most 32 characters each)",
  parse: (text) => {
    const names = text.split(",").map((region) => region.trim())
    return names.every((region) => regionPattern.test(region)) ? [...new Set(names)] : undefined
  }
})

/** Where a storage latency was measured. */
export interface StorageTarget {
  readonly operation: string
  readonly collection: string
}

/** The DAG's metrics: the seed's `record_*` helpers as effects. */
export class DagMetrics extends Context.Service<DagMetrics, {
  /** Bounds a region label value to the configured list or `other`. */
  readonly region: (region: string) => string
  /** Counts one PoH_REQUEST (`record_poh_request`). */
  readonly recordPohRequest: (region: string, status: PohStatus) => Effect.Effect<void>
  /** Counts one PoH_ACK and observes its approval latency (`record_poh_ack`). */
  readonly recordPohAck: (region: string, approvalSeconds: number) => Effect.Effect<void>
  /** Counts one committed transaction. */
  readonly recordTxCommitted: (region: string) => Effect.Effect<void>
  /** Observes one storage write latency (`record_storage_latency`); `insert` into `transactions` by default. */
  readonly recordStorageLatency: (seconds: number, target?: StorageTarget) => Effect.Effect<void>
  /** Counts one presence look-up (`record_presence`). */
  readonly recordPresence: (success: boolean, region: string) => Effect.Effect<void>
}>()("dag-observability/dag/DagMetrics") {}

/** Options of {@link make}. */
export interface Options {
  /** Allowed `region` label values; anything else is `other`. */
  readonly regions: ReadonlyArray<string>
}

/** Registers the DAG's instruments on the current registry and builds the service. */
export const make = (options: Options): Effect.Effect<DagMetrics["Service"], never, Metrics> =>
  Effect.map(Metrics, (metrics) => {
    const pohRequests = metrics.counter({
      name: "poh_requests_total",
      help: "PoH_REQUESTs issued, by region and status (ok, error, timeout).",
      labelNames: ["region", "status"]
    })
    const pohAcks = metrics.counter({ name: "poh_ack_total", help: "PoH_ACKs received, by region.", labelNames: ["region"] })
    const approvalLatency = metrics.histogram({
      name: "poh_approval_latency_seconds",
      help: "Time from PoH_REQUEST issued to PoH_ACK received (approval delay).",
      labelNames: ["region"]
    })
    const txCommitted = metrics.counter({
      name: "tx_committed_total",
      help: "Transactions acknowledged by PoH and persisted.",
      labelNames: ["region"]
    })
    const storageLatency = metrics.histogram({
      name: "storage_latency_seconds",
      help: "Storage write completion latency.",
      labelNames: ["operation", "collection"]
    })
    const presenceCalls = metrics.counter({
      name: "presence_calls_total",
      help: "Presence look-ups, by region and outcome (success, failure).",
      labelNames: ["region", "outcome"]
    })
    const allowed = new Set(options.regions)
    const region = (value: string) => allowed.has(value) ? value : otherRegion
    return DagMetrics.of({
      region,
      recordPohRequest: (value, status) => Effect.sync(() => pohRequests.inc({ region: region(value), status })),
      recordPohAck: (value, seconds) =>
        Effect.andThen(
          Effect.sync(() => pohAcks.inc({ region: region(value) })),
          observe(approvalLatency, { region: region(value) }, seconds)
        ),
      recordTxCommitted: (value) => Effect.sync(() => txCommitted.inc({ region: region(value) })),
      recordStorageLatency: (seconds, target = { operation: "insert", collection: "transactions" }) =>
        observe(storageLatency, { operation: target.operation, collection: target.collection }, seconds),
      recordPresence: (success, value) =>
        Effect.sync(() => presenceCalls.inc({ region: region(value), outcome: success ? "success" : "failure" }))
    })
  })

/** The DAG's metrics on the current registry, keeping `options.regions` (the default regions unless given). */
export const layer = (options: Options = { regions: defaultRegions }): Layer.Layer<DagMetrics, never, Metrics> =>
  Layer.effect(DagMetrics, make(options))

/** The DAG's metrics with options read through Effect `Config`: {@link regions} (`DAG_REGIONS`) unless given others. */
export const layerConfig = (
  options: Config.Wrap<Options> = { regions }
): Layer.Layer<DagMetrics, Settings.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.map(Settings.read(options), layer))
