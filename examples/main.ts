/**
 * The single-process example (`npm run start:example`): transactions committed at a
 * steady rate through an in-process PoH sequencer and an in-memory store,
 * each one traced and exported over OTLP gRPC, metrics served at `/metrics`.
 * Ctrl-C (or SIGTERM) stops it cleanly.
 *
 * Environment: SPEC §3 (`OTEL_EXPORTER_OTLP_ENDPOINT`, `PROMETHEUS_BIND`, …),
 * plus `DAG_EXAMPLE_RATE` (transactions per second, default 10) and
 * `DAG_EXAMPLE_COUNT` (stop after that many, default: run until stopped).
 */
import { Effect, Layer, Schedule } from "effect"
import { Main, MetricsServer, ObservabilityLive, Settings } from "../src/index.ts"
import { DagMetrics, Poh, Presence, Storage, Transaction } from "../src/dag/index.ts"

const rate = Settings.setting("DAG_EXAMPLE_RATE", 10, {
  ...Settings.positive,
  expected: "a number of transactions per second above 0"
})
const count = Settings.setting("DAG_EXAMPLE_COUNT", Infinity, {
  expected: "a whole number above 0",
  parse: (text) => {
    const number = Settings.positive.parse(text)
    return number !== undefined && Number.isInteger(number) ? number : undefined
  }
})

const regions = ["eu-central", "us-east", "us-west", "ap-south"]

const nodes = regions.map((region, i) => ({ id: `poh-${i + 1}`, region, address: "in-process" }))

/** One transaction, traced as the server span an HTTP API would open. */
const submit = (n: number) =>
  Transaction.commit(
    new Transaction.Transaction({ from: `wallet-${n % 7}`, to: `wallet-${(n + 3) % 7}`, amount: 1 + (n % 50), region: regions[n % regions.length]! })
  ).pipe(
    Effect.withSpan("POST /tx", { kind: "server", attributes: { "http.request.method": "POST", "http.route": "/tx" } }),
    Effect.catch((error) => Effect.logWarning(`transaction ${n} failed: ${error.message}`))
  )

const program = Effect.gen(function*() {
  const metrics = yield* MetricsServer.MetricsServer
  const { perSecond, total } = yield* Settings.read({ perSecond: rate, total: count })
  yield* Effect.log(`dag-example: committing ${perSecond} tx/s; metrics at ${metrics.url}; Ctrl-C stops`)
  let n = 0
  yield* Effect.suspend(() => submit(n++)).pipe(
    Effect.repeat({ schedule: Schedule.spaced(1000 / perSecond), times: Number.isFinite(total) ? total - 1 : Infinity })
  )
  yield* Effect.log(`dag-example: committed ${n} transactions`)
})

const Workflows = Layer.mergeAll(
  Poh.layerInProcess("poh-local"),
  Storage.layerMemory,
  Presence.layerStatic({ nodes })
).pipe(Layer.provideMerge(DagMetrics.layerConfig()))

program.pipe(
  Effect.provide(Workflows),
  Effect.provide(ObservabilityLive("dag-example")),
  Main.runMain
)
