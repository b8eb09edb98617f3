import { createServer, type Server } from "node:net"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Layer, Logger } from "effect"
import { DagMetrics } from "../src/dag/index.ts"
import { Metrics, MetricsServer, ObservabilityTest, Testing, Tracing } from "../src/index.ts"
import { promtool } from "../servers/Servers.ts"

const loopback = { host: "127.0.0.1", port: 0 }

/** `/metrics` on a free port over a test registry holding the DAG's metrics. */
const Served = MetricsServer.layer({ bind: loopback }).pipe(
  Layer.provideMerge(DagMetrics.layer()),
  Layer.provideMerge(ObservabilityTest)
)

const scrape = (path: string, init?: RequestInit) =>
  Effect.gen(function*() {
    const { url } = yield* MetricsServer.MetricsServer
    return yield* Effect.promise(async () => {
      const response = await fetch(new URL(path, url), init)
      return { status: response.status, type: response.headers.get("content-type"), body: await response.text() }
    })
  })

/** Parses exposition text into `name{labels}` → value, skipping comments. */
const samples = (text: string): Map<string, number> =>
  new Map(
    text.split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => {
        const [series, value] = line.split(" # ")[0]!.split(/ (?=[^ ]+$)/)
        return [series!, Number(value)] as const
      })
  )

/** What `promtool check metrics` says of `text` (empty when clean), with its exit code. */
const checkMetrics = (text: string) =>
  Effect.promise(() => promtool(["check", "metrics"], text)).pipe(
    Effect.map(({ code, stdout, stderr }) => ({ code, output: stdout + stderr }))
  )

describe("MetricsServer", () => {
  it.live("serves /metrics in the Prometheus text format with the values recorded", () =>
    Effect.gen(function*() {
      const metrics = yield* DagMetrics.DagMetrics
      // Registered by the tracing layer when it is built; served with no sample yet.
      Tracing.exportCounter(yield* Metrics.Metrics)
      yield* metrics.recordPohRequest("eu-central", "ok")
      yield* metrics.recordPohRequest("eu-central", "ok")
      yield* metrics.recordPohAck("eu-central", 0.02)
      yield* metrics.recordPresence(false, "us-east")
      const { status, type, body } = yield* scrape("/metrics")
      assert.strictEqual(status, 200)
      assert.strictEqual(type, "text/plain; version=0.0.4; charset=utf-8")
      const parsed = samples(body)
      const node = "node=\"other\""
      assert.strictEqual(
        parsed.get(`poh_requests_total{region="eu-central",status="ok",${node},placement="local"}`),
        2
      )
      assert.strictEqual(parsed.get(`poh_ack_total{region="eu-central",${node}}`), 1)
      assert.strictEqual(parsed.get(`poh_approval_latency_seconds_count{region="eu-central",${node}}`), 1)
      assert.strictEqual(parsed.get(`poh_approval_latency_seconds_bucket{le="0.025",region="eu-central",${node}}`), 1)
      assert.strictEqual(parsed.get(`poh_approval_latency_seconds_bucket{le="0.01",region="eu-central",${node}}`), 0)
      assert.strictEqual(parsed.get("presence_calls_total{region=\"us-east\",outcome=\"failure\"}"), 1)
      for (const name of ["tx_committed_total", "storage_latency_seconds", "otlp_exported_spans_total"]) {
        assert.include(body, `# TYPE ${name} `)
      }
      assert.deepStrictEqual(yield* checkMetrics(body), { code: 0, output: "" })
    }).pipe(Effect.provide(Served)))

  it.live("serves OpenMetrics, ending in # EOF, when the scraper asks for it", () =>
    Effect.gen(function*() {
      const metrics = yield* DagMetrics.DagMetrics
      yield* metrics.recordTxCommitted("ap-south")
      const { status, type, body } = yield* scrape("/metrics", {
        headers: { accept: "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5" }
      })
      assert.strictEqual(status, 200)
      assert.strictEqual(type, "application/openmetrics-text; version=1.0.0; charset=utf-8")
      assert.include(body, "# TYPE tx_committed counter\n")
      assert.strictEqual(samples(body).get("tx_committed_total{region=\"ap-south\"}"), 1)
      assert.isTrue(body.endsWith("# EOF\n"))
    }).pipe(Effect.provide(Served)))

  it.live("answers other paths with 404 and other methods with 405, and traces no scrape", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* scrape("/other")).status, 404)
      assert.strictEqual((yield* scrape("/metrics", { method: "POST" })).status, 405)
      assert.strictEqual((yield* scrape("/metrics?x=1")).status, 200)
      assert.deepStrictEqual(yield* Testing.TestSpans.use((spans) => spans.finished), [])
    }).pipe(Effect.provide(Served)))

  it.live("the live registry adds the Node.js default metrics and still passes promtool", () =>
    Effect.gen(function*() {
      const { body } = yield* scrape("/metrics")
      assert.include(body, "# TYPE process_cpu_user_seconds_total counter")
      assert.include(body, "# TYPE nodejs_eventloop_lag_seconds gauge")
      assert.deepStrictEqual(yield* checkMetrics(body), { code: 0, output: "" })
    }).pipe(Effect.provide(
      MetricsServer.layer({ bind: loopback }).pipe(Layer.provideMerge(Metrics.layer))
    )))
})

/** A TCP server holding a free loopback port until the scope closes: its port. */
const occupiedPort = Effect.acquireRelease(
  Effect.callback<Server>((resume) => {
    const server = createServer()
    server.once("error", (error) => resume(Effect.die(error)))
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
  }),
  (server) =>
    Effect.callback<void>((resume) => {
      server.close(() => resume(Effect.void))
    })
).pipe(Effect.map((server) => (server.address() as { readonly port: number }).port))

/** Runs `self` with a logger keeping each message's text; its result and the lines logged. */
const capturingLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.suspend(() => {
    const lines: Array<string> = []
    const logger = Logger.make(({ message }) => {
      lines.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
    })
    return Effect.map(self.pipe(Effect.provide(Logger.layer([logger]))), (result) => ({ result, lines }))
  })

describe("MetricsServer.layer", () => {
  it.live("logs the URL it serves, with the real port when asked for port 0", () =>
    Effect.gen(function*() {
      const { result: server, lines } = yield* capturingLogs(
        Effect.map(Layer.build(MetricsServer.layer({ bind: loopback })), Context.get(MetricsServer.MetricsServer))
      )
      const port = (server.address as { readonly port: number }).port
      assert.isAbove(port, 0)
      assert.strictEqual(server.url, `http://127.0.0.1:${port}/metrics`)
      assert.deepStrictEqual(lines, [`metrics at http://127.0.0.1:${port}/metrics`])
      const { status } = yield* scrape("/metrics").pipe(Effect.provideService(MetricsServer.MetricsServer, server))
      assert.strictEqual(status, 200)
    }).pipe(Effect.scoped, Effect.provide(Metrics.layerTest)))

  it.live("an address already in use fails with ListenError: one line naming the address", () =>
    Effect.gen(function*() {
      const port = yield* occupiedPort
      const error = yield* Effect.flip(Layer.build(MetricsServer.layer({ bind: { host: "127.0.0.1", port } })))
      assert.strictEqual(error._tag, "ListenError")
      assert.strictEqual(error.address, `127.0.0.1:${port}`)
      assert.match(error.message, new RegExp(`^cannot serve /metrics on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`))
      assert.notInclude(error.message, "PROMETHEUS_BIND")
      assert.notInclude(error.message, "\n")
      assert.strictEqual(error.stack, `ListenError: ${error.message}`)
    }).pipe(Effect.scoped, Effect.provide(Metrics.layerTest)))

  it.live("built by layerConfig(), the error also names PROMETHEUS_BIND", () =>
    Effect.gen(function*() {
      const port = yield* occupiedPort
      const error = yield* Effect.flip(
        Layer.build(MetricsServer.layerConfig()).pipe(
          Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ PROMETHEUS_BIND: `127.0.0.1:${port}` })))
        )
      )
      assert.strictEqual(error._tag, "ListenError")
      assert.match(
        error.message,
        new RegExp(`^cannot serve /metrics on 127\\.0\\.0\\.1:${port} \\(PROMETHEUS_BIND\\): .*EADDRINUSE`)
      )
      assert.notInclude(error.message, "\n")
      assert.strictEqual(error.stack, `ListenError: ${error.message}`)
    }).pipe(Effect.scoped, Effect.provide(Metrics.layerTest)))
})
