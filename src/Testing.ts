/**
 * Test support: finished spans and log records kept in memory until the test's
 * scope closes (unlike `InMemorySpanExporter`, whose spans vanish at provider
 * shutdown), their tree by parent, and a metric's current value by name and
 * labels. Each log record names the trace and span it was written in, so a
 * spec can say which span a line belongs to.
 *
 * @example
 * ```ts
 * import { assert, it } from "@effect/vitest"
 * import { Effect } from "effect"
 * import { ObservabilityTest, Testing } from "dag-observability"
 *
 * it.effect("records a span", () =>
 *   Effect.gen(function*() {
 *     yield* Effect.void.pipe(Effect.withSpan("work"))
 *     const spans = yield* Testing.finishedSpans
 *     assert.deepStrictEqual(spans.map((span) => span.name), ["work"])
 *   }).pipe(Effect.provide(ObservabilityTest)))
 * ```
 */
import type { ReadableSpan, SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-base"
import { Context, Effect, Layer, Logger } from "effect"
import { type LogRecord, record } from "./Logging.ts"
import { Metrics } from "./Metrics.ts"
import * as Tracing from "./Tracing.ts"

/** The spans finished so far in this test. */
export class TestSpans extends Context.Service<TestSpans, {
  /** Finished spans, in the order they ended. */
  readonly finished: Effect.Effect<ReadonlyArray<ReadableSpan>>
  /** Forgets the spans finished so far. */
  readonly clear: Effect.Effect<void>
}>()("dag-observability/TestSpans") {}

/** The spans finished so far, in the order they ended. */
export const finishedSpans: Effect.Effect<ReadonlyArray<ReadableSpan>, never, TestSpans> = TestSpans.use((spans) =>
  spans.finished
)

/** The log records written so far in this test. */
export class TestLogs extends Context.Service<TestLogs, {
  /** Records in the order they were written. */
  readonly records: Effect.Effect<ReadonlyArray<LogRecord>>
  /** Forgets the records written so far. */
  readonly clear: Effect.Effect<void>
}>()("dag-observability/TestLogs") {}

/** The log records written so far, in order: level, message, annotations, and the `traceId`/`spanId` they belong to. */
export const logRecords: Effect.Effect<ReadonlyArray<LogRecord>, never, TestLogs> = TestLogs.use((logs) => logs.records)

/**
 * Log records kept in memory as service `test`, beside the loggers already installed (Effect's own print as
 * before).
 */
export const layerLogs: Layer.Layer<TestLogs> = Layer.unwrap(Effect.sync(() => {
  let records: Array<LogRecord> = []
  const keeping = Logger.make((options) => {
    records.push(record(options, "test"))
  })
  return Layer.merge(
    Layer.succeed(TestLogs, {
      records: Effect.sync(() => [...records]),
      clear: Effect.sync(() => {
        records = []
      })
    }),
    Logger.layer([keeping], { mergeWithExisting: true })
  )
}))

/** Tracing through the OpenTelemetry SDK into memory, every span sampled, as service `test`. */
export const layerSpans: Layer.Layer<TestSpans> = Layer.unwrap(Effect.sync(() => {
  let spans: Array<ReadableSpan> = []
  const processor: SpanProcessor = {
    onStart: () => undefined,
    onEnd: (span) => {
      spans.push(span)
    },
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve()
  }
  return Layer.merge(
    Layer.succeed(TestSpans, {
      finished: Effect.sync(() => [...spans]),
      clear: Effect.sync(() => {
        spans = []
      })
    }),
    Tracing.layerProvider(processor, {
      resource: { serviceName: "test" },
      sampler: new AlwaysOnSampler(),
      shutdownTimeout: 0
    })
  )
}))

/** Spans ({@link layerSpans}) and log records ({@link layerLogs}) kept in memory for a spec. */
export const layer: Layer.Layer<TestSpans | TestLogs> = Layer.merge(layerSpans, layerLogs)

/** A finished span with its children, in start order. */
export interface SpanNode {
  readonly span: ReadableSpan
  readonly children: ReadonlyArray<SpanNode>
}

/** Arranges `spans` by parent; spans whose parent is not among them are roots. */
export const spanTree = (spans: ReadonlyArray<ReadableSpan>): ReadonlyArray<SpanNode> => {
  const ids = new Set(spans.map((span) => span.spanContext().spanId))
  const byStart = spans.toSorted((a, b) => a.startTime[0] - b.startTime[0] || a.startTime[1] - b.startTime[1])
  const childrenOf = (parentId: string | undefined): ReadonlyArray<SpanNode> =>
    byStart
      .filter((span) => {
        const parent = span.parentSpanContext?.spanId
        return parentId === undefined ? parent === undefined || !ids.has(parent) : parent === parentId
      })
      .map((span) => ({ span, children: childrenOf(span.spanContext().spanId) }))
  return childrenOf(undefined)
}

/** Renders a tree as indented lines of span names, for readable assertions. */
export const formatTree = (nodes: ReadonlyArray<SpanNode>, depth = 0): ReadonlyArray<string> =>
  nodes.flatMap((node) => [`${"  ".repeat(depth)}${node.span.name}`, ...formatTree(node.children, depth + 1)])

/**
 * The current value of the samples named `name` (a family, or a histogram's
 * `_count`, `_sum` or `_bucket`) whose labels include `labels`, summed; 0 when
 * none has been recorded. Dies when no such metric is registered.
 */
export const metricValue = (
  name: string,
  labels: Readonly<Record<string, string | number>> = {}
): Effect.Effect<number, never, Metrics> =>
  Effect.gen(function*() {
    const { registry } = yield* Metrics
    const family = registry.getSingleMetric(name) ?? registry.getSingleMetric(name.replace(/_(count|sum|bucket)$/, ""))
    if (family === undefined) return yield* Effect.die(new Error(`No metric named ${name} is registered`))
    const { values } = yield* Effect.promise(() => family.get())
    return values
      .filter((sample) =>
        ((sample as { readonly metricName?: string }).metricName ?? name) === name &&
        Object.entries(labels).every(([key, value]) => String(sample.labels[key]) === String(value))
      )
      .reduce((sum, sample) => sum + sample.value, 0)
  })
