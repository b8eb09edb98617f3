/**
 * Effect spans recorded by the library's tracer and handed to the span processor when they end: what Effect and
 * OpenTelemetry code set on a span arrives in the `ReadableSpan`, failures and interruptions end it as
 * `@effect/opentelemetry` ends its spans, the sampler decides at start, and the span limits hold.
 */
import { assert, describe, it } from "@effect/vitest"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { type Attributes, SamplingDecision, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api"
import type { ReadableSpan, Sampler, SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { AlwaysOnSampler, ParentBasedSampler } from "@opentelemetry/sdk-trace-base"
import { Context, Effect, Fiber, Layer } from "effect"
import { Metrics, Settings, Tracing } from "../src/index.ts"
import { withEnv } from "./support/Environment.ts"

/** A processor keeping what it is handed, and the spans it saw start. */
const keeping = () => {
  const started: Array<string> = []
  const ended: Array<ReadableSpan> = []
  const processor: SpanProcessor = {
    onStart: (span) => void started.push((span as unknown as ReadableSpan).name),
    onEnd: (span) => void ended.push(span),
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve()
  }
  return { started, ended, processor }
}

const traced = (
  processor: SpanProcessor,
  options: { readonly sampler?: Sampler; readonly spanLimits?: Settings.SpanLimits } = {}
) =>
  Effect.provide(Tracing.layerProvider(processor, {
    resource: { serviceName: "recorded" },
    sampler: options.sampler ?? new AlwaysOnSampler(),
    shutdownTimeout: 0,
    spanLimits: options.spanLimits
  }))

const read = (env: Record<string, string>) => Settings.read(Settings.spanLimits).pipe(withEnv(env))

const byName = (spans: ReadonlyArray<ReadableSpan>, name: string): ReadableSpan => {
  const span = spans.find((each) => each.name === name)
  assert.isDefined(span, `no span ${name} among ${spans.map((each) => each.name).join(", ")}`)
  return span!
}

describe("recorded spans", () => {
  it.effect("what Effect and OpenTelemetry code set on a span is what the processor receives", () =>
    Effect.gen(function*() {
      const { ended, processor, started } = keeping()
      yield* Effect.gen(function*() {
        yield* Effect.annotateCurrentSpan("effect.key", 1n)
        const active = trace.getActiveSpan()!
        active.setAttribute("otel.key", "yes")
        active.addEvent("otel event", { detail: "d" })
        yield* Effect.void.pipe(Effect.withSpan("child", { kind: "client" }))
      }).pipe(Effect.withSpan("parent", { attributes: { list: [1, 2], mixed: [1, "a"], object: { a: 1 } } }), traced(processor))
      const parent = byName(ended, "parent")
      const child = byName(ended, "child")
      assert.deepStrictEqual(started, ["parent", "child"])
      assert.deepStrictEqual(parent.attributes, {
        list: [1, 2],
        mixed: "[\n  1,\n  \"a\"\n]",
        object: "{\n  \"a\": 1\n}",
        "effect.key": "1",
        "otel.key": "yes"
      })
      assert.deepStrictEqual(parent.events.map((event) => [event.name, event.attributes]), [["otel event", { detail: "d" }]])
      assert.deepStrictEqual(parent.status, { code: SpanStatusCode.OK })
      assert.strictEqual(child.kind, 2)
      assert.strictEqual(child.parentSpanContext?.spanId, parent.spanContext().spanId)
      assert.strictEqual(child.spanContext().traceId, parent.spanContext().traceId)
      assert.isUndefined(parent.parentSpanContext)
      assert.strictEqual(parent.instrumentationScope.name, "effect")
      assert.strictEqual(parent.resource.attributes["service.name"], "recorded")
      assert.isTrue(parent.ended)
      assert.isAtLeast(parent.duration[0] * 1e9 + parent.duration[1], child.duration[0] * 1e9 + child.duration[1])
    }))

  it.effect("a failure ends the span ERROR with an exception event; an interruption is an attribute, not an error", () =>
    Effect.gen(function*() {
      const { ended, processor } = keeping()
      yield* Effect.exit(Effect.fail(new Error("boom")).pipe(Effect.withSpan("failing"), traced(processor)))
      yield* Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.never.pipe(Effect.withSpan("interrupted")))
        yield* Effect.yieldNow
        yield* Fiber.interrupt(fiber)
      }).pipe(traced(processor))
      const failing = byName(ended, "failing")
      assert.deepStrictEqual(failing.status, { code: SpanStatusCode.ERROR, message: "boom" })
      assert.deepStrictEqual(failing.events.map((event) => event.name), ["exception"])
      assert.strictEqual(failing.events[0]!.attributes?.["exception.message"], "boom")
      const interrupted = byName(ended, "interrupted")
      assert.strictEqual(interrupted.attributes["effect.fiber.interrupted"], true)
      assert.strictEqual(interrupted.status.code, SpanStatusCode.UNSET)
    }))

  it.effect("the sampler decides at start, in the parent's context, and its attributes land on the span", () =>
    Effect.gen(function*() {
      const { ended, processor, started } = keeping()
      const seen: Array<string | undefined> = []
      const sampler: Sampler = {
        shouldSample: (context, _traceId, name) => {
          seen.push(trace.getSpanContext(context)?.spanId)
          if (name === "dropped") return { decision: SamplingDecision.NOT_RECORD }
          if (name === "recorded only") return { decision: SamplingDecision.RECORD }
          return { decision: SamplingDecision.RECORD_AND_SAMPLED, attributes: { "sampler.rule": name } }
        },
        toString: () => "by name"
      }
      yield* Effect.gen(function*() {
        yield* Effect.void.pipe(Effect.withSpan("dropped"))
        yield* Effect.void.pipe(Effect.withSpan("recorded only"))
      }).pipe(Effect.withSpan("root"), traced(processor, { sampler }))
      const root = byName(ended, "root")
      assert.deepStrictEqual(seen, [undefined, root.spanContext().spanId, root.spanContext().spanId])
      assert.deepStrictEqual(started, ["root", "recorded only"])
      assert.deepStrictEqual(ended.map((span) => span.name), ["recorded only", "root"])
      assert.strictEqual(byName(ended, "recorded only").spanContext().traceFlags, 0)
      assert.strictEqual(root.spanContext().traceFlags, 1)
      assert.deepStrictEqual(root.attributes, { "sampler.rule": "root" } satisfies Attributes)
    }))

  it.effect("a child's annotated trace flags override its parent's for the sampler, as in @effect/opentelemetry", () =>
    Effect.gen(function*() {
      const { ended, processor } = keeping()
      const unsampled = Context.make(OtelTracer.OtelTraceFlags, TraceFlags.NONE)
      yield* Effect.void.pipe(
        Effect.withSpan("child", { annotations: unsampled }),
        Effect.withSpan("parent"),
        traced(processor, { sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }) })
      )
      assert.deepStrictEqual(ended.map((span) => span.name), ["parent"])
    }))

  it.effect("a processor's onEnding sees the span before it ends and may still set attributes on it", () =>
    Effect.gen(function*() {
      const { ended, processor } = keeping()
      const seen: Array<unknown> = []
      const ending: SpanProcessor = {
        ...processor,
        onEnding: (span) => {
          seen.push((span as unknown as ReadableSpan).attributes["work.items"], span.isRecording())
          span.setAttribute("ending.seen", true)
        }
      }
      yield* Effect.annotateCurrentSpan("work.items", 3).pipe(Effect.withSpan("work"), traced(ending))
      assert.deepStrictEqual(seen, [3, true])
      assert.deepStrictEqual(byName(ended, "work").attributes, { "work.items": 3, "ending.seen": true })
    }))

  it.effect("a span ended by OpenTelemetry code ends once; Effect's own end changes nothing after", () =>
    Effect.gen(function*() {
      const { ended, processor } = keeping()
      yield* Effect.gen(function*() {
        trace.getActiveSpan()!.end()
        yield* Effect.annotateCurrentSpan("late", true)
      }).pipe(Effect.withSpan("ended early"), traced(processor))
      assert.strictEqual(ended.length, 1)
      assert.deepStrictEqual(ended[0]!.attributes, {})
    }))

  it.effect("span limits: attributes past the count dropped and counted, long values cut, the oldest events dropped", () =>
    Effect.gen(function*() {
      const { ended, processor } = keeping()
      const spanLimits = { attributeCountLimit: 2, attributeValueLengthLimit: 3, eventCountLimit: 2, linkCountLimit: 1 }
      yield* Effect.gen(function*() {
        yield* Effect.annotateCurrentSpan({ a: "abcdef", b: ["long", "xy"], c: 3 })
        const active = trace.getActiveSpan()!
        for (const name of ["e1", "e2", "e3"]) active.addEvent(name)
      }).pipe(Effect.withSpan("limited"), traced(processor, { spanLimits }))
      const span = byName(ended, "limited")
      assert.deepStrictEqual(span.attributes, { a: "abc", b: ["lon", "xy"] })
      assert.strictEqual(span.droppedAttributesCount, 1)
      assert.deepStrictEqual(span.events.map((event) => event.name), ["e2", "e3"])
      assert.strictEqual(span.droppedEventsCount, 1)
    }))

  it.effect("span limits come from the standard variables; a bad one stops Tracing.layerConfig with one line", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* read({}), Settings.defaultSpanLimits)
      assert.deepStrictEqual(
        yield* read({ OTEL_ATTRIBUTE_COUNT_LIMIT: "10", OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT: "20", OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: "64" }),
        { ...Settings.defaultSpanLimits, attributeCountLimit: 20, attributeValueLengthLimit: 64 }
      )
      const error = yield* Effect.flip(Layer.build(Tracing.layerConfig("limits")).pipe(
        Effect.scoped,
        Effect.provide(Metrics.layerTest),
        withEnv({ OTEL_SPAN_EVENT_COUNT_LIMIT: "-1" })
      ))
      assert.strictEqual(error.variable, "OTEL_SPAN_EVENT_COUNT_LIMIT")
      assert.match(error.message, /^OTEL_SPAN_EVENT_COUNT_LIMIT="-1" is not valid: expected a whole number from 0 up/)
      assert.notInclude(error.message, "\n")
    }))
})
