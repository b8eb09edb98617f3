/**
 * One contender of `bench/http.ts`: the sending DAG's routes (examples/SendingDagApi.ts: `POST /tx` decodes the
 * body, asks Presence, stamps it with an in-process PoH, stores it in memory, 6 metric updates) on an Effect HTTP
 * server on a free loopback port, in one of three set-ups (argv[2]):
 *
 * - `bare`: `HttpRouter.serve`, Effect's tracer off;
 * - `ours`: `Http.serve` and this library's tracing (`Tracing.layerProvider`, every request sampled);
 * - `sdk-node`: `HttpRouter.serve` with Effect's HTTP span off, `@opentelemetry/sdk-node` and its HTTP
 *   instrumentation for the server span (load with `--import bench/http/sdk-node.ts`), `@effect/opentelemetry`'s
 *   global tracer for the workflow spans, and a hand-written middleware observing the prom-client latency histogram.
 *
 * Prints `{"port":…}` once listening; answers each `report` line on stdin with what it recorded, as one JSON line.
 */
import { createInterface } from "node:readline"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, References, Tracer } from "effect"
import { HttpMiddleware, HttpRouter, HttpServer, HttpServerRequest } from "effect/http"
import * as SendingDagApi from "../../examples/SendingDagApi.ts"
import { Metrics, Poh, Presence, Storage, Tracing } from "../../src/index.ts"
import { countingProcessor, makeTally, type SpanTally, total } from "../support.ts"

type Kind = "bare" | "ours" | "sdk-node"
const kind = process.argv[2] as Kind
if (!["bare", "ours", "sdk-node"].includes(kind)) throw new Error(`usage: server.ts bare|ours|sdk-node, not ${kind}`)

const Workflows = Layer.mergeAll(
  Poh.Poh.layerInProcess("bench"),
  Storage.Storage.layerMemory,
  Presence.Presence.layerStatic({
    nodes: [{ id: "n1", region: "eu-central", address: "in-process" }],
    failureRatio: 0
  })
).pipe(Layer.provideMerge(Metrics.Metrics.layer))

const Server = NodeHttpServer.layer(() => SendingDagApi.createHttpServer(), { host: "127.0.0.1", port: 0 })

const quiet = { disableLogger: true, disableListenLog: true }

const withoutEffectHttpSpan = Layer.succeed(HttpMiddleware.TracerDisabledWhen)(() => true)

/** Spans Effect was asked to start in the bare set-up: none, since its tracer is off. */
let effectSpans = 0
const countingNativeTracer = Tracer.make({
  span: (options) => {
    effectSpans += 1
    return Tracer.nativeTracer.span(options)
  }
})

const pathOf = (url: string) => {
  const end = url.indexOf("?")
  return end === -1 ? url : url.slice(0, end)
}

/** What a Node user writes to get a latency histogram: time each request, observe it with method, path and status. */
const PromMiddleware = HttpRouter.middleware(
  Effect.map(Metrics.Metrics, (metrics) => (httpApp) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const started = process.hrtime.bigint()
      const response = yield* httpApp
      // The registry's histograms keep exemplars, so prom-client wants the object form; none is given here.
      metrics.instruments.httpServerDuration.observe({
        labels: { method: request.method, route: pathOf(request.url), status_code: response.status },
        value: Number(process.hrtime.bigint() - started) / 1e9
      })
      return response
    })),
  { global: true }
)

const ourTally = makeTally()
const ourProcessor = countingProcessor(ourTally)

const flush = async () => {
  if (kind === "ours") await ourProcessor.forceFlush()
  if (kind === "sdk-node") await (await import("./sdk-node.ts")).processor.forceFlush()
}

/** Prints the port once listening, then answers each `report` line on stdin. */
const reporting = (tally: SpanTally | undefined) =>
  Layer.effectDiscard(Effect.gen(function*() {
    const { registry } = yield* Metrics.Metrics
    const { address } = yield* HttpServer.HttpServer
    if (address._tag === "UnixPathAddress") throw new Error("expected a TCP address")
    const lines = createInterface({ input: process.stdin })
    lines.on("line", async (line) => {
      if (line !== "report") return
      await flush()
      const serverSpans = [...(tally?.byName.values() ?? [])].filter((entry) => entry.kind === 1)
      const report = {
        committed: await total(registry, "tx_committed_total"),
        httpObserved: await total(registry, "http_server_request_duration_seconds"),
        spans: tally?.total ?? 0,
        serverSpans: serverSpans.reduce((sum, entry) => sum + entry.count, 0),
        effectSpans,
        byName: Object.fromEntries(tally?.byName ?? [])
      }
      process.stdout.write(`${JSON.stringify(report)}\n`)
    })
    lines.on("close", () => process.exit(0))
    process.stdout.write(`${JSON.stringify({ port: address.port })}\n`)
  }))

const app = async () => {
  switch (kind) {
    case "bare":
      return Layer.merge(HttpRouter.serve(SendingDagApi.Routes, quiet), reporting(undefined)).pipe(
        Layer.provide(Layer.mergeAll(Server, Workflows)),
        Layer.provide(Layer.succeed(References.TracerEnabled)(false)),
        Layer.provide(Layer.succeed(Tracer.Tracer)(countingNativeTracer))
      )
    case "ours":
      return Layer.merge(SendingDagApi.layer, reporting(ourTally)).pipe(
        Layer.provide(Layer.mergeAll(Server, Workflows)),
        Layer.provide(Tracing.layerProvider(ourProcessor, {
          serviceName: "bench-ours",
          sampler: Tracing.makeSampler({ name: "parentbased_always_on", ratio: 1 }),
          shutdownTimeout: "1 second"
        }))
      )
    case "sdk-node": {
      const sdk = await import("./sdk-node.ts")
      return Layer.merge(
        HttpRouter.serve(Layer.merge(SendingDagApi.Routes, PromMiddleware), quiet),
        reporting(sdk.tally)
      ).pipe(
        Layer.provide(Layer.mergeAll(Server, Workflows)),
        Layer.provide(withoutEffectHttpSpan),
        Layer.provide(OtelTracer.layerGlobal)
      )
    }
  }
}

NodeRuntime.runMain(Layer.launch(await app()))
