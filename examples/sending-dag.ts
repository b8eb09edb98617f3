/**
 * The sending DAG process: its HTTP API (examples/SendingDagApi.ts) on
 * `SENDING_DAG_BIND` (default `0.0.0.0:8081`), a PoH node over gRPC at
 * `POH_ADDRESS` (default `127.0.0.1:50051`), Presence with a failure ratio of
 * `PRESENCE_FAILURE_RATIO` (default 0.05), MongoDB at `MONGODB_URI` — or, when
 * unset, an in-memory store (said in the log) — and `ObservabilityLive` with
 * its own `/metrics` on `SENDING_DAG_METRICS_BIND` (default `0.0.0.0:8000`).
 * Started by the network's launcher, it tells it where it listens.
 */
import { Effect, Layer, Option } from "effect"
import { HttpServer } from "effect/http"
import { Http, Main, MetricsServer, ObservabilityLive, Settings } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import * as MongoMonitor from "../src/MongoMonitor.ts"
import { DagMetrics, Poh, Presence, Storage } from "../src/dag/index.ts"
import * as MongoStorage from "../src/dag/MongoStorage.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import { announce } from "./NodeProcess.ts"
import * as SendingDagApi from "./SendingDagApi.ts"

const settings = Settings.read({
  bind: Settings.setting("SENDING_DAG_BIND", { host: "0.0.0.0", port: 8081 }, Settings.bind("0.0.0.0:8081")),
  pohAddress: Settings.setting("POH_ADDRESS", "127.0.0.1:50051", {
    expected: "host:port of the PoH node",
    parse: (text) => Settings.parseBind(text) === undefined ? undefined : text
  }),
  failureRatio: Settings.setting("PRESENCE_FAILURE_RATIO", 0.05, Settings.ratio),
  regions: DagMetrics.regions,
  mongodbUri: Settings.mongodbUri
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
  const { bind, pohAddress, failureRatio, regions, mongodbUri } = yield* settings
  const nodes = regions.map((region) => ({ id: `poh@${pohAddress}`, region, address: pohAddress }))
  yield* Effect.log(`sending-dag: HTTP on ${bind.host}:${bind.port}, PoH node at ${pohAddress}`)
  return SendingDagApi.layer.pipe(
    Layer.provideMerge(Http.layerServer(bind, { setting: "SENDING_DAG_BIND", createServer: SendingDagApi.createHttpServer })),
    Layer.provide(Poh.layer().pipe(Layer.provide(PohGrpc.layerClient({ address: pohAddress })))),
    Layer.provide(Presence.layerStatic({ nodes, failureRatio })),
    Layer.provide(StorageLive(mongodbUri)),
    Layer.provideMerge(DagMetrics.layer({ regions }))
  )
}))

Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const metrics = yield* MetricsServer.MetricsServer
  yield* announce({ http: HttpServer.formatAddress(server.address), metrics: metrics.url })
  return yield* Effect.never
}).pipe(
  Effect.provide(SendingDag),
  Effect.provide(ObservabilityLive("sending-dag", {
    metricsServer: MetricsServer.config("SENDING_DAG_METRICS_BIND", { host: "0.0.0.0", port: 8000 })
  })),
  Main.runMain
)
