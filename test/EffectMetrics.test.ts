/**
 * Effect's own metrics on `/metrics`: each kind rendered in both formats beside the prom-client families and clean for
 * `promtool`, names made Prometheus names, a clash refused in one line, label sets past the limit folded into one
 * overflow series (counted, warned once), histogram samples keeping their span as exemplar, and the PoH node's chain
 * height served by the node.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Layer, Metric } from "effect"
import { Poh } from "../src/dag/index.ts"
import { EffectMetrics, Metrics, MetricsServer, ObservabilityTest, Testing, Tracing } from "../src/index.ts"
import { promtool } from "../servers/Servers.ts"
import { Network } from "./support/PohNetwork.ts"
import { environment } from "./support/Environment.ts"

/** `env` as the only configuration. */

/** Both renderings of the registry, the text format checked by `promtool check metrics` (which reads no other). */
const rendered = Effect.gen(function*() {
  const metrics = yield* Metrics.Metrics
  const text = yield* metrics.render("prometheus")
  const check = yield* Effect.promise(() => promtool(["check", "metrics"], text))
  assert.deepStrictEqual({ code: check.code, output: check.stdout + check.stderr }, { code: 0, output: "" }, text)
  return { text, open: yield* metrics.render("openmetrics") }
})

/** The lines of `body` for the family `name` (its HELP, TYPE and samples). */
const family = (body: string, name: string) =>
  body.split("\n").filter((line) => new RegExp(`^(# (HELP|TYPE) )?${name}(_bucket|_sum|_count|_total)?[ {]`).test(line))

/** How `update` dies: its cause, printed. */
const clash = (update: Effect.Effect<void>) =>
  Effect.map(Effect.exit(update), (exit) => {
    assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
    return Exit.isFailure(exit) ? Cause.pretty(exit.cause) : ""
  })

describe("Effect metrics on /metrics", () => {
  it.live("every kind is served in both formats, beside prom-client's families, and passes promtool", () =>
    Effect.gen(function*() {
      const requests = Metric.counter("http.requests", { description: "Requests served.", attributes: { route: "/a" } })
      yield* Metric.update(requests, 2)
      yield* Metric.update(Metric.withAttributes(requests, { route: "/b" }), 1)
      yield* Metric.update(Metric.counter("greetings_effect_total"), 1)
      yield* Metric.update(Metric.gauge("queue_depth", { description: "Waiting jobs.", bigint: true }), 7n)
      const size = Metric.histogram("payload_size", { description: "Sizes.", boundaries: [10, 100], attributes: { unit: "By" } })
      yield* Effect.forEach([5, 50, 500], (value) => Metric.update(size, value), { discard: true })
      const latency = Metric.summary("latency", { maxAge: "1 minute", maxSize: 10, quantiles: [0.5, 0.99] })
      yield* Effect.forEach([1, 2, 3], (value) => Metric.update(latency, value), { discard: true })
      const colors = Metric.frequency("colors", { description: "Colors seen." })
      yield* Effect.forEach(["red", "red", "blue"], (value) => Metric.update(colors, value), { discard: true })
      yield* Metric.update(Metric.timer("work"), Duration.millis(25))
      Tracing.exportCounter(yield* Metrics.Metrics)

      const { open, text } = yield* rendered
      assert.deepStrictEqual(family(text, "http_requests_total"), [
        "# HELP http_requests_total Requests served.",
        "# TYPE http_requests_total counter",
        "http_requests_total{route=\"/a\"} 2",
        "http_requests_total{route=\"/b\"} 1"
      ])
      assert.deepStrictEqual(family(open, "http_requests"), [
        "# HELP http_requests Requests served.",
        "# TYPE http_requests counter",
        "http_requests_total{route=\"/a\"} 2",
        "http_requests_total{route=\"/b\"} 1"
      ])
      assert.include(text, "# TYPE greetings_effect_total counter\ngreetings_effect_total 1")
      assert.include(text, "# HELP queue_depth Waiting jobs.\n# TYPE queue_depth gauge\nqueue_depth 7\n")
      assert.deepStrictEqual(family(text, "payload_size_bytes"), [
        "# HELP payload_size_bytes Sizes.",
        "# TYPE payload_size_bytes histogram",
        "payload_size_bytes_bucket{le=\"10\"} 1",
        "payload_size_bytes_bucket{le=\"100\"} 2",
        "payload_size_bytes_bucket{le=\"+Inf\"} 3",
        "payload_size_bytes_sum 555",
        "payload_size_bytes_count 3"
      ])
      assert.include(text, "# TYPE latency summary\nlatency{quantile=\"0.5\"} 2\nlatency{quantile=\"0.99\"} 3\n")
      assert.include(text, "latency_sum 6\nlatency_count 3\n")
      assert.include(text, "colors_total{key=\"red\"} 2\ncolors_total{key=\"blue\"} 1\n")
      assert.include(text, "# HELP work_seconds Effect histogram work.\n# TYPE work_seconds histogram\n")
      assert.include(text, "work_seconds_bucket{le=\"0.032\"} 1\nwork_seconds_bucket{le=\"0.064\"} 1\n")
      assert.include(text, "work_seconds_sum 0.025\nwork_seconds_count 1\n")
      assert.notInclude(text, "time_unit")
      assert.include(text, "# TYPE otlp_exported_spans_total counter")
      assert.strictEqual(yield* Testing.metricValue("http_requests_total", { route: "/a" }), 2)
    }).pipe(Effect.provide(ObservabilityTest)))

  it.effect("a name already served dies at the Effect metric's first update with one line, and is left off", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      Tracing.exportCounter(metrics)
      metrics.gauge({ name: "jobs", help: "Jobs." })
      const spans = yield* clash(Metric.update(Metric.counter("otlp_exported_spans"), 1))
      assert.strictEqual(
        spans,
        "MetricNameClash: Effect metric \"otlp_exported_spans\" would be served as otlp_exported_spans_total, " +
          "but /metrics already has the counter otlp_exported_spans_total; rename the Effect metric"
      )
      // A counter `jobs` would be the OpenMetrics family `jobs`, the gauge's.
      assert.match(yield* clash(Metric.update(Metric.counter("jobs"), 1)), /^MetricNameClash: .* the gauge jobs; /)
      yield* Metric.update(Metric.gauge("pending"), 1)
      assert.throws(() => metrics.counter({ name: "pending", help: "p" }), /already served for the Effect metric/)
      const { text } = yield* rendered
      assert.notInclude(text, "jobs_total")
      assert.include(text, "# TYPE pending gauge\npending 1\n")
    }).pipe(Effect.provide(ObservabilityTest)))

  it.effect("label sets past the limit go to one overflow series, counted, with one warning per metric", () =>
    Effect.gen(function*() {
      const hits = Metric.counter("hits")
      yield* Effect.forEach(["a", "b", "c", "d", "e", "a"], (user) => Metric.update(Metric.withAttributes(hits, { user }), 1), {
        discard: true
      })
      const words = Metric.frequency("words")
      yield* Effect.forEach(["x", "y", "z", "w"], (word) => Metric.update(words, word), { discard: true })
      const { text } = yield* rendered
      assert.deepStrictEqual(family(text, "hits_total").slice(2), [
        "hits_total{user=\"a\"} 2",
        "hits_total{user=\"b\"} 1",
        "hits_total{user=\"c\"} 1",
        "hits_total{otel_metric_overflow=\"true\"} 2"
      ])
      assert.include(text, "words_total{key=\"x\"} 1\nwords_total{key=\"y\"} 1\nwords_total{key=\"z\"} 1\n")
      assert.include(text, "words_total{otel_metric_overflow=\"true\"} 1\n")
      assert.strictEqual(yield* Testing.metricValue("effect_metric_overflow_updates_total", { metric: "hits_total" }), 2)
      assert.strictEqual(yield* Testing.metricValue("effect_metric_overflow_updates_total", { metric: "words_total" }), 1)
      const warnings = (yield* Testing.logRecords).filter((record) => record.level === "Warn")
      assert.deepStrictEqual(warnings.map((record) => record.message.split(":")[0]), [
        "Effect metric hits_total has reached its limit of 3 label sets (EFFECT_METRICS_SERIES_LIMIT)",
        "Effect metric words_total has reached its limit of 3 label sets (EFFECT_METRICS_SERIES_LIMIT)"
      ])
    }).pipe(Effect.provide(Layer.merge(Testing.layer, EffectMetrics.layer({ seriesLimit: 3 })).pipe(
      Layer.provideMerge(Metrics.layerTest)
    ))))

  it.effect("a histogram sample recorded in a sampled span keeps it as its bucket's exemplar (OpenMetrics only)", () =>
    Effect.gen(function*() {
      const latency = Metric.histogram("step_seconds", { boundaries: [0.01, 0.1] })
      const span = yield* Effect.currentSpan.pipe(Effect.tap(Metric.update(latency, 0.05)), Effect.withSpan("step"))
      yield* Metric.update(latency, 0.005)
      yield* Metric.update(latency, 5).pipe(Effect.withSpan("untraced"), Effect.withTracerEnabled(false))
      const { open, text } = yield* rendered
      const exemplar = `# {trace_id="${span.traceId}",span_id="${span.spanId}"} 0.05 `
      const lines = family(open, "step_seconds")
      assert.include(lines.find((line) => line.startsWith("step_seconds_bucket{le=\"0.1\"}")), exemplar)
      assert.notInclude(lines.find((line) => line.startsWith("step_seconds_bucket{le=\"0.01\"}")), "#")
      assert.notInclude(lines.find((line) => line.startsWith("step_seconds_bucket{le=\"+Inf\"}")), "#")
      assert.notInclude(text, "trace_id")
    }).pipe(Effect.provide(ObservabilityTest)))

  it.effect("EFFECT_METRICS_SERIES_LIMIT must be a whole number from 1", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(EffectMetrics.layerConfig({ seriesLimit: EffectMetrics.seriesLimit }))
        .pipe(Effect.provide(Metrics.layerTest), Effect.provide(environment({ EFFECT_METRICS_SERIES_LIMIT: "0" }))))
      assert.strictEqual(
        error.message,
        "EFFECT_METRICS_SERIES_LIMIT=\"0\" is not valid: expected a whole number from 1 to 1000000"
      )
    }).pipe(Effect.scoped))

  it.live("the PoH node serves its chain height, an Effect gauge, on its /metrics", () =>
    Effect.gen(function*() {
      const poh = yield* Poh.Poh
      const scrape = Effect.flatMap(MetricsServer.MetricsServer, ({ url }) => Effect.promise(() => fetch(url).then((r) => r.text())))
      assert.include(yield* scrape, "poh_chain_height{node=\"poh-test\"} 0\n")
      yield* poh.request({ txId: "tx-1", region: "eu-central" })
      yield* poh.request({ txId: "tx-2", region: "eu-central" })
      const body = yield* scrape
      assert.include(body, "# TYPE poh_chain_height gauge\npoh_chain_height{node=\"poh-test\"} 2\n")
    }).pipe(Effect.provide(MetricsServer.layer({ bind: { host: "127.0.0.1", port: 0 } }).pipe(Layer.provideMerge(Network())))))
})
