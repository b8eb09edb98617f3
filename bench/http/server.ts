/**
 * One contender of `bench/http.ts`, `bench/real.ts` and `bench/collector.ts`: the sending DAG's routes
 * (examples/SendingDagApi.ts: `POST /tx` decodes the body, asks Presence, gets a PoH stamp, stores the transaction,
 * 6 metric updates) on an Effect HTTP server on a free loopback port, in one of four set-ups (argv[2]):
 *
 * - `bare`: `HttpRouter.serve`, Effect's tracer off;
 * - `ours`: `Http.serve` and this library's tracing (`Tracing.layerProvider`, every request sampled) to an exporter
 *   that counts and discards;
 * - `ours-log`: `ours` with the library's logger installed (`Logging.layer`, JSON lines) and the API's one log line per
 *   request (`transaction … committed`, inside the request's server span), the lines going to a file in the OS's
 *   temporary directory (stdout is the protocol with the runner); the report counts them and those carrying a
 *   `trace_id`. The other set-ups log warnings only;
 * - `sdk-node`: `HttpRouter.serve` with Effect's HTTP span off, `@opentelemetry/sdk-node` and its HTTP
 *   instrumentation for the server span (load with `--import bench/http/sdk-node.ts`), `@effect/opentelemetry`'s
 *   global tracer for the workflow spans, and a hand-written middleware observing the prom-client latency histogram;
 * - `otlp`: `Http.serve` and `ObservabilityLive` as examples/sending-dag.ts deploys it: tracing over OTLP gRPC to the
 *   collector the environment names (`OTEL_EXPORTER_OTLP_ENDPOINT`, …), `/metrics` on `PROMETHEUS_BIND`.
 *
 * The PoH stamp comes from an in-process sequencer, or over gRPC from the PoH node at `POH_ADDRESS` when set
 * (`PohGrpc.layerClient`, with the library's client interceptor); the store is in memory, or MongoDB at `MONGODB_URI`
 * when set (`MongoStorage` with `MongoMonitor`). Prints `{"port":…}` once listening; answers each `report` line on
 * stdin with what it recorded, as one JSON line (bench/http/child.ts).
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { NodeRuntime } from "@effect/platform-node"
import { mkdtempSync, openSync, writeSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Console, Effect, Layer, References } from "effect"
import { HttpMiddleware, HttpRouter, HttpServer, HttpServerRequest } from "effect/http"
import * as SendingDagApi from "../../examples/SendingDagApi.ts"
import { DagMetrics, Poh, Presence, Storage } from "../../src/dag/index.ts"
import * as MongoStorage from "../../src/dag/MongoStorage.ts"
import * as PohGrpc from "../../src/dag/PohGrpc.ts"
import { Http, Logging, Metrics, ObservabilityLive, Tracing } from "../../src/index.ts"
import * as Mongo from "../../src/Mongo.ts"
import * as MongoMonitor from "../../src/MongoMonitor.ts"
import { countingProcessor, makeTally, recorded, type SpanTally, total } from "../support.ts"
import { exportReport, reporting, tracerOff } from "./child.ts"

type Kind = "bare" | "ours" | "ours-log" | "sdk-node" | "otlp"
const kind = process.argv[2] as Kind
if (!["bare", "ours", "ours-log", "sdk-node", "otlp"].includes(kind)) {
  throw new Error(`usage: server.ts bare|ours|ours-log|sdk-node|otlp, not ${kind}`)
}

const pohAddress = process.env["POH_ADDRESS"]

// `Metrics.layer` is the one `ObservabilityLive` provides too: one registry, since layers are shared by reference.
const Workflows = Layer.mergeAll(
  pohAddress === undefined
    ? Poh.layerInProcess("bench")
    : Poh.layer().pipe(Layer.provide(PohGrpc.layerClient({ address: pohAddress }))),
  process.env["MONGODB_URI"] === undefined
    ? Storage.layerMemory
    : Layer.merge(MongoStorage.layer, MongoMonitor.layer).pipe(Layer.provideMerge(Mongo.layerConfig())),
  Presence.layerStatic({
    nodes: [{ id: "n1", region: "eu-central", address: pohAddress ?? "in-process" }],
    failureRatio: 0
  })
).pipe(Layer.provideMerge(DagMetrics.layer()), Layer.provideMerge(Metrics.layer))

const Server = Http.layerServer({ host: "127.0.0.1", port: 0 })

const quiet = { disableLogger: true, disableListenLog: true }

const withoutEffectHttpSpan = Layer.succeed(HttpMiddleware.TracerDisabledWhen)(() => true)

const pathOf = (url: string) => {
  const end = url.indexOf("?")
  return end === -1 ? url : url.slice(0, end)
}

/** What a Node user writes to get a latency histogram: time each request, observe it with method, path and status. */
const PromMiddleware = HttpRouter.middleware(
  Effect.map(Metrics.Metrics, (metrics) => {
    // The histogram `Http.middleware` observes, so that the report counts the same series.
    const duration = Http.durationHistogram(metrics)
    return (httpApp) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const started = process.hrtime.bigint()
        const response = yield* httpApp
        // The registry's histograms keep exemplars, so prom-client wants the object form; none is given here.
        duration.observe({
          labels: { method: request.method, route: pathOf(request.url), status_code: response.status },
          value: Number(process.hrtime.bigint() - started) / 1e9
        })
        return response
      })
  }),
  { global: true }
)

/** The lines the logger wrote (to a file: stdout is the protocol), and how many carry a trace id. */
const written = { lines: 0, traced: 0 }
const LogToFile = Layer.unwrap(Effect.sync(() => {
  // Written synchronously, as Node.js writes process.stdout to a file or a pipe on Linux.
  const file = openSync(join(mkdtempSync(join(tmpdir(), "bench-log-")), "server.log"), "w")
  const counting = Object.assign(Object.create(globalThis.console) as Console.Console, {
    log: (line: string) => {
      written.lines += 1
      if (line.includes("\"trace_id\"")) written.traced += 1
      writeSync(file, `${line}\n`)
    }
  })
  return Layer.merge(
    Logging.layer({ serviceName: "bench-ours-log", format: "json" }),
    Layer.succeed(Console.Console)(counting)
  )
}))

const ourTally = makeTally()
const ourProcessor = countingProcessor(ourTally)

const flush = async () => {
  if (kind === "ours" || kind === "ours-log") await ourProcessor.forceFlush()
  if (kind === "sdk-node") await (await import("./sdk-node.ts")).processor.forceFlush()
}

const bare = tracerOff()

/** The port once listening; then what the server recorded, for each `report`. */
const reportingWith = (tally: SpanTally | undefined) =>
  reporting(
    Effect.gen(function*() {
      const { address } = yield* HttpServer.HttpServer
      if (address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
      return address.port
    }),
    async (registry) => {
      await flush()
      const serverSpans = [...(tally?.byName.values() ?? [])].filter((entry) => entry.kind === 1)
      return {
        committed: await total(registry, "tx_committed_total"),
        httpObserved: await recorded(registry, "http_server_request_duration_seconds"),
        spans: tally?.total ?? 0,
        serverSpans: serverSpans.reduce((sum, entry) => sum + entry.count, 0),
        effectSpans: bare.started(),
        byName: Object.fromEntries(tally?.byName ?? []),
        logLines: written.lines,
        tracedLogLines: written.traced,
        ...(await exportReport(registry))
      }
    }
  )

const app = async () => {
  switch (kind) {
    case "bare":
      return Layer.merge(HttpRouter.serve(SendingDagApi.Routes, quiet), reportingWith(undefined)).pipe(
        Layer.provide(Server.pipe(Layer.provideMerge(Workflows))),
        Layer.provide(bare.layer)
      )
    case "ours":
    case "ours-log": {
      const served = Layer.merge(SendingDagApi.layer, reportingWith(ourTally)).pipe(
        Layer.provide(Server.pipe(Layer.provideMerge(Workflows))),
        Layer.provide(Tracing.layerProvider(ourProcessor, {
          resource: { serviceName: `bench-${kind}` },
          sampler: Tracing.makeSampler({ name: "parentbased_always_on", ratio: 1 }),
          shutdownTimeout: "1 second"
        }))
      )
      return kind === "ours" ? served : served.pipe(Layer.provide(LogToFile))
    }
    case "sdk-node": {
      const sdk = await import("./sdk-node.ts")
      return Layer.merge(
        HttpRouter.serve(Layer.merge(SendingDagApi.Routes, PromMiddleware), quiet),
        reportingWith(sdk.tally)
      ).pipe(
        Layer.provide(Server.pipe(Layer.provideMerge(Workflows))),
        Layer.provide(withoutEffectHttpSpan),
        Layer.provide(OtelTracer.layerGlobal)
      )
    }
    case "otlp":
      return Layer.merge(SendingDagApi.layer, reportingWith(undefined)).pipe(
        Layer.provide(Server.pipe(Layer.provideMerge(Workflows))),
        Layer.provide(ObservabilityLive("bench-sending-dag"))
      )
  }
}

/**
 * The API logs each transaction it commits (`INFO`): that line is `ours-log`'s subject; the other set-ups keep
 * warnings only, so that they measure what they name and compare with the runs before the line existed.
 */
const logLevel = Layer.succeed(References.MinimumLogLevel)(kind === "ours-log" ? "Info" : "Warn")

NodeRuntime.runMain(Layer.launch((await app()).pipe(Layer.provide(logLevel))))
