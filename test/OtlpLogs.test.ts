/**
 * Logs over OTLP gRPC: each exported record carries the trace and span it was written in; with no collector, exports
 * fail and queue drops are counted in `otlp_exported_logs_total` and the program runs on; a collector that never
 * answers costs at most the shutdown timeout; `OTEL_LOGS_EXPORTER=otlp` turns it on, sending to the logs' own
 * endpoint variable before the shared ones.
 */
import { once } from "node:events"
import { createServer } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { InMemoryLogRecordExporter, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs"
import { ConfigProvider, Console, Effect, Layer } from "effect"
import { Logging, Metrics, ObservabilityTest, OtlpLogs, Settings, Testing } from "../src/index.ts"
import { recordingConsole } from "./support/Console.ts"

const closedPort = "http://127.0.0.1:9"

/** `env` as the only configuration. */
const environment = (env: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env }))

/** A loopback TCP server that accepts connections and never answers, for the scope: its URL. */
const blackHole = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = createServer(() => undefined).listen(0, "127.0.0.1")
    await once(server, "listening")
    return server
  }),
  (server) => Effect.sync(() => server.close())
).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as { readonly port: number }).port}`))

const outcome = (name: string) => Testing.metricValue("otlp_exported_logs_total", { outcome: name })

/** `count` lines logged through an OTLP sink made with `options`, the sink released after. */
const exporting = (count: number, options: Omit<OtlpLogs.Options, "resource">) =>
  Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) => Effect.log(`line ${i}`), { discard: true }).pipe(
    Effect.provide(Layer.unwrap(Effect.map(
      OtlpLogs.make({ resource: { serviceName: "no-collector" }, ...options }),
      (sink) => Logging.layer({ format: "json", sinks: [sink] })
    ))),
    Effect.provideService(Console.Console, recordingConsole().console)
  )

/** One line logged by `Logging.layerConfig` under `env`; the `otlp_exported_logs_total` family after, if any. */
const run = (env: Record<string, string>) =>
  Effect.log("hello").pipe(
    Effect.provide(Logging.layerConfig("greeter").pipe(Layer.provide(environment(env)))),
    Effect.provideService(Console.Console, recordingConsole().console),
    Effect.andThen(Metrics.Metrics.use(({ registry }) => Effect.succeed(registry.getSingleMetric("otlp_exported_logs_total")))),
    Effect.provide(Metrics.layerTest)
  )

/** The OTLP endpoint of logs under `env`. */
const logsEndpoint = (env: Record<string, string>) =>
  Settings.read(Settings.otlpLogsEndpoint).pipe(Effect.provide(environment(env)))

describe("OtlpLogs", () => {
  it.effect("each exported record carries its span's trace and span ids, its level, message and resource", () =>
    Effect.gen(function*() {
      const exporter = new InMemoryLogRecordExporter()
      const sink = yield* OtlpLogs.makeWith(new SimpleLogRecordProcessor({ exporter }), { resource: { serviceName: "greeter" } })
      const span = yield* Effect.logWarning("looking up ada").pipe(
        Effect.annotateLogs({ user: "ada" }),
        Effect.andThen(Effect.currentSpan),
        Effect.withSpan("GET /users/:name"),
        Effect.provide(Logging.layer({ format: "json", sinks: [sink] })),
        Effect.provideService(Console.Console, recordingConsole().console)
      )
      const [record] = exporter.getFinishedLogRecords()
      assert.strictEqual(exporter.getFinishedLogRecords().length, 1)
      assert.deepInclude(record!.spanContext, { traceId: span.traceId, spanId: span.spanId, traceFlags: 1 })
      assert.strictEqual(record!.body, "looking up ada")
      assert.strictEqual(record!.severityText, "WARN")
      assert.strictEqual(record!.attributes["user"], "ada")
      assert.strictEqual(record!.resource.attributes["service.name"], "greeter")
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.effect("with no collector, failed exports and queue drops are counted and the program runs on", () =>
    Effect.gen(function*() {
      const total = 50
      yield* exporting(total, { endpoint: closedPort, maxQueueSize: 4, exportTimeout: "1 second" })
      assert.strictEqual(yield* outcome("exported"), 0)
      assert.isAbove(yield* outcome("dropped"), 0)
      assert.isAbove(yield* outcome("failed"), 0)
      assert.strictEqual((yield* outcome("failed")) + (yield* outcome("dropped")), total)
    }).pipe(Effect.provide(Metrics.layerTest)), { timeout: 20_000 })

  it.live("a collector that never answers: release gives up flushing after the shutdown timeout", () =>
    Effect.gen(function*() {
      const endpoint = yield* blackHole
      const started = performance.now()
      yield* exporting(3, { endpoint, exportTimeout: "10 seconds", shutdownTimeout: "300 millis" })
      const elapsed = performance.now() - started
      assert.isBelow(elapsed, 2_000, `released after ${elapsed.toFixed(0)} ms`)
      assert.strictEqual(yield* outcome("exported"), 0)
    }).pipe(Effect.scoped, Effect.provide(Metrics.layerTest)))

  it.effect("OTEL_LOGS_EXPORTER=otlp turns it on (its counter registered, exports counted); unset or SDK off, it is off", () =>
    Effect.gen(function*() {
      assert.isUndefined(yield* run({}))
      assert.isUndefined(yield* run({ OTEL_LOGS_EXPORTER: "none" }))
      assert.isUndefined(yield* run({ OTEL_LOGS_EXPORTER: "otlp", OTEL_SDK_DISABLED: "true" }), "the SDK disabled")
      const on = yield* run({ OTEL_LOGS_EXPORTER: "console,otlp", OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: closedPort })
      const { values } = yield* Effect.promise(() => on!.get())
      assert.deepStrictEqual(values.map((sample) => [sample.labels["outcome"], sample.value]), [["failed", 1]])
    }), { timeout: 20_000 })

  it.effect("the logs' own endpoint variable wins over the shared ones, which win over the default", () =>
    Effect.gen(function*() {
      const shared = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://shared:4317", OTLP_GRPC_ENDPOINT: "http://grpc:4317" }
      assert.strictEqual(yield* logsEndpoint({}), "http://localhost:4317")
      assert.strictEqual(yield* logsEndpoint({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://shared:4317" }), "http://shared:4317")
      assert.strictEqual(yield* logsEndpoint(shared), "http://grpc:4317")
      assert.strictEqual(
        yield* logsEndpoint({ ...shared, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:4317" }),
        "http://grpc:4317",
        "the traces' own variable is not the logs'"
      )
      assert.strictEqual(yield* logsEndpoint({ ...shared, OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: "http://logs:4317" }), "http://logs:4317")
    }))
})
