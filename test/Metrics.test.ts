/**
 * The generic metrics core: `Metrics.observe` and `observeWithSpan` work on any prom-client histogram (with the span
 * as exemplar only where exemplars are kept), the service's `histogram`, `counter` and `gauge` register an instrument
 * once by name and refuse a clashing one, and a registry holds only what has been registered on it.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Layer } from "effect"
import { Histogram } from "prom-client"
import { DagMetrics } from "../src/dag/index.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"

const sampledSpan = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", sampled: true }

/** The OpenMetrics lines of `family`'s samples. */
const lines = (text: string, family: string) => text.split("\n").filter((line) => line.startsWith(`${family}_`))

/** The samples of the metric `name`: labels and value. */
const samples = (name: string) =>
  Effect.gen(function*() {
    const { registry } = yield* Metrics.Metrics
    const { values } = yield* Effect.promise(() => registry.getSingleMetric(name)!.get())
    return values.map(({ labels, value, ...rest }) => ({
      name: (rest as { readonly metricName?: string }).metricName ?? name,
      labels,
      value
    }))
  })

describe("Metrics.observe and observeWithSpan", () => {
  it.effect("record into a user's histogram made without exemplars, inside a sampled span too, without throwing", () =>
    Effect.gen(function*() {
      const { registry } = yield* Metrics.Metrics
      const plain = new Histogram({
        name: "user_latency_seconds",
        help: "A user's own histogram.",
        labelNames: ["op"],
        buckets: [0.1, 1],
        registers: [registry]
      })
      yield* Metrics.observe(plain, { op: "read" }, 0.05).pipe(Effect.withSpan("read"))
      yield* Metrics.observe(plain, { op: "read" }, 0.5)
      Metrics.observeWithSpan(plain, { op: "write" }, 2, sampledSpan)
      const counts = (yield* samples("user_latency_seconds"))
        .filter(({ name }) => name === "user_latency_seconds_count")
      assert.deepStrictEqual(counts.map(({ labels, value }) => [labels["op"], value]), [["read", 2], ["write", 1]])
      assert.strictEqual(yield* Testing.metricValue("user_latency_seconds_bucket", { op: "read", le: 0.1 }), 1)
      assert.strictEqual(yield* Testing.metricValue("user_latency_seconds_sum", { op: "write" }), 2)
      const text = yield* Metrics.Metrics.use((metrics) => metrics.render("openmetrics"))
      assert.isNotEmpty(lines(text, "user_latency_seconds"))
      assert.isTrue(lines(text, "user_latency_seconds").every((line) => !line.includes("trace_id")))
    }).pipe(Effect.provide(ObservabilityTest)))

  it.effect("a histogram made by metrics.histogram keeps the current sampled span as its exemplar", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      const latency = metrics.histogram({
        name: "greet_duration_seconds",
        help: "Greeting latency.",
        labelNames: ["lang"]
      })
      const span = yield* Effect.currentSpan.pipe(
        Effect.tap(() => Metrics.observe(latency, { lang: "en" }, 0.003)),
        Effect.withSpan("greet")
      )
      Metrics.observeWithSpan(latency, { lang: "fr" }, 0.003, sampledSpan)
      Metrics.observeWithSpan(latency, { lang: "de" }, 0.003, { ...sampledSpan, sampled: false })
      const text = yield* metrics.render("openmetrics")
      const bucket = (lang: string) =>
        lines(text, "greet_duration_seconds").find((line) =>
          line.startsWith(`greet_duration_seconds_bucket{le="0.005",lang="${lang}"}`)
        )
      assert.include(bucket("en"), ` 1 # {trace_id="${span.traceId}",span_id="${span.spanId}"} 0.003 `)
      assert.include(bucket("fr"), ` 1 # {trace_id="${sampledSpan.traceId}",span_id="${sampledSpan.spanId}"} 0.003 `)
      assert.notInclude(bucket("de"), "trace_id")
      assert.strictEqual(yield* Testing.metricValue("greet_duration_seconds_count"), 3)
    }).pipe(Effect.provide(ObservabilityTest)))
})

describe("Metrics instruments", () => {
  it.effect("histogram, counter and gauge return the instrument already registered under the same name", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      const histogram = metrics.histogram({ name: "h_seconds", help: "h", labelNames: ["a", "b"] })
      assert.strictEqual(metrics.histogram({ name: "h_seconds", help: "h", labelNames: ["a", "b"] }), histogram)
      assert.strictEqual(
        metrics.histogram({ name: "h_seconds", help: "other help", labelNames: ["b", "a"] }),
        histogram,
        "help aside, the same name and labels in any order"
      )
      const counter = metrics.counter({ name: "c_total", help: "c", labelNames: ["a"] })
      assert.strictEqual(metrics.counter({ name: "c_total", help: "c", labelNames: ["a"] }), counter)
      const gauge = metrics.gauge({ name: "g", help: "g" })
      assert.strictEqual(metrics.gauge({ name: "g", help: "g" }), gauge)
      assert.strictEqual(metrics.gauge({ name: "g", help: "g", labelNames: [] }), gauge)
      // One family each, whose samples are shared by whoever asked for it.
      counter.inc({ a: "x" })
      metrics.counter({ name: "c_total", help: "c", labelNames: ["a"] }).inc({ a: "x" }, 2)
      assert.strictEqual(yield* Testing.metricValue("c_total", { a: "x" }), 3)
      assert.deepStrictEqual(metrics.registry.getMetricsAsArray().map(({ name }) => name).toSorted(), [
        "c_total",
        "g",
        "h_seconds"
      ])
      // Histograms keep exemplars and the latency buckets unless told otherwise.
      assert.isTrue((histogram as unknown as { readonly enableExemplars: boolean }).enableExemplars)
      assert.deepStrictEqual((histogram as unknown as { readonly upperBounds: Array<number> }).upperBounds, [
        ...Metrics.latencyBuckets
      ])
      const custom = metrics.histogram({ name: "size_bytes", help: "s", buckets: [1, 10] })
      assert.deepStrictEqual((custom as unknown as { readonly upperBounds: Array<number> }).upperBounds, [1, 10])
    }).pipe(Effect.provide(Metrics.layerTest)))

  it.effect("a name registered as another kind or with other labels fails with a message saying both", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      metrics.histogram({ name: "work_seconds", help: "w", labelNames: ["op", "outcome"] })
      metrics.counter({ name: "jobs_total", help: "j" })
      assert.throws(
        () => metrics.counter({ name: "work_seconds", help: "w", labelNames: ["op", "outcome"] }),
        "metric work_seconds is already registered as a histogram with labels [op,outcome], " +
          "not as a counter with labels [op,outcome]"
      )
      assert.throws(
        () => metrics.gauge({ name: "work_seconds", help: "w", labelNames: ["op", "outcome"] }),
        "metric work_seconds is already registered as a histogram with labels [op,outcome], " +
          "not as a gauge with labels [op,outcome]"
      )
      assert.throws(
        () => metrics.histogram({ name: "work_seconds", help: "w", labelNames: ["op"] }),
        "metric work_seconds is already registered as a histogram with labels [op,outcome], " +
          "not as a histogram with labels [op]"
      )
      assert.throws(
        () => metrics.counter({ name: "jobs_total", help: "j", labelNames: ["queue"] }),
        "metric jobs_total is already registered as a counter with labels [], not as a counter with labels [queue]"
      )
      assert.strictEqual(
        metrics.histogram({ name: "work_seconds", help: "w", labelNames: ["op", "outcome"] }),
        metrics.histogram({ name: "work_seconds", help: "w", labelNames: ["op", "outcome"], buckets: Metrics.latencyBuckets })
      )
      assert.throws(
        () => metrics.histogram({ name: "work_seconds", help: "w", labelNames: ["op", "outcome"], buckets: [1, 2] }),
        `metric work_seconds is already registered with buckets [${Metrics.latencyBuckets.join(",")}], not [1,2]`
      )
      // Nothing was replaced.
      assert.instanceOf(metrics.registry.getSingleMetric("work_seconds"), Histogram)
      assert.strictEqual(metrics.registry.getMetricsAsArray().length, 2)
    }).pipe(Effect.provide(Metrics.layerTest)))

  it.effect("a family registered by hand with prom-client is found by name too", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      const own = new Histogram({ name: "own_seconds", help: "o", labelNames: ["x"], registers: [metrics.registry] })
      assert.strictEqual(metrics.histogram({ name: "own_seconds", help: "o", labelNames: ["x"] }), own)
      assert.throws(() => metrics.counter({ name: "own_seconds", help: "o", labelNames: ["x"] }), /already registered/)
    }).pipe(Effect.provide(Metrics.layerTest)))
})

describe("a registry holds what has been registered on it", () => {
  it.effect("Metrics.layerTest alone: no family at all; Testing.metricValue dies for one not registered", () =>
    Effect.gen(function*() {
      const { registry } = yield* Metrics.Metrics
      assert.deepStrictEqual(registry.getMetricsAsArray(), [])
      const exit = yield* Effect.exit(Testing.metricValue("poh_requests_total"))
      assert.isTrue(Exit.isFailure(exit) && Cause.hasDies(exit.cause))
      assert.include(
        Exit.isFailure(exit) ? Cause.pretty(exit.cause) : "",
        "No metric named poh_requests_total is registered"
      )
    }).pipe(Effect.provide(Metrics.layerTest)))

  it.effect("DagMetrics.layer() registers the DAG's families, empty, on the registry below it", () =>
    Effect.gen(function*() {
      const { registry } = yield* Metrics.Metrics
      assert.deepStrictEqual(registry.getMetricsAsArray().map(({ name }) => name).toSorted(), [
        "poh_ack_total",
        "poh_approval_latency_seconds",
        "poh_requests_total",
        "presence_calls_total",
        "storage_latency_seconds",
        "tx_committed_total"
      ])
      assert.strictEqual(yield* Testing.metricValue("poh_requests_total"), 0)
      assert.strictEqual(yield* Testing.metricValue("storage_latency_seconds_count"), 0)
    }).pipe(Effect.provide(DagMetrics.layer().pipe(Layer.provideMerge(Metrics.layerTest)))))

  it.effect("Metrics.layer adds only prom-client's process and Node.js families", () =>
    Effect.gen(function*() {
      const { registry } = yield* Metrics.Metrics
      const names = registry.getMetricsAsArray().map(({ name }) => name)
      assert.isNotEmpty(names)
      for (const name of names) assert.match(name, /^(?:process|nodejs)_/)
      registry.clear()
    }).pipe(Effect.provide(Metrics.layer)))
})
