/**
 * Presence over gRPC (`proto/presence.proto`, `presence.PresenceService`):
 * {@link layerServer} is the Presence service, a {@link Presence.Directory}
 * of the nodes that announced themselves; {@link layerHeartbeat} is a PoH
 * node announcing itself to it every interval (and leaving on release);
 * {@link layerClient} is the sending DAG's {@link Presence.Presence}, whose
 * look-ups cross processes: `Presence.onlineNodes →
 * presence.PresenceService/OnlineNodes (client) → (server)`. All three are
 * instrumented with {@link Grpc}. Heartbeats are timed like any call but not
 * traced: they run under an unsampled parent, so that a sampler respecting
 * its parent (the default) records no trace per heartbeat.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import * as PresenceGrpc from "dag-observability/dag/PresenceGrpc"
 *
 * // the Presence service
 * const PresenceLive = PresenceGrpc.layerServer({ host: "0.0.0.0", port: 50050 })
 * // a PoH node
 * const Heartbeat = PresenceGrpc.layerHeartbeat({
 *   address: "127.0.0.1:50050",
 *   node: { id: "poh-1", region: "eu-central", address: "127.0.0.1:50051" }
 * })
 * // the sending DAG
 * const Lookups = PresenceGrpc.layerClient({ address: "127.0.0.1:50050" })
 * ```
 */
import { randomBytes } from "node:crypto"
import { join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { TraceFlags } from "@opentelemetry/api"
import { Clock, Context, Duration, Effect, Layer, Schedule, Schema } from "effect"
import * as Grpc from "../Grpc.ts"
import * as GrpcServer from "../GrpcServer.ts"
import type { ListenError } from "../ListenError.ts"
import { Metrics } from "../Metrics.ts"
import * as Settings from "../Settings.ts"
import { DagMetrics, defaultRegions } from "./DagMetrics.ts"
import * as Presence from "./Presence.ts"

/** Where `presence.proto` lies: `proto/` at the package root. */
export const protoPath: string = join(import.meta.dirname, "..", "..", "proto", "presence.proto")

/** The full name of the service. */
export const serviceName = "presence.PresenceService"

let service: grpc.ServiceDefinition | undefined

/** The `presence.PresenceService` definition, loaded once. */
export const loadService = (): grpc.ServiceDefinition => {
  service ??= protoLoader.loadSync(protoPath, { defaults: true })[serviceName] as grpc.ServiceDefinition
  return service
}

const text = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max))

/** A node as the service accepts it: an id of 1–64 characters, a region of 1–64, a `host:port`. */
export const NodeMessage = Schema.Struct({
  id: text(64),
  region: text(64),
  address: text(255).check(Schema.makeFilter((value) => Settings.parseBind(value) !== undefined, {
    expected: "host:port"
  }))
})

const Announcement = Schema.Struct({ node: NodeMessage })
const Departure = Schema.Struct({ id: text(64) })
const OnlineNodesRequest = Schema.Struct({ region: text(64) })
const OnlineNodesReply = Schema.Struct({ nodes: Schema.Array(NodeMessage), elsewhere: Schema.Array(NodeMessage) })

/** The running Presence service. */
export class PresenceServer extends Context.Service<PresenceServer, {
  /** `host:port` it listens on, with the real port when bound to port 0. */
  readonly address: string
  readonly port: number
  /** Its table of nodes. */
  readonly directory: Presence.Directory
}>()("dag-observability/dag/PresenceServer") {}

/**
 * A Presence service started less than a TTL ago that has heard from no node yet: its empty table says nothing (the
 * nodes may not have sent their first heartbeat), so it answers UNAVAILABLE and the sending DAG keeps its last answer.
 */
class WarmingUp extends Schema.TaggedError<WarmingUp>()("WarmingUp", {
  since: Schema.Number,
  ttlMillis: Schema.Number
}) {
  override get message(): string {
    return `Presence started ${this.since} ms ago and has heard from no node yet (TTL ${this.ttlMillis} ms)`
  }
}

const describe = (node: Presence.PresenceNode) => `${node.id} (${node.region}, ${node.address})`

/** Options of {@link layerServer}. */
export interface ServerOptions {
  readonly host: string
  /** 0 picks a free port. */
  readonly port: number
  /** How long a node stays online after its last heartbeat; {@link Presence.defaultTtl} by default. */
  readonly ttl?: Duration.Input
  /**
   * The regions `presence_online_nodes` shows from the start (0 while none is online); the default regions unless
   * given. A region any node announces in is shown from then on, 0 once its last node is gone.
   */
  readonly regions?: ReadonlyArray<string>
  /** The setting `host` and `port` came from, named when they cannot be listened on. */
  readonly setting?: string
}

/**
 * The Presence service on `host:port`, traced and timed by
 * {@link Grpc.serverInterceptor}: `Announce` (a heartbeat), `Leave`,
 * `OnlineNodes` (UNAVAILABLE while, within a TTL of its start, no node has
 * announced itself yet: it cannot tell yet who is online). Nodes whose TTL
 * passes are dropped by a sweep every fifth of it (each logged), and `presence_online_nodes{region}` is the count online
 * per region (see `regions`), bounded by the DAG's metrics (`DAG_REGIONS`,
 * else `other`): 0 for a region that has lost all its nodes.
 */
export const layerServer = (
  options: ServerOptions
): Layer.Layer<PresenceServer, ListenError, Metrics | DagMetrics> =>
  Layer.effect(
    PresenceServer,
    Effect.gen(function*() {
      const metrics = yield* Metrics
      const dag = yield* DagMetrics
      const directory = yield* Presence.makeDirectory(options.ttl ?? Presence.defaultTtl)
      const gauge = Presence.onlineGauge(metrics)
      // Every region shown once: those given, and each a node has announced in since.
      const shown = new Set((options.regions ?? defaultRegions).map(dag.region))
      const count = Effect.map(directory.all, (nodes) => {
        const byRegion = new Map<string, number>()
        for (const node of nodes) {
          const region = dag.region(node.region)
          shown.add(region)
          byRegion.set(region, (byRegion.get(region) ?? 0) + 1)
        }
        for (const region of shown) gauge.set({ region }, byRegion.get(region) ?? 0)
      })
      yield* count
      const expire = Effect.flatMap(directory.expire, (gone) =>
        Effect.forEach(
          gone,
          (node) => Effect.logInfo(`presence: ${describe(node)} offline: no heartbeat for ${directory.ttlMillis} ms`)
        ).pipe(Effect.andThen(count)))
      yield* Effect.forkScoped(
        Effect.repeat(expire, Schedule.spaced(Math.max(100, Math.floor(directory.ttlMillis / 5))))
      )
      const announce = yield* Grpc.unary({
        request: Announcement,
        handler: ({ node }) =>
          Effect.flatMap(directory.announce(node), (joined) =>
            (joined ? Effect.logInfo(`presence: ${describe(node)} online`).pipe(Effect.andThen(count)) : Effect.void)
              .pipe(Effect.as({ ttlMs: directory.ttlMillis })))
      })
      const leave = yield* Grpc.unary({
        request: Departure,
        handler: ({ id }) =>
          Effect.flatMap(directory.leave(id), (wasOnline) =>
            (wasOnline ? Effect.logInfo(`presence: ${id} left`).pipe(Effect.andThen(count)) : Effect.void)
              .pipe(Effect.as({ wasOnline })))
      })
      const startedAt = yield* Clock.currentTimeMillis
      const onlineNodes = yield* Grpc.unary({
        request: OnlineNodesRequest,
        handler: ({ region }) =>
          Effect.gen(function*() {
            const since = (yield* Clock.currentTimeMillis) - startedAt
            if (since < directory.ttlMillis && !(yield* directory.heard)) {
              return yield* new WarmingUp({ since, ttlMillis: directory.ttlMillis })
            }
            return yield* directory.online(region)
          }),
        status: () => grpc.status.UNAVAILABLE
      })
      const port = yield* GrpcServer.serve({
        ...options,
        name: "Presence gRPC",
        services: [[loadService(), { Announce: announce, Leave: leave, OnlineNodes: onlineNodes }]]
      })
      return PresenceServer.of({ address: Settings.formatAddress(options.host, port), port, directory })
    })
  )

/** One unary call of `presence.PresenceService` on `client`: the response, or the status it failed with. */
const call = (client: grpc.Client, method: string, request: object, deadlineMillis: number) =>
  Effect.callback<unknown, grpc.ServiceError>((resume) => {
    const definition = loadService()[method]!
    const pending = client.makeUnaryRequest(
      definition.path,
      definition.requestSerialize,
      definition.responseDeserialize,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + deadlineMillis },
      (error, response) => resume(error === null ? Effect.succeed(response) : Effect.fail(error))
    )
    return Effect.sync(() => pending.cancel())
  })

/** A channel to the Presence service at `address`, traced and timed, closed with the scope. */
const channel = (address: string) =>
  Effect.acquireRelease(
    Effect.map(
      Grpc.clientInterceptor({ address }),
      (traced) => new grpc.Client(address, grpc.credentials.createInsecure(), { interceptors: [traced] })
    ),
    (client) => Effect.sync(() => client.close())
  )

/** Options of {@link layerClient}. */
export interface ClientOptions {
  /** The Presence service: `host:port`. */
  readonly address: string
  /** How long a look-up may take; 1 second by default. A slower one fails with {@link Presence.PresenceTimeout}. */
  readonly timeout?: Duration.Input
  /** How long a region's last answer serves while look-ups fail ({@link Presence.Options}); 30 s by default. */
  readonly lastAnswerFor?: Duration.Input
}

/**
 * The sending DAG's {@link Presence.Presence} over gRPC: each look-up is a
 * call of `OnlineNodes` (its CLIENT span under `Presence.onlineNodes`, the
 * Presence service's SERVER span under it). No answer within `timeout` is
 * {@link Presence.PresenceTimeout}; any other status (the service down:
 * UNAVAILABLE) or a malformed answer is {@link Presence.PresenceUnavailable}.
 */
export const layerClient = (options: ClientOptions): Layer.Layer<Presence.Presence, never, Metrics | DagMetrics> =>
  Layer.effect(
    Presence.Presence,
    Effect.gen(function*() {
      const client = yield* channel(options.address)
      const timeout = Duration.toMillis(Duration.fromInputUnsafe(options.timeout ?? "1 second"))
      const decode = Schema.decodeUnknownEffect(OnlineNodesReply)
      return yield* Presence.make((region) =>
        call(client, "OnlineNodes", { region }, timeout).pipe(
          Effect.mapError((error): Presence.PresenceError =>
            error.code === grpc.status.DEADLINE_EXCEEDED
              ? new Presence.PresenceTimeout({ region, timeoutMillis: timeout })
              : new Presence.PresenceUnavailable({ region, reason: `${Grpc.statusName(error.code)}: ${error.details}` })
          ),
          Effect.flatMap((reply) =>
            Effect.mapError(
              decode(reply),
              (error) => new Presence.PresenceUnavailable({ region, reason: `malformed answer: ${error.message}` })
            )
          )
        ), options.lastAnswerFor === undefined ? {} : { lastAnswerFor: options.lastAnswerFor })
    })
  )

/** Options of {@link layerHeartbeat}. */
export interface HeartbeatOptions {
  /** The Presence service: `host:port`. */
  readonly address: string
  /** The node announced: its id, region and the `host:port` it serves PoH on. */
  readonly node: Presence.PresenceNode
  /** Time between heartbeats; 1 second by default (keep it well below the service's TTL). */
  readonly interval?: Duration.Input
}

/** Runs `effect` under a parent span that is not sampled: its calls are timed but, with a parent-based sampler, not traced. */
const untraced = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  OtelTracer.withSpanContext(effect, {
    traceId: randomBytes(16).toString("hex"),
    spanId: randomBytes(8).toString("hex"),
    traceFlags: TraceFlags.NONE,
    isRemote: false
  })

/**
 * A PoH node announcing itself to Presence: once when the layer is built (not
 * waiting for Presence: a node may start first), then every `interval`;
 * a failed heartbeat is logged when Presence stops answering and again when it
 * answers once more, not each time. Release tells Presence the node leaves
 * (within 1 s, ignored if Presence is down), so it is offline at once.
 */
export const layerHeartbeat = (options: HeartbeatOptions): Layer.Layer<never, never, Metrics> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const client = yield* channel(options.address)
    const node = options.node
    const interval = Duration.fromInputUnsafe(options.interval ?? "1 second")
    const deadline = Math.max(100, Duration.toMillis(interval))
    let reachable: boolean | undefined
    const beat = untraced(call(client, "Announce", { node }, deadline)).pipe(
      Effect.matchEffect({
        onFailure: (error) => {
          const was = reachable
          reachable = false
          return was === false ? Effect.void : Effect.logWarning(
            `heartbeat: Presence at ${options.address} did not take ${node.id}'s heartbeat ` +
              `(${Grpc.statusName(error.code)}: ${error.details}); retrying every ${Duration.format(interval)}`
          )
        },
        onSuccess: () => {
          const was = reachable
          reachable = true
          return was === true ? Effect.void : Effect.logInfo(
            `heartbeat: ${node.id} (${node.region}, ${node.address}) announced to Presence at ${options.address}`
          )
        }
      })
    )
    yield* Effect.addFinalizer(() => untraced(call(client, "Leave", { id: node.id }, 1_000)).pipe(Effect.ignore))
    yield* Effect.forkScoped(Effect.repeat(beat, Schedule.spaced(interval)))
  }))
