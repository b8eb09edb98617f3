/**
 * PoH over gRPC (`proto/poh.proto`, `poh.PohService/Request`): {@link layerClient}
 * is the sending DAG's {@link PohClient}, {@link layerServer} the PoH node
 * serving a {@link PohSequencer}. Both are instrumented with {@link Grpc}, so
 * one transaction is one trace across the two processes:
 * `Poh.request → poh.PohService/Request (client) → poh.PohService/Request (server) → Poh.sequence`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Poh } from "dag-observability/dag"
 * import * as PohGrpc from "dag-observability/dag/PohGrpc"
 *
 * // the sending DAG
 * const PohLive = Poh.layer().pipe(Layer.provide(PohGrpc.layerClient({ address: "127.0.0.1:50051" })))
 *
 * // the PoH node
 * const NodeLive = PohGrpc.layerServer({ host: "0.0.0.0", port: 50051 }).pipe(
 *   Layer.provide(Poh.layerSequencer("poh-1"))
 * )
 * ```
 */
import { join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Cause, Context, Duration, Effect, Layer, RcMap, Schema } from "effect"
import * as Grpc from "../Grpc.ts"
import * as GrpcServer from "../GrpcServer.ts"
import type { Metrics } from "../Metrics.ts"
import type { ListenError } from "../ListenError.ts"
import { formatAddress } from "../Settings.ts"
import { PohAck, PohClient, type PohRequest, PohSequencer, PohUnavailable } from "./Poh.ts"

/** Where `poh.proto` lies: `proto/` at the package root, beside `src/` and `dist/`. */
export const protoPath: string = join(import.meta.dirname, "..", "..", "proto", "poh.proto")

/** The full name of the service. */
export const serviceName = "poh.PohService"

let service: grpc.ServiceDefinition | undefined

/** The `poh.PohService` definition, loaded once; `uint64 seq` arrives as a JS number. */
export const loadService = (): grpc.ServiceDefinition => {
  service ??= protoLoader.loadSync(protoPath, { longs: Number, defaults: true })[serviceName] as grpc.ServiceDefinition
  return service
}

const text = (max: number) => Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(max))

/** A PoH_REQUEST as the node accepts it: `tx_id` 1–128 characters, `region` 1–64. */
export const PohRequestMessage = Schema.Struct({
  txId: text(128),
  region: text(64)
})

/** The running PoH node. */
export class PohNode extends Context.Service<PohNode, {
  /** `host:port` it listens on, with the real port when bound to port 0. */
  readonly address: string
  readonly port: number
}>()("dag-observability/dag/PohNode") {}

/** Options of {@link layerServer}. */
export interface ServerOptions extends Omit<GrpcServer.Options, "name" | "services"> {}

/**
 * The PoH node: serves `poh.PohService` on `host:port` with the current
 * {@link PohSequencer}, traced and timed by {@link Grpc.serverInterceptor}
 * (span `Poh.sequence` under each call's server span), bounded as
 * {@link GrpcServer} bounds its servers (connection cap, handshake, idle and
 * age timeouts). Release stops taking calls and waits for those in flight up
 * to `shutdownTimeout`.
 */
export const layerServer = (
  options: ServerOptions
): Layer.Layer<PohNode, ListenError, PohSequencer | Metrics> =>
  Layer.effect(
    PohNode,
    Effect.gen(function*() {
      const sequencer = yield* PohSequencer
      const request = yield* Grpc.unary({
        request: PohRequestMessage,
        handler: (message) => sequencer.sequence(message.txId)
      })
      const port = yield* GrpcServer.serve({ ...options, name: "PoH gRPC", services: [[loadService(), { Request: request }]] })
      return PohNode.of({ address: formatAddress(options.host, port), port })
    })
  )

/** Options of {@link layerClient}. */
export interface ClientOptions {
  /** The node asked when a request names none: `host:port`; without it such a request fails. */
  readonly address?: string
  /** The gRPC deadline of each call; 5 seconds by default (`Poh.layer`'s own timeout, shorter, cancels first). */
  readonly deadline?: Duration.Input
  /** The most nodes with an open channel at once, the default one included; 16 by default. */
  readonly maxNodes?: number
  /** How long a channel to a node other than the default one stays open unused; 1 minute by default. */
  readonly idleTimeToLive?: Duration.Input
}

const unavailable = (request: PohRequest, reason: string) => new PohUnavailable({ region: request.region, reason })

/** A channel's key: the node's address and, when known, its id (a restarted node may come back elsewhere). */
const channelKey = (address: string, node: string | undefined) => JSON.stringify([address, node ?? null])

/**
 * The sending DAG's {@link PohClient} over gRPC, traced and timed by
 * {@link Grpc.clientInterceptor}: each call's CLIENT span names the node it
 * went to (`dag.poh.node`) beside `server.address`/`server.port`. A request
 * goes to the node Presence named (`address`, `node`) or else to
 * `options.address`: one channel per node, at most `maxNodes` at once (a
 * request to one more fails with {@link PohUnavailable} rather than growing
 * without bound), idle ones closed after `idleTimeToLive`, all closed with the
 * layer. Any status but OK (UNAVAILABLE, DEADLINE_EXCEEDED, …) and a
 * malformed ACK fail with {@link PohUnavailable}; interrupting a call cancels
 * it.
 */
export const layerClient = (options: ClientOptions = {}): Layer.Layer<PohClient, never, Metrics> =>
  Layer.effect(
    PohClient,
    Effect.gen(function*() {
      const method = loadService()["Request"]!
      const deadline = Duration.toMillis(Duration.fromInputUnsafe(options.deadline ?? "5 seconds"))
      const channels = yield* RcMap.make({
        lookup: (key: string) => {
          const [address, node] = JSON.parse(key) as [string, string | null]
          return Effect.acquireRelease(
            Effect.flatMap(
              Grpc.clientInterceptor({ address, ...(node === null ? {} : { attributes: { "dag.poh.node": node } }) }),
              (traced) =>
                Effect.try({
                  try: () => new grpc.Client(address, grpc.credentials.createInsecure(), { interceptors: [traced] }),
                  catch: (error) => `bad node address ${JSON.stringify(address)}: ${String(error)}`
                })
            ),
            (client) => Effect.sync(() => client.close())
          )
        },
        capacity: options.maxNodes ?? 16,
        idleTimeToLive: options.idleTimeToLive ?? "1 minute"
      })
      // The default node's channel stays open as long as the layer.
      if (options.address !== undefined) yield* RcMap.get(channels, channelKey(options.address, undefined)).pipe(Effect.ignore)
      const call = (client: grpc.Client, request: PohRequest) =>
        Effect.callback<unknown, PohUnavailable>((resume) => {
          const pending = client.makeUnaryRequest(
            method.path,
            method.requestSerialize,
            method.responseDeserialize,
            { txId: request.txId, region: request.region },
            new grpc.Metadata(),
            { deadline: Date.now() + deadline },
            (error, response) =>
              resume(
                error === null
                  ? Effect.succeed(response)
                  : Effect.fail(unavailable(request, `${Grpc.statusName(error.code)}: ${error.details}`))
              )
          )
          return Effect.sync(() => pending.cancel())
        })
      return PohClient.of({
        stamp: (request) => {
          const address = request.address ?? options.address
          if (address === undefined) return Effect.fail(unavailable(request, "no PoH node online and no default node"))
          const key = request.address === undefined ? channelKey(address, undefined) : channelKey(address, request.node)
          return RcMap.get(channels, key).pipe(
            Effect.catch((error) =>
              Effect.fail(
                unavailable(
                  request,
                  Cause.isExceededCapacityError(error) ? `more than ${channels.capacity} PoH nodes in use` : error
                )
              )
            ),
            Effect.flatMap((client) => call(client, request)),
            Effect.flatMap(Schema.decodeUnknownEffect(PohAck)),
            Effect.catchTag("SchemaError", (error) => Effect.fail(unavailable(request, `malformed PoH_ACK: ${error}`))),
            Effect.scoped
          )
        }
      })
    })
  )
