/**
 * The sending DAG process: its HTTP API (examples/SendingDagApi.ts) on
 * `SENDING_DAG_BIND` (default `0.0.0.0:8081`) in `SENDING_DAG_WORKERS`
 * processes (default: the machine's available parallelism) sharing that port
 * through `node:cluster` (examples/Workers.ts). Each transaction asks the
 * Presence service at `PRESENCE_ADDRESS` who is online in its region (its
 * last answer serving up to `PRESENCE_LAST_ANSWER_TTL`, default 30 s, while
 * Presence fails) and goes to one of those PoH nodes over gRPC, failing over
 * to the next; without `PRESENCE_ADDRESS` it goes to the one PoH node at
 * `POH_ADDRESS` (default `127.0.0.1:50051`), which is also the node asked
 * when Presence names none. MongoDB at `MONGODB_URI` — or, when unset, an
 * in-memory store per worker (said in the log) — and `ObservabilityLive`.
 * Every worker serves its own `/metrics` (one scrape target each, so counts
 * stay exact and exemplars keep their traces): the first on
 * `SENDING_DAG_METRICS_BIND` (default `0.0.0.0:8000`), the others on free
 * ports of the same host, each printed. SIGTERM to the primary drains every
 * worker and exits 0. Started by the network's launcher, it tells it where
 * it listens (`metrics`, `metrics.2`, …).
 */
import { availableParallelism } from "node:os"
import { Config, Effect, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { Http, Main, MetricsServer, ObservabilityLive, Settings } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import * as MongoMonitor from "../src/MongoMonitor.ts"
import { DagMetrics, Poh, Presence, Storage } from "../src/dag/index.ts"
import * as MongoStorage from "../src/dag/MongoStorage.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import * as PresenceGrpc from "../src/dag/PresenceGrpc.ts"
import { announce, hostPort } from "./NodeProcess.ts"
import * as SendingDagApi from "./SendingDagApi.ts"
import { supervise, workerIndex } from "./Workers.ts"

const metricsVariable = "SENDING_DAG_METRICS_BIND"

const settings = Settings.read({
  bind: Settings.setting("SENDING_DAG_BIND", { host: "0.0.0.0", port: 8081 }, Settings.bind("0.0.0.0:8081")),
  presence: Settings.optional("PRESENCE_ADDRESS", hostPort("the Presence service")),
  pohAddress: Settings.optional("POH_ADDRESS", hostPort("the PoH node asked when Presence names none")),
  lastAnswerFor: Presence.lastAnswerFor,
  regions: DagMetrics.regions,
  nodes: DagMetrics.nodes,
  mongodbUri: Settings.mongodbUri
})

/** `SENDING_DAG_WORKERS`: how many processes serve the HTTP API; the machine's available parallelism by default. */
const workers = Settings.setting("SENDING_DAG_WORKERS", availableParallelism(), {
  expected: "a whole number of processes from 1 to 64",
  parse: (text) => /^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 64 ? Number(text) : undefined
})

/**
 * MongoDB with its monitor when `MONGODB_URI` is set (and `MONGODB_CONNECT_TIMEOUT`,
 * `MONGODB_SERVER_SELECTION_TIMEOUT`), else memory (and a log line saying so).
 */
const StorageLive = (uri: Option.Option<string>) =>
  Option.match(uri, {
    onNone: () =>
      Layer.merge(
        Storage.layerMemory,
        Layer.effectDiscard(Effect.logWarning(
          "MONGODB_URI is unset: transactions are kept in memory and lost when the process stops"
        ))
      ),
    onSome: () => Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(Layer.provideMerge(Mongo.layerConfig()))
  })

const SendingDag = Layer.unwrap(Effect.gen(function*() {
  const { bind, presence, pohAddress, lastAnswerFor, regions, nodes, mongodbUri } = yield* settings
  const defaultNode = Option.orElse(pohAddress, () => Option.isNone(presence) ? Option.some("127.0.0.1:50051") : Option.none())
  const PresenceLive = Option.match(presence, {
    onNone: () => Presence.layerStatic({ nodes: [] }),
    onSome: (address) => PresenceGrpc.layerClient({ address, lastAnswerFor })
  })
  yield* Effect.log(
    `sending-dag${workerIndex() === undefined ? "" : ` worker ${workerIndex()}`}: HTTP on ${bind.host}:${bind.port}, ` +
      Option.match(presence, {
        onNone: () => `PoH node at ${Option.getOrThrow(defaultNode)} (no PRESENCE_ADDRESS)`,
        onSome: (address) => `Presence at ${address}${Option.match(defaultNode, { onNone: () => "", onSome: (at) => `, default PoH node ${at}` })}`
      })
  )
  return SendingDagApi.layer.pipe(
    Layer.provideMerge(Http.layerServer(bind, { setting: "SENDING_DAG_BIND" })),
    Layer.provide(Poh.layer().pipe(Layer.provide(PohGrpc.layerClient(Option.match(defaultNode, {
      onNone: () => ({}),
      onSome: (address) => ({ address })
    }))))),
    Layer.provide(PresenceLive),
    Layer.provide(StorageLive(mongodbUri)),
    Layer.provideMerge(DagMetrics.layer({ regions, nodes }))
  )
}))

/**
 * `/metrics` of this process. A worker listens on its own port (`exclusive`: not the port the cluster shares), the
 * first on `SENDING_DAG_METRICS_BIND`, the others on a free one.
 */
const metricsConfig = Config.map(
  MetricsServer.config(metricsVariable, { host: "0.0.0.0", port: 8000 }),
  (options) => {
    const index = workerIndex()
    if (index === undefined) return options
    const port = index === 1 ? options.bind.port : 0
    // Node's listen options pass through to `server.listen`.
    return { ...options, bind: { ...options.bind, port, exclusive: true } as Settings.Bind }
  }
)

/** One process serving the API. */
const serve = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const metrics = yield* MetricsServer.MetricsServer
  yield* announce({ http: HttpServer.formatAddress(server.address), metrics: metrics.url })
  return yield* Effect.never
}).pipe(
  Effect.provide(SendingDag),
  Effect.provide(ObservabilityLive("sending-dag", { metricsServer: metricsConfig }))
)

/** `count` workers serving the API; where they listen told once all are ready. */
const primary = (count: number) =>
  Effect.gen(function*() {
    const { endpoints, watch } = yield* supervise(count)
    const metrics = Object.fromEntries(
      endpoints.map((at, i) => [i === 0 ? "metrics" : `metrics.${i + 1}`, at["metrics"]!] as const)
    )
    yield* Effect.log(
      `sending-dag: ${count} workers on ${endpoints[0]!["http"]}; metrics at ${Object.values(metrics).join(", ")}`
    )
    yield* announce({ http: endpoints[0]!["http"]!, ...metrics })
    return yield* watch
  }).pipe(Effect.scoped)

Effect.gen(function*() {
  const count = yield* Settings.read(workers)
  return yield* (count === 1 || workerIndex() !== undefined ? serve : primary(count))
}).pipe(Main.runMain)
