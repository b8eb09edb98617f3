/**
 * Proof of history: a sending DAG asks a PoH node to stamp each transaction
 * (PoH_REQUEST) and waits for the answer (PoH_ACK). {@link Poh} is the traced
 * workflow with its metrics; {@link PohClient} is the transport underneath it
 * (in-process here, gRPC in `PohGrpc`); {@link PohSequencer} is the node's
 * hash chain.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Poh } from "dag-observability/dag"
 *
 * const stamp = Effect.gen(function*() {
 *   const poh = yield* Poh.Poh
 *   return yield* poh.request({ txId: "tx-1", region: "eu-central" })
 * })
 * ```
 */
import { createHash } from "node:crypto"
import { Clock, Context, DateTime, Duration, Effect, Layer, Metric, Schedule, Schema } from "effect"
import { errorType } from "../internal/errorType.ts"
import { DagMetrics, type Placement } from "./DagMetrics.ts"
import type { Online } from "./Presence.ts"

/** A PoH_ACK: the request's place in the node's hash chain. */
export class PohAck extends Schema.Class<PohAck>("dag-observability/PohAck")({
  seq: Schema.Int,
  hash: Schema.String,
  timestamp: Schema.String,
  node: Schema.String
}) {}

/** A PoH_REQUEST for one transaction, to one node. */
export interface PohRequest {
  readonly txId: string
  readonly region: string
  /** The node to ask, as Presence named it; the client's default when absent. */
  readonly address?: string
  /** That node's id, for the `node` label and the attempt's span. */
  readonly node?: string
}

/** What {@link Poh}'s `request` takes: a PoH_REQUEST and, when Presence answered, who is online. */
export interface RoutedRequest extends PohRequest {
  /**
   * The nodes Presence says are online: the request goes to one of its region's, chosen in turn, and fails over to
   * the next on {@link PohUnavailable}, then to other regions' nodes; to another region's at once only when its own
   * has none. Absent or empty: to `address`, else to the client's default node.
   */
  readonly online?: Online
}

/** No ACK arrived within the request timeout. */
export class PohTimeout extends Schema.TaggedError<PohTimeout>()("PohTimeout", {
  region: Schema.String,
  timeoutMillis: Schema.Number
}) {
  override get message(): string {
    return `no PoH_ACK within ${this.timeoutMillis} ms`
  }
}

/** The PoH node could not be reached or refused the request. */
export class PohUnavailable extends Schema.TaggedError<PohUnavailable>()("PohUnavailable", {
  region: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `PoH node unavailable: ${this.reason}`
  }
}

/** Any failure of a PoH request. */
export type PohError = PohTimeout | PohUnavailable

/** The PoH node's sequencer: a SHA-256 hash chain over request ids. */
export class PohSequencer extends Context.Service<PohSequencer, {
  /** Appends `txId` to the chain and returns its ACK. */
  readonly sequence: (txId: string) => Effect.Effect<PohAck>
}>()("dag-observability/dag/PohSequencer") {}

/**
 * A sequencer for the node named `node`, starting from the zero hash; span `Poh.sequence`. Its chain height (the
 * last sequence number) is the Effect gauge `poh_chain_height{node}`, 0 from the start.
 */
export const makeSequencer = (node: string): Effect.Effect<PohSequencer["Service"]> =>
  Effect.gen(function*() {
    const height = Metric.gauge("poh_chain_height", {
      description: "Transactions in the PoH node's hash chain: its last sequence number.",
      attributes: { node }
    })
    let seq = 0
    let hash = "0".repeat(64)
    yield* Metric.update(height, seq)
    return PohSequencer.of({
      sequence: Effect.fn("Poh.sequence")(function*(txId: string) {
        const now = yield* DateTime.now
        seq += 1
        hash = createHash("sha256").update(hash).update(txId).digest("hex")
        yield* Effect.annotateCurrentSpan("poh.seq", seq)
        yield* Metric.update(height, seq)
        return new PohAck({ seq, hash, timestamp: DateTime.formatIso(now), node })
      })
    })
  })

/** {@link makeSequencer} as a layer. */
export const layerSequencer = (node: string): Layer.Layer<PohSequencer> => Layer.effect(PohSequencer, makeSequencer(node))

/** How a PoH_REQUEST reaches a PoH node. */
export class PohClient extends Context.Service<PohClient, {
  readonly stamp: (request: PohRequest) => Effect.Effect<PohAck, PohUnavailable>
}>()("dag-observability/dag/PohClient") {}

/** A {@link PohClient} that stamps with the {@link PohSequencer} of this process. */
export const layerClientInProcess: Layer.Layer<PohClient, never, PohSequencer> = Layer.effect(
  PohClient,
  Effect.map(PohSequencer, (sequencer) => PohClient.of({ stamp: (request) => sequencer.sequence(request.txId) }))
)

/**
 * The default retry policy: up to 2 retries of a {@link PohUnavailable}, 50 ms
 * then 100 ms apart. A {@link PohTimeout} is not retried: the node may have
 * stamped the transaction already.
 */
export const defaultRetry: Schedule.Schedule<unknown, PohError> = Schedule.exponential("50 millis").pipe(
  Schedule.upTo({ times: 2 }),
  Schedule.setInputType<PohError>(),
  Schedule.while(({ input }) => input._tag === "PohUnavailable")
)

/** Options of {@link make}. */
export interface Options {
  /** How long to wait for the ACK of each attempt; 2 seconds by default. */
  readonly timeout?: Duration.Input
  /**
   * When to try again after a failed attempt, given its error; {@link defaultRetry} by default,
   * `Schedule.recurs(0)` for never.
   *
   * @example
   * ```ts
   * Poh.layer({ retry: Schedule.spaced("200 millis").pipe(Schedule.upTo({ times: 5 })) })
   * ```
   */
  readonly retry?: Schedule.Schedule<unknown, PohError>
}

/** The traced PoH workflow. */
export class Poh extends Context.Service<Poh, {
  readonly request: (request: RoutedRequest) => Effect.Effect<PohAck, PohError>
}>()("dag-observability/dag/Poh") {}

/** One node a request may go to, and how it was chosen. */
interface Candidate {
  readonly node?: string
  readonly address?: string
  readonly placement: Placement
}

/** `items` rotated to start at `start` (modulo their count). */
const rotate = <A>(items: ReadonlyArray<A>, start: number): ReadonlyArray<A> => {
  const at = items.length === 0 ? 0 : start % items.length
  return [...items.slice(at), ...items.slice(0, at)]
}

/**
 * The nodes to try in order: the region's online nodes starting at the `turn`-th (so that successive requests of a
 * region are spread evenly over its nodes), then the other regions' nodes likewise: the first attempt goes to another
 * region only when the region has none online, a failover only once each of the region's nodes has failed.
 */
const candidates = (request: RoutedRequest, turn: number): ReadonlyArray<Candidate> => {
  const local = rotate(request.online?.nodes ?? [], turn)
  const elsewhere = rotate(request.online?.elsewhere ?? [], turn)
  if (local.length + elsewhere.length > 0) {
    return [
      ...local.map((node): Candidate => ({ node: node.id, address: node.address, placement: "local" })),
      ...elsewhere.map((node): Candidate => ({ node: node.id, address: node.address, placement: "cross_region" }))
    ]
  }
  return [{
    ...(request.node === undefined ? {} : { node: request.node }),
    ...(request.address === undefined ? {} : { address: request.address }),
    placement: request.address === undefined ? "default" : "local"
  }]
}

/**
 * The workflow over the current {@link PohClient}: span `Poh.request`,
 * `poh_requests_total`, `poh_ack_total`, approval latency. Every attempt is a
 * PoH_REQUEST issued and counted once with its own status, node and
 * placement (a request retried twice then acknowledged counts `error` twice
 * and `ok` once); the approval latency runs from the first attempt to the ACK
 * and is labelled with the node that acked. Each attempt goes to the next of
 * the online nodes ({@link RoutedRequest}), so a retry after
 * {@link PohUnavailable} fails over; the span says how many attempts it took
 * (`dag.poh.attempts`), which node acked (`dag.poh.node`) and where it was
 * (`dag.poh.placement`, `cross_region` when the region had no node online).
 */
export const make = (options: Options = {}): Effect.Effect<Poh["Service"], never, PohClient | DagMetrics> =>
  Effect.gen(function*() {
    const client = yield* PohClient
    const metrics = yield* DagMetrics
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "2 seconds")
    const retry = options.retry ?? defaultRetry
    // Each region's turn, from a random start so that several senders do not all begin with the same node.
    const turns = new Map<string, number>()
    const start = Math.floor(Math.random() * 1024)
    const turnOf = (region: string) => {
      const key = metrics.region(region)
      const turn = turns.get(key) ?? start
      turns.set(key, turn + 1)
      return turn
    }
    return Poh.of({
      request: Effect.fn("Poh.request")(function*(request: RoutedRequest) {
        yield* Effect.annotateCurrentSpan("dag.region", metrics.region(request.region))
        const order = candidates(request, turnOf(request.region))
        const started = yield* Clock.currentTimeNanos
        let attempts = 0
        const attempt = Effect.suspend(() => {
          const target = order[attempts++ % order.length]!
          const stamp: PohRequest = {
            txId: request.txId,
            region: request.region,
            ...(target.address === undefined ? {} : { address: target.address }),
            ...(target.node === undefined ? {} : { node: target.node })
          }
          return client.stamp(stamp).pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () =>
                Effect.fail(new PohTimeout({ region: request.region, timeoutMillis: Duration.toMillis(timeout) }))
            }),
            Effect.tapError((error) =>
              metrics.recordPohRequest(
                request.region,
                error._tag === "PohTimeout" ? "timeout" : "error",
                target.node,
                target.placement
              )
            ),
            Effect.map((ack) => ({ ack, target }))
          )
        })
        const { ack, target } = yield* Effect.retry(attempt, retry).pipe(
          Effect.ensuring(Effect.suspend(() => Effect.annotateCurrentSpan("dag.poh.attempts", attempts)))
        )
        // The node that stamped it, as it names itself (an in-process sequencer, or a node Presence names otherwise).
        const node = ack.node
        const elapsed = Number((yield* Clock.currentTimeNanos) - started) / 1e9
        yield* Effect.annotateCurrentSpan({ "dag.poh.node": node, "dag.poh.placement": target.placement })
        yield* metrics.recordPohRequest(request.region, "ok", node, target.placement)
        yield* metrics.recordPohAck(request.region, elapsed, node)
        return ack
      }, errorType)
    })
  })

/** {@link make} as a layer. */
export const layer = (options: Options = {}): Layer.Layer<Poh, never, PohClient | DagMetrics> =>
  Layer.effect(Poh, make(options))

/** The workflow over an in-process sequencer named `node`. */
export const layerInProcess = (node = "poh-local", options: Options = {}): Layer.Layer<Poh, never, DagMetrics> =>
  layer(options).pipe(Layer.provide(layerClientInProcess), Layer.provide(layerSequencer(node)))
