/**
 * The DAG network's own metrics (SPEC §4) as an Effect service whose
 * instruments are registered on the shared {@link Metrics} registry when the
 * layer is built: `poh_requests_total`, `poh_ack_total`,
 * `poh_approval_latency_seconds`, `tx_committed_total`,
 * `storage_latency_seconds` and `presence_calls_total`. Its methods are the
 * seed's `record_*` helpers; the shipped workflows call them. Every label is
 * bounded: regions outside the configured list (`DAG_REGIONS`) are `other`,
 * and so are PoH node ids outside theirs (`DAG_NODES`) in the `node` label of
 * the PoH families.
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

/** Node ids used when `DAG_NODES` is unset: the example network's three PoH nodes. */
export const defaultNodes: ReadonlyArray<string> = ["poh-1", "poh-2", "poh-3"]

const nodePattern = /^[\w.-]{1,64}$/

/** `DAG_NODES`: the PoH node ids the `node` label keeps; any other node is `other`. */
export const nodes: Config.Config<ReadonlyArray<string>> = Settings.setting("DAG_NODES", defaultNodes, {
  expected: "a comma-separated list of node ids (1 to 64 letters, digits, '.', '_' or '-' each)",
  parse: (text) => {
    const ids = text.split(",").map((id) => id.trim())
    return ids.every((id) => nodePattern.test(id)) ? [...new Set(ids)] : undefined
  }
})

/**
 * Where a PoH request went: a node of its own region (`local`), another region's because its own had none online
 * (`cross_region`), or the client's default node because Presence named none (`default`).
 */
export type Placement = "local" | "cross_region" | "default"

/** Where a storage latency was measured. */
export interface StorageTarget {
  readonly operation: string
  readonly collection: string
}

/** The DAG's metrics: the seed's `record_*` helpers as effects. */
export class DagMetrics extends Context.Service<DagMetrics, {
  /** Bounds a region label value to the configured list or `other`. */
  readonly region: (region: string) => string
  /** Bounds a node label value to the configured node ids or `other`. */
  readonly node: (node: string | undefined) => string
  /** Counts one PoH_REQUEST (`record_poh_request`) sent to `node` (`other` when not given), `local` by default. */
  readonly recordPohRequest: (
    region: string,
    status: PohStatus,
    node?: string,
    placement?: Placement
  ) => Effect.Effect<void>
  /** Counts one PoH_ACK of `node` and observes its approval latency (`record_poh_ack`). */
  readonly recordPohAck: (region: string, approvalSeconds: number, node?: string) => Effect.Effect<void>
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
  /** Allowed `node` label values; anything else is `other`. {@link defaultNodes} when absent. */
  readonly nodes?: ReadonlyArray<string>
}

/** Registers the DAG's instruments on the current registry and builds the service. */
export const make = (options: Options): Effect.Effect<DagMetrics["Service"], never, Metrics> =>
  Effect.map(Metrics, (metrics) => {
    const pohRequests = metrics.counter({
      name: "poh_requests_total",
      help: "PoH_REQUESTs issued, by region, status (ok, error, timeout), PoH node and placement " +
        "(local, cross_region, default).",
      labelNames: ["region", "status", "node", "placement"]
    })
    const pohAcks = metrics.counter({
      name: "poh_ack_total",
      help: "PoH_ACKs received, by region and PoH node.",
      labelNames: ["region", "node"]
    })
    const approvalLatency = metrics.histogram({
      name: "poh_approval_latency_seconds",
      help: "Time from PoH_REQUEST issued to PoH_ACK received (approval delay), by region and the PoH node that acked.",
      labelNames: ["region", "node"]
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
    const known = new Set(options.nodes ?? defaultNodes)
    const node = (value: string | undefined) => value !== undefined && known.has(value) ? value : otherRegion
    return DagMetrics.of({
      region,
      node,
      recordPohRequest: (value, status, id, placement = "local") =>
        Effect.sync(() => pohRequests.inc({ region: region(value), status, node: node(id), placement })),
      recordPohAck: (value, seconds, id) =>
        Effect.andThen(
          Effect.sync(() => pohAcks.inc({ region: region(value), node: node(id) })),
          observe(approvalLatency, { region: region(value), node: node(id) }, seconds)
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

/**
 * The DAG's metrics with options read through Effect `Config`: {@link regions} (`DAG_REGIONS`) and {@link nodes}
 * (`DAG_NODES`) unless given others.
 */
export const layerConfig = (
  options: Config.Wrap<Options> = { regions, nodes }
): Layer.Layer<DagMetrics, Settings.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.map(Settings.read(options), layer))
