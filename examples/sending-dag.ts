/**
 * The sending DAG process: its HTTP API (examples/SendingDagApi.ts) on
 * `SENDING_DAG_BIND` (default `0.0.0.0:8081`), a PoH node over gRPC at
 * `POH_ADDRESS` (default `127.0.0.1:50051`), Presence with a failure ratio of
 * `PRESENCE_FAILURE_RATIO` (default 0.05), MongoDB at `MONGODB_URI` — or, when
 * unset, an in-memory store (said in the log) — and `ObservabilityLive` with
 * `/metrics` on `PROMETHEUS_BIND` (default `0.0.0.0:8000`).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer, Option } from "effect"
import { Main, ObservabilityLive, Settings } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import * as MongoMonitor from "../src/MongoMonitor.ts"
import { DagMetrics, Poh, Presence, Storage } from "../src/dag/index.ts"
import * as MongoStorage from "../src/dag/MongoStorage.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
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

/** MongoDB with its monitor when a URI is configured, else memory (and a log line saying so). */
const StorageLive = (uri: Option.Option<string>) =>
  Option.match(uri, {
    onNone: () =>
      Layer.merge(
        Storage.layerMemory,
        Layer.effectDiscard(Effect.logWarning(
          "MONGODB_URI is unset: transactions are kept in memory and lost when the process stops"
        ))
      ),
    onSome: (value) =>
      Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(Layer.provideMerge(Mongo.layer(value)))
  })

const SendingDag = Layer.unwrap(Effect.gen(function*() {
  const { bind, pohAddress, failureRatio, regions, mongodbUri } = yield* settings
  const nodes = regions.map((region) => ({ id: `poh@${pohAddress}`, region, address: pohAddress }))
  yield* Effect.log(`sending-dag: HTTP on ${bind.host}:${bind.port}, PoH node at ${pohAddress}`)
  return SendingDagApi.layer.pipe(
    Layer.provide(NodeHttpServer.layer(() => SendingDagApi.createHttpServer(), bind)),
    Layer.provide(Poh.layer().pipe(Layer.provide(PohGrpc.layerClient({ address: pohAddress })))),
    Layer.provide(Presence.layerStatic({ nodes, failureRatio })),
    Layer.provide(StorageLive(mongodbUri)),
    Layer.provideMerge(DagMetrics.layer({ regions }))
  )
}))

Layer.launch(SendingDag).pipe(
  Effect.provide(ObservabilityLive("sending-dag")),
  Main.runMain
)
