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
import { Clock, Context, DateTime, Duration, Effect, Layer, Schedule, Schema } from "effect"
import { errorType } from "../internal/errorType.ts"
import { DagMetrics } from "./DagMetrics.ts"

/** A PoH_ACK: the request's place in the node's hash chain. */
export class PohAck extends Schema.Class<PohAck>("dag-observability/PohAck")({
  seq: Schema.Int,
  hash: Schema.String,
  timestamp: Schema.String,
  node: Schema.String
}) {}

/** A PoH_REQUEST for one transaction. */
export interface PohRequest {
  readonly txId: string
  readonly region: string
  /** The node to ask, as Presence named it; the client's default when absent. */
  readonly address?: string
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

/** A sequencer for the node named `node`, starting from the zero hash; span `Poh.sequence`. */
export const makeSequencer = (node: string): Effect.Effect<PohSequencer["Service"]> =>
  Effect.sync(() => {
    let seq = 0
    let hash = "0".repeat(64)
    return PohSequencer.of({
      sequence: Effect.fn("Poh.sequence")(function*(txId: string) {
        const now = yield* DateTime.now
        seq += 1
        hash = createHash("sha256").update(hash).update(txId).digest("hex")
        yield* Effect.annotateCurrentSpan("poh.seq", seq)
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
  readonly request: (request: PohRequest) => Effect.Effect<PohAck, PohError>
}>()("dag-observability/dag/Poh") {}

/**
 * The workflow over the current {@link PohClient}: span `Poh.request`,
 * `poh_requests_total`, `poh_ack_total`, approval latency. Every attempt is a
 * PoH_REQUEST issued and counted once with its own status (a request retried
 * twice then acknowledged counts `error` twice and `ok` once); the approval
 * latency runs from the first attempt to the ACK.
 */
export const make = (options: Options = {}): Effect.Effect<Poh["Service"], never, PohClient | DagMetrics> =>
  Effect.gen(function*() {
    const client = yield* PohClient
    const metrics = yield* DagMetrics
    const timeout = Duration.fromInputUnsafe(options.timeout ?? "2 seconds")
    const retry = options.retry ?? defaultRetry
    return Poh.of({
      request: Effect.fn("Poh.request")(function*(request: PohRequest) {
        yield* Effect.annotateCurrentSpan("dag.region", metrics.region(request.region))
        const started = yield* Clock.currentTimeNanos
        const ack = yield* client.stamp(request).pipe(
          Effect.timeoutOrElse({
            duration: timeout,
            orElse: () =>
              Effect.fail(new PohTimeout({ region: request.region, timeoutMillis: Duration.toMillis(timeout) }))
          }),
          Effect.tapError((error) =>
            metrics.recordPohRequest(request.region, error._tag === "PohTimeout" ? "timeout" : "error")
          ),
          Effect.retry(retry)
        )
        const elapsed = Number((yield* Clock.currentTimeNanos) - started) / 1e9
        yield* metrics.recordPohRequest(request.region, "ok")
        yield* metrics.recordPohAck(request.region, elapsed)
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
