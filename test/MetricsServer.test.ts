import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { Metrics, MetricsServer, ObservabilityTest, Testing } from "../src/index.ts"
import { promtool } from "../servers/Servers.ts"

const Served = MetricsServer.MetricsServer.make({ host: "127.0.0.1", port: 0 }).pipe(
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
      const metrics = yield* Metrics.Metrics
      yield* metrics.recordPohRequest("eu-central", "ok")
      yield* metrics.recordPohRequest("eu-central", "ok")
      yield* metrics.recordPohAck("eu-central", 0.02)
      yield* metrics.recordPresence(false, "us-east")
      const { status, type, body } = yield* scrape("/metrics")
      assert.strictEqual(status, 200)
      assert.strictEqual(type, "text/plain; version=0.0.4; charset=utf-8")
      const parsed = samples(body)
      assert.strictEqual(parsed.get("poh_requests_total{region=\"eu-central\",status=\"ok\"}"), 2)
      assert.strictEqual(parsed.get("poh_ack_total{region=\"eu-central\"}"), 1)
      assert.strictEqual(parsed.get("poh_approval_latency_seconds_count{region=\"eu-central\"}"), 1)
      assert.strictEqual(parsed.get("poh_approval_latency_seconds_bucket{le=\"0.025\",region=\"eu-central\"}"), 1)
      assert.strictEqual(parsed.get("poh_approval_latency_seconds_bucket{le=\"0.01\",region=\"eu-central\"}"), 0)
      assert.strictEqual(parsed.get("presence_calls_total{region=\"us-east\",outcome=\"failure\"}"), 1)
      for (const name of ["tx_committed_total", "storage_latency_seconds", "otlp_exported_spans_total"]) {
        assert.include(body, `# TYPE ${name} `)
      }
      assert.deepStrictEqual(yield* checkMetrics(body), { code: 0, output: "" })
    }).pipe(Effect.provide(Served)))

  it.live("serves OpenMetrics, ending in # EOF, when the scraper asks for it", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
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
      MetricsServer.MetricsServer.make({ host: "127.0.0.1", port: 0 }).pipe(Layer.provideMerge(Metrics.Metrics.layer))
    )))
})
