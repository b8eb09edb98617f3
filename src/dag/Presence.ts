/**
 * Presence: which nodes of a region are online. {@link make} wraps
 * any look-up in the traced workflow `Presence.onlineNodes`, counting
 * `presence_calls_total{region,outcome}`.
 *
 * @example
 * ```ts
 * import { Presence } from "dag-observability/dag"
 *
 * const PresenceLive = Presence.layerStatic({
 *   nodes: [{ id: "poh-1", region: "eu-central", address: "127.0.0.1:50051" }],
 *   failureRatio: 0.05
 * })
 * ```
 */
import { Context, Effect, Layer, Random, Schema } from "effect"
import { errorType } from "../internal/errorType.ts"
import { DagMetrics } from "./DagMetrics.ts"

/** A node that answers PoH requests. */
export interface PresenceNode {
  readonly id: string
  readonly region: string
  readonly address: string
}

/** The presence look-up failed. */
export class PresenceUnavailable extends Schema.TaggedError<PresenceUnavailable>()("PresenceUnavailable", {
  region: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `presence look-up failed: ${this.reason}`
  }
}

/** A look-up of the nodes online in a region. */
export type Lookup = (region: string) => Effect.Effect<ReadonlyArray<PresenceNode>, PresenceUnavailable>

/** Options of {@link layerStatic}. */
export interface StaticOptions {
  readonly nodes: ReadonlyArray<PresenceNode>
  /** The share of look-ups that fail, from 0 to 1, so the success rate can be watched moving. */
  readonly failureRatio: number
}

/** The traced presence workflow. */
export class Presence extends Context.Service<Presence, {
  readonly onlineNodes: Lookup
}>()("dag-observability/dag/Presence") {}

/** Wraps `lookup` in the span `Presence.onlineNodes` and its counter. */
export const make = (lookup: Lookup): Effect.Effect<Presence["Service"], never, DagMetrics> =>
  Effect.map(DagMetrics, (metrics) =>
    Presence.of({
      onlineNodes: Effect.fn("Presence.onlineNodes")(function*(region: string) {
        yield* Effect.annotateCurrentSpan("dag.region", metrics.region(region))
        const nodes = yield* lookup(region).pipe(Effect.tapError(() => metrics.recordPresence(false, region)))
        yield* metrics.recordPresence(true, region)
        yield* Effect.annotateCurrentSpan("dag.presence.online", nodes.length)
        return nodes
      }, errorType)
    }))

/** A fixed directory of nodes whose look-ups fail with probability `failureRatio`. */
export const layerStatic = (options: StaticOptions): Layer.Layer<Presence, never, DagMetrics> =>
  Layer.effect(
    Presence,
    make((region) =>
      Effect.flatMap(Random.next, (draw) =>
        draw < options.failureRatio
          ? Effect.fail(new PresenceUnavailable({ region, reason: "presence service did not answer" }))
          : Effect.succeed(options.nodes.filter((node) => node.region === region))
      )
    )
  )
