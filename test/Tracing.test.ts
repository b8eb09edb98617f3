import { assert, describe, it } from "@effect/vitest"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { context, createTraceState, propagation, trace } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Context, Effect, Fiber, Layer, Tracer } from "effect"
import { DagMetrics } from "../src/dag/index.ts"
import { Metrics, ObservabilityTest, Testing, Tracing } from "../src/index.ts"
import { withEnv } from "./support/Environment.ts"

const closedPort = "http://127.0.0.1:9"

const activeId = () => trace.getActiveSpan()?.spanContext().spanId

/** The active span's id as seen by a timer a millisecond later, outside any fiber. */
const later = () => new Promise<string | undefined>((resolve) => setTimeout(() => resolve(activeId()), 1))

/** A span of a caller outside this process. */
const remote = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 }

/** The headers the global propagator writes for {@link remote}: none when no propagator is registered. */
const injectRemote = () => {
  const headers: Record<string, string> = {}
  propagation.inject(trace.setSpanContext(context.active(), remote), headers)
  return headers
}

describe("Tracing", () => {
  it.effect("OpenTelemetry code outside Effect sees Effect's current span and propagates it as W3C traceparent", () =>
    Effect.gen(function*() {
      const outer = yield* Effect.gen(function*() {
        const span = yield* Effect.currentSpan
        const carrier: Record<string, string> = {}
        propagation.inject(context.active(), carrier)
        trace.getTracer("raw").startSpan("raw child").end()
        return { span, carrier }
      }).pipe(Effect.withSpan("outer"))
      assert.strictEqual(outer.carrier["traceparent"], `00-${outer.span.traceId}-${outer.span.spanId}-01`)
      const spans = yield* Testing.TestSpans.use((test) => test.finished)
      assert.deepStrictEqual(Testing.formatTree(Testing.spanTree(spans)), ["outer", "  raw child"])
    }).pipe(Effect.provide(ObservabilityTest)))

  it.live("the active OpenTelemetry span follows Effect's current span across children, async steps and fibers", () =>
    Effect.gen(function*() {
      const active = Effect.sync(activeId)
      const seen = yield* Effect.gen(function*() {
        const outer = (yield* Effect.currentSpan).spanId
        const before = yield* active
        const inner = yield* Effect.gen(function*() {
          const span = (yield* Effect.currentSpan).spanId
          yield* Effect.sleep("5 millis")
          return { span, afterSleep: yield* active }
        }).pipe(Effect.withSpan("inner"))
        const after = yield* active
        const forked = yield* Effect.forkChild(Effect.andThen(Effect.sleep("1 millis"), active))
        return { outer, before, inner, after, forked: yield* Fiber.join(forked) }
      }).pipe(Effect.withSpan("outer"))
      assert.strictEqual(seen.before, seen.outer)
      assert.strictEqual(seen.inner.afterSleep, seen.inner.span)
      assert.notStrictEqual(seen.inner.span, seen.outer)
      assert.strictEqual(seen.after, seen.outer)
      assert.strictEqual(seen.forked, seen.outer)
      assert.isUndefined(yield* active)
    }).pipe(Effect.provide(ObservabilityTest)))

  describe("the active span is the running fiber's, entered only where asynchronous work begins", () => {
    const outsideSpan = trace.wrapSpanContext(remote)
    const spanAndActive = Effect.map(Effect.currentSpan, (span) => ({ span: span.spanId, active: activeId() }))

    it.live("code that runs a fiber sees its own active span again once the fiber suspends or ends", () =>
      Effect.gen(function*() {
        const services = yield* Effect.context<never>()
        const seen = context.with(trace.setSpan(context.active(), outsideSpan), () => {
          const sync = Effect.runSyncWith(services)(spanAndActive.pipe(Effect.withSpan("sync")))
          const afterSync = activeId()
          const forked = Effect.runForkWith(services)(
            Effect.andThen(Effect.sleep("2 millis"), spanAndActive).pipe(Effect.withSpan("async"))
          )
          return { sync, afterSync, forked, afterFork: activeId() }
        })
        assert.strictEqual(seen.sync.active, seen.sync.span)
        assert.strictEqual(seen.afterSync, outsideSpan.spanContext().spanId)
        assert.strictEqual(seen.afterFork, outsideSpan.spanContext().spanId)
        const resumed = yield* Fiber.join(seen.forked)
        assert.strictEqual(resumed.active, resumed.span)
        assert.isUndefined(activeId())
      }).pipe(Effect.provide(ObservabilityTest)))

    it.effect("a fiber run to its end inside a step sees its own span, and the step sees its span again after", () =>
      Effect.gen(function*() {
        const services = yield* Effect.context<never>()
        const outer = (yield* Effect.currentSpan).spanId
        const seen = yield* Effect.sync(() => {
          const nested = Effect.runSyncWith(services)(spanAndActive.pipe(Effect.withSpan("nested")))
          return { nested, after: activeId() }
        })
        assert.strictEqual(seen.nested.active, seen.nested.span)
        assert.notStrictEqual(seen.nested.span, outer)
        assert.strictEqual(seen.after, outer)
      }).pipe(Effect.withSpan("outer"), Effect.provide(ObservabilityTest)))

    it.effect("a region under another tracer sees no span of ours; the span is active again after it", () =>
      Effect.gen(function*() {
        const outer = (yield* Effect.currentSpan).spanId
        const underNative = yield* Effect.sync(activeId).pipe(Effect.withTracer(Tracer.nativeTracer))
        assert.isUndefined(underNative)
        assert.strictEqual(yield* Effect.sync(activeId), outer)
      }).pipe(Effect.withSpan("outer"), Effect.provide(ObservabilityTest)))

    it.effect("under a remote parent, OpenTelemetry code sees its span context, trace state included", () =>
      Effect.gen(function*() {
        const carrier = yield* Effect.sync(() => {
          const headers: Record<string, string> = {}
          propagation.inject(context.active(), headers)
          return headers
        }).pipe(OtelTracer.withSpanContext({ ...remote, traceState: createTraceState("vendor=value") }))
        assert.deepStrictEqual(carrier, {
          traceparent: `00-${remote.traceId}-${remote.spanId}-01`,
          tracestate: "vendor=value"
        })
        assert.isUndefined(activeId())
      }).pipe(Effect.provide(ObservabilityTest)))

    it.live("asynchronous work a step starts sees the step's span when it continues outside the fiber", () =>
      Effect.gen(function*() {
        const seen = yield* Effect.gen(function*() {
          const outer = (yield* Effect.currentSpan).spanId
          const inner = yield* Effect.gen(function*() {
            return { span: (yield* Effect.currentSpan).spanId, later: yield* Effect.promise(later) }
          }).pipe(Effect.withSpan("inner"))
          return { outer, inner, later: yield* Effect.promise(later) }
        }).pipe(Effect.withSpan("outer"))
        assert.strictEqual(seen.inner.later, seen.inner.span)
        assert.strictEqual(seen.later, seen.outer)
        assert.isUndefined(yield* Effect.promise(later))
      }).pipe(Effect.provide(ObservabilityTest)))

    it.effect("a context entered inside a step is active for that step, and the span again after it", () =>
      Effect.gen(function*() {
        const outer = (yield* Effect.currentSpan).spanId
        const seen = yield* Effect.sync(() => ({
          inside: context.with(trace.setSpan(context.active(), outsideSpan), activeId),
          after: activeId()
        }))
        assert.strictEqual(seen.inside, outsideSpan.spanContext().spanId)
        assert.strictEqual(seen.after, outer)
      }).pipe(Effect.withSpan("outer"), Effect.provide(ObservabilityTest)))

    it.effect("inside a span that disables propagation, OpenTelemetry sees the nearest propagated span", () =>
      Effect.gen(function*() {
        const outer = (yield* Effect.currentSpan).spanId
        const inside = yield* Effect.sync(activeId).pipe(
          Effect.withSpan("hidden", { annotations: Context.make(Tracer.DisablePropagation, true) })
        )
        assert.strictEqual(inside, outer)
      }).pipe(Effect.withSpan("outer"), Effect.provide(ObservabilityTest)))
  })

  it.effect("the globals are unregistered when the layer is released", () =>
    Effect.gen(function*() {
      yield* Effect.void.pipe(Effect.provide(ObservabilityTest))
      assert.deepStrictEqual(injectRemote(), {})
    }))

  it.effect.each([
    ["always_off", 1, 0],
    ["traceidratio", 0, 0],
    ["always_on", 0, 3],
    ["parentbased_always_on", 1, 3]
  ] as const)("sampler %s (ratio %s) samples %s of 3 root spans", ([name, ratio, expected]) =>
    Effect.gen(function*() {
      const ended: Array<ReadableSpan> = []
      const recorder = {
        onStart: () => undefined,
        onEnd: (span: ReadableSpan) => void ended.push(span),
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve()
      }
      yield* Effect.forEach([1, 2, 3], () => Effect.void.pipe(Effect.withSpan("root")), { discard: true }).pipe(
        Effect.provide(Tracing.layerProvider(recorder, {
          resource: { serviceName: "sampling" },
          sampler: Tracing.makeSampler({ name, ratio }),
          shutdownTimeout: 0
        }))
      )
      assert.strictEqual(ended.filter((span) => span.spanContext().traceFlags === 1).length, expected)
    }))

  it.effect("with no collector, export failures and queue drops are counted and nothing is lost silently", () =>
    Effect.gen(function*() {
      const total = 50
      yield* Effect.forEach(Array.from({ length: total }), () => Effect.void.pipe(Effect.withSpan("span")), {
        discard: true
      }).pipe(Effect.provide(Tracing.layer({
        resource: { serviceName: "no-collector" },
        otlpEndpoint: closedPort,
        sampler: { name: "always_on", ratio: 1 },
        maxQueueSize: 4,
        exportTimeout: "1 second",
        shutdownTimeout: "5 seconds"
      })))
      const exported = yield* Testing.metricValue("otlp_exported_spans_total", { outcome: "exported" })
      const failed = yield* Testing.metricValue("otlp_exported_spans_total", { outcome: "failed" })
      const dropped = yield* Testing.metricValue("otlp_exported_spans_total", { outcome: "dropped" })
      assert.strictEqual(exported, 0)
      assert.isAbove(dropped, 0)
      assert.isAbove(failed, 0)
      assert.strictEqual(failed + dropped, total)
    }).pipe(Effect.provide(Metrics.layerTest)), { timeout: 20_000 })

  it.effect("OTEL_SDK_DISABLED=true: no tracer, no propagator, no span, no exemplar; metrics still counted", () =>
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      const dag = yield* DagMetrics.DagMetrics
      const seen = yield* Effect.gen(function*() {
        const span = yield* Effect.currentSpan
        yield* dag.recordPohAck("eu-central", 0.003)
        return { sampled: span.sampled, headers: injectRemote(), active: trace.getActiveSpan() }
      }).pipe(Effect.withSpan("native"), Effect.provide(Tracing.layerConfig("disabled")))
      assert.deepStrictEqual(seen.headers, {})
      assert.isFalse(seen.sampled)
      assert.isUndefined(seen.active)
      assert.strictEqual(yield* Testing.metricValue("poh_ack_total", { region: "eu-central" }), 1)
      assert.notInclude(yield* metrics.render("openmetrics"), "trace_id")
      // No exporter was made: its counter is not even registered, so no export can have been counted.
      assert.isUndefined(metrics.registry.getSingleMetric("otlp_exported_spans_total"))
    }).pipe(
      Effect.provide(DagMetrics.layer().pipe(Layer.provideMerge(Metrics.layerTest))),
      withEnv({ OTEL_SDK_DISABLED: "true" })
    ))

  it.effect("Tracing.layerConfig rejects a bad endpoint at build time", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Tracing.layerConfig("x")).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.variable, "OTLP_GRPC_ENDPOINT")
    }).pipe(
      Effect.provide(Metrics.layerTest),
      withEnv({ OTLP_GRPC_ENDPOINT: "collector" })
    ))
})
