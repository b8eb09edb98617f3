/**
 * Presence: which PoH nodes are online. {@link make} wraps any look-up in the
 * traced workflow `Presence.onlineNodes`, counting
 * `presence_calls_total{region,outcome}`, and keeps each region's last answer
 * for a bounded time ({@link Options}) to serve while the look-up fails.
 * {@link makeDirectory} is the Presence service's own table: nodes announce
 * themselves with heartbeats and drop out after a TTL without one.
 * `PresenceGrpc` serves the table over gRPC and is the sending DAG's client.
 *
 * @example
 * ```ts
 * import { Presence } from "dag-observability/dag"
 *
 * const PresenceLive = Presence.layerStatic({
 *   nodes: [{ id: "poh-1", region: "eu-central", address: "127.0.0.1:50051" }]
 * })
 * ```
 */
import { Clock, type Config, Context, Duration, Effect, Layer, Random, Schema } from "effect"
import type { Gauge } from "prom-client"
import { errorType } from "../internal/errorType.ts"
import type { Metrics } from "../Metrics.ts"
import * as Settings from "../Settings.ts"
import { DagMetrics } from "./DagMetrics.ts"

/** A node that answers PoH requests. */
export interface PresenceNode {
  readonly id: string
  readonly region: string
  readonly address: string
}

/** The answer of a look-up: the nodes online in the region asked, and those online elsewhere. */
export interface Online {
  /** Online in the region, ordered by id. */
  readonly nodes: ReadonlyArray<PresenceNode>
  /** Online in other regions, ordered by region then id: where a request goes when its region has none. */
  readonly elsewhere: ReadonlyArray<PresenceNode>
}

/** The Presence service could not be reached or refused the look-up. */
export class PresenceUnavailable extends Schema.TaggedError<PresenceUnavailable>()("PresenceUnavailable", {
  region: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `presence look-up failed: ${this.reason}`
  }
}

/** The Presence service did not answer within the look-up timeout. */
export class PresenceTimeout extends Schema.TaggedError<PresenceTimeout>()("PresenceTimeout", {
  region: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `presence look-up got no answer within ${this.timeoutMillis} ms`
  }
}

/** Any failure of a look-up. */
export type PresenceError = PresenceUnavailable | PresenceTimeout

/** A look-up of the nodes online in a region. */
export type Lookup = (region: string) => Effect.Effect<Online, PresenceError>

/** The traced presence workflow. */
export class Presence extends Context.Service<Presence, {
  /**
   * `Presence.onlineNodes`: who is online in `region` and elsewhere. A failed look-up is counted `failure` and its
   * error's tag is the span's `error.type`; while the region's last answer is younger than `lastAnswerFor` it is
   * served instead (the span says `dag.presence.stale` and `dag.presence.age_ms`), else the look-up fails.
   */
  readonly onlineNodes: Lookup
}>()("dag-observability/dag/Presence") {}

/** Options of {@link make}. */
export interface Options {
  /** How long a region's last answer is served while look-ups fail; 30 seconds by default, 0 for never. */
  readonly lastAnswerFor?: Duration.Input
}

/** The default of {@link Options.lastAnswerFor}. */
export const defaultLastAnswerFor: Duration.Duration = Duration.seconds(30)

/** At most this many regions' last answers are kept (the oldest goes first). */
const maxRemembered = 64

/** Wraps `lookup` in the span `Presence.onlineNodes`, its counter and the last-answer fallback. */
export const make = (lookup: Lookup, options: Options = {}): Effect.Effect<Presence["Service"], never, DagMetrics> =>
  Effect.map(DagMetrics, (metrics) => {
    const keep = Duration.toMillis(Duration.fromInputUnsafe(options.lastAnswerFor ?? defaultLastAnswerFor))
    const last = new Map<string, { readonly online: Online; readonly at: number }>()
    const remember = (region: string, online: Online, at: number) => {
      last.delete(region)
      if (last.size >= maxRemembered) last.delete(last.keys().next().value!)
      last.set(region, { online, at })
    }
    return Presence.of({
      onlineNodes: Effect.fn("Presence.onlineNodes")(function*(region: string) {
        yield* Effect.annotateCurrentSpan("dag.region", metrics.region(region))
        const result = yield* Effect.result(lookup(region))
        const now = yield* Clock.currentTimeMillis
        let online: Online
        if (result._tag === "Success") {
          yield* metrics.recordPresence(true, region)
          online = result.success
          remember(region, online, now)
        } else {
          yield* metrics.recordPresence(false, region)
          const remembered = last.get(region)
          if (remembered === undefined || now - remembered.at > keep) return yield* Effect.fail(result.failure)
          yield* Effect.annotateCurrentSpan({
            "error.type": result.failure._tag,
            "dag.presence.stale": true,
            "dag.presence.age_ms": now - remembered.at
          })
          online = remembered.online
        }
        yield* Effect.annotateCurrentSpan({
          "dag.presence.online": online.nodes.length,
          "dag.presence.elsewhere": online.elsewhere.length
        })
        return online
      }, errorType)
    })
  })

/** {@link make} as a layer. */
export const layer = (lookup: Lookup, options: Options = {}): Layer.Layer<Presence, never, DagMetrics> =>
  Layer.effect(Presence, make(lookup, options))

/** The answer for `region` from a list of online `nodes`. */
export const split = (nodes: ReadonlyArray<PresenceNode>, region: string): Online => {
  const sorted = nodes.toSorted((a, b) => a.region.localeCompare(b.region) || a.id.localeCompare(b.id))
  return {
    nodes: sorted.filter((node) => node.region === region),
    elsewhere: sorted.filter((node) => node.region !== region)
  }
}

/** Options of {@link layerStatic}. */
export interface StaticOptions {
  readonly nodes: ReadonlyArray<PresenceNode>
  /** For specs: the share of look-ups that fail, from 0 to 1; none by default. */
  readonly failureRatio?: number
}

/** A fixed directory of nodes, for a node run alone and for specs (whose look-ups may fail at `failureRatio`). */
export const layerStatic = (options: StaticOptions): Layer.Layer<Presence, never, DagMetrics> =>
  layer((region) =>
    Effect.flatMap(Random.next, (draw) =>
      draw < (options.failureRatio ?? 0)
        ? Effect.fail(new PresenceUnavailable({ region, reason: "presence service did not answer" }))
        : Effect.succeed(split(options.nodes, region))
    ), { lastAnswerFor: 0 })

/** The Presence service's table of nodes. */
export interface Directory {
  /** A heartbeat of `node`: online until the TTL after now. Whether it was offline before. */
  readonly announce: (node: PresenceNode) => Effect.Effect<boolean>
  /** `id` leaves at once; whether it was online. */
  readonly leave: (id: string) => Effect.Effect<boolean>
  /** The answer for `region`, from the nodes whose last heartbeat is within the TTL. */
  readonly online: (region: string) => Effect.Effect<Online>
  /** Drops the nodes whose TTL has passed; those dropped. */
  readonly expire: Effect.Effect<ReadonlyArray<PresenceNode>>
  /** Every node online now. */
  readonly all: Effect.Effect<ReadonlyArray<PresenceNode>>
  /** Whether any node has announced itself since the table was made. */
  readonly heard: Effect.Effect<boolean>
  /** The TTL in milliseconds. */
  readonly ttlMillis: number
}

/** The default heartbeat TTL: a node is offline 5 seconds after its last heartbeat. */
export const defaultTtl: Duration.Duration = Duration.seconds(5)

/** A table of nodes online until `ttl` after their last heartbeat (by the Effect `Clock`). */
export const makeDirectory = (ttl: Duration.Input = defaultTtl): Effect.Effect<Directory> =>
  Effect.sync(() => {
    const ttlMillis = Duration.toMillis(Duration.fromInputUnsafe(ttl))
    const table = new Map<string, { readonly node: PresenceNode; readonly until: number }>()
    let heard = false
    const live = (now: number) => [...table.values()].filter((entry) => entry.until >= now).map((entry) => entry.node)
    return {
      ttlMillis,
      announce: (node) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          heard = true
          const before = table.get(node.id)
          table.set(node.id, { node: { id: node.id, region: node.region, address: node.address }, until: now + ttlMillis })
          return before === undefined || before.until < now
        }),
      leave: (id) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const before = table.get(id)
          table.delete(id)
          return before !== undefined && before.until >= now
        }),
      online: (region) => Effect.map(Clock.currentTimeMillis, (now) => split(live(now), region)),
      expire: Effect.map(Clock.currentTimeMillis, (now) => {
        const gone = [...table.values()].filter((entry) => entry.until < now)
        for (const entry of gone) table.delete(entry.node.id)
        return gone.map((entry) => entry.node)
      }),
      all: Effect.map(Clock.currentTimeMillis, live),
      heard: Effect.sync(() => heard)
    }
  })

/** Registers `presence_online_nodes{region}`, the Presence service's count of nodes online, or finds it registered. */
export const onlineGauge = (metrics: Metrics["Service"]): Gauge<"region"> =>
  metrics.gauge({
    name: "presence_online_nodes",
    help: "PoH nodes online (heartbeat within the TTL), by region.",
    labelNames: ["region"]
  })

/** `PRESENCE_TTL`: how long a node stays online after its last heartbeat; 5 seconds by default. */
export const ttl: Config.Config<Duration.Duration> = Settings.setting("PRESENCE_TTL", defaultTtl, Settings.duration)

/** `PRESENCE_HEARTBEAT_INTERVAL`: how often a PoH node announces itself; 1 second by default. */
export const heartbeatInterval: Config.Config<Duration.Duration> = Settings.setting(
  "PRESENCE_HEARTBEAT_INTERVAL",
  Duration.seconds(1),
  Settings.duration
)

/** `PRESENCE_LAST_ANSWER_TTL`: how long the sending DAG serves a region's last answer while Presence fails; 30 s. */
export const lastAnswerFor: Config.Config<Duration.Duration> = Settings.setting(
  "PRESENCE_LAST_ANSWER_TTL",
  defaultLastAnswerFor,
  Settings.duration
)
