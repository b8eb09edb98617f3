/**
 * @internal
 *
 * Makes Effect's current span OpenTelemetry's active span once per run of a
 * fiber, not once per step.
 *
 * Effect hands every step of a fiber to its tracer's `context` hook, and
 * `@effect/opentelemetry` answers with `context.with(<span's context>)`: two
 * fresh context maps and an AsyncLocalStorage frame entered and left per step,
 * the largest single cost of tracing an Effect program. Here the span's context
 * is built and entered (`ContextManager.attach`) when a run of the fiber first
 * needs it or its span changes; the context that was active before is restored
 * when the run ends: the step that suspends or completes the fiber, or hands it
 * to another tracer. Synchronous OpenTelemetry code in a step and asynchronous
 * work a step starts (driver calls, gRPC calls, timers) see the same span as
 * before; code after the run sees what it saw before it.
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import {
  type Context as OtelContext,
  createContextKey,
  type Span as OtelSpan,
  type SpanContext,
  trace,
  TraceFlags
} from "@opentelemetry/api"
import type { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { Context, type Fiber, Tracer } from "effect"

/** What an Effect primitive returns when its fiber suspends or completes (`effect/internal/core`). */
const Yield = Symbol.for("effect/Effect/Yield")

/**
 * The key `@effect/opentelemetry` marks the span it made active with (`createContextKey` is keyed by name): such a
 * span is Effect's own, never an OpenTelemetry parent of an Effect span.
 */
export const effectSpanKey = createContextKey("@effect/opentelemetry/OtelTracer/EffectSpan")

/** The key `trace.setSpan` stores the active span under in `@opentelemetry/api`. */
const spanKey = createContextKey("OpenTelemetry Context Key SPAN")

type Manager = Pick<AsyncLocalStorageContextManager, "active" | "attach">

/** A run of a fiber that entered a span's context. Runs nest: a step may run another fiber to its end. */
interface Run {
  readonly fiber: Fiber.Fiber<unknown, unknown>
  /** Disposing it restores the context that was active when the run began. */
  readonly token: ReturnType<Manager["attach"]>
  /** The context active when the run began, which span contexts are built on. */
  readonly base: OtelContext
  /** The Effect span whose context is entered. */
  span: Tracer.AnySpan
  readonly outer: Run | undefined
}

/** Where `@effect/opentelemetry` keeps the span context of an OpenTelemetry parent it made external (keyed by name). */
export class OtelParentSpanContext extends Context.Service<OtelParentSpanContext, SpanContext>()(
  "@effect/opentelemetry/Tracer/OtelParentSpanContext"
) {}

/** The OpenTelemetry span an Effect span carries (`@effect/opentelemetry`'s and the recording tracer's spans do). */
const ownOtelSpan = (span: Tracer.AnySpan): OtelSpan | undefined => {
  const own = (span as { readonly span?: OtelSpan }).span
  return own !== undefined && typeof own.spanContext === "function" ? own : undefined
}

const ownSpanContext = (span: Tracer.AnySpan): SpanContext => {
  const own = ownOtelSpan(span) ?? Context.getOrUndefined(span.annotations, OtelParentSpanContext)
  if (own !== undefined) return "spanContext" in own ? own.spanContext() : own
  const traceState = Context.getOrUndefined(span.annotations, OtelTracer.OtelTraceState)
  return {
    traceId: span.traceId,
    spanId: span.spanId,
    isRemote: span._tag === "ExternalSpan",
    traceFlags: Context.getOrUndefined(span.annotations, OtelTracer.OtelTraceFlags) ??
      (span.sampled ? TraceFlags.SAMPLED : TraceFlags.NONE),
    ...(traceState === undefined ? {} : { traceState })
  }
}

/**
 * An Effect span's context as OpenTelemetry sees it; a child's `annotations`
 * may override its trace flags and trace state (`OtelTracer.OtelTraceFlags`,
 * `OtelTraceState`), as in `@effect/opentelemetry`.
 */
export const spanContextOf = (span: Tracer.AnySpan, annotations?: Context.Context<never>): SpanContext => {
  const own = ownSpanContext(span)
  const flags = annotations === undefined ? undefined : Context.getOrUndefined(annotations, OtelTracer.OtelTraceFlags)
  const state = annotations === undefined ? undefined : Context.getOrUndefined(annotations, OtelTracer.OtelTraceState)
  if (flags === undefined && state === undefined) return own
  const traceState = state ?? own.traceState
  return {
    traceId: own.traceId,
    spanId: own.spanId,
    ...(own.isRemote === undefined ? {} : { isRemote: own.isRemote }),
    traceFlags: flags ?? own.traceFlags,
    ...(traceState === undefined ? {} : { traceState })
  }
}

/** The OpenTelemetry span to make active for `span`: its own, or a non-recording one for an external parent. */
export const otelSpanOf = (span: Tracer.AnySpan): OtelSpan => ownOtelSpan(span) ?? trace.wrapSpanContext(spanContextOf(span))

/**
 * The OpenTelemetry span standing for `span` with the span context `context` (from {@link spanContextOf}): its own
 * when that is its context, else a non-recording one carrying `context` (an external parent, or overridden flags).
 */
export const otelSpanWith = (span: Tracer.AnySpan, context: SpanContext): OtelSpan => {
  const own = ownOtelSpan(span)
  return own !== undefined && own.spanContext() === context ? own : trace.wrapSpanContext(context)
}

/** The span OpenTelemetry code should see: the nearest one not annotated with `DisablePropagation`. */
const propagated = (span: Tracer.AnySpan | undefined): Tracer.AnySpan | undefined => {
  while (span !== undefined && Context.get(span.annotations, Tracer.DisablePropagation)) {
    span = span._tag === "Span" && span.parent._tag === "Some" ? span.parent.value : undefined
  }
  return span
}

/**
 * An OpenTelemetry context: one value on top of another context. The API's
 * own contexts copy their whole map on each `setValue`; a context is built
 * here each time a fiber's span is entered, so it only links to its base.
 */
class Linked implements OtelContext {
  readonly #base: OtelContext
  readonly #key: symbol
  readonly #value: unknown
  constructor(base: OtelContext, key: symbol, value: unknown) {
    this.#base = base
    this.#key = key
    this.#value = value
  }
  getValue(key: symbol): unknown {
    return key === this.#key ? this.#value : this.#base.getValue(key)
  }
  setValue(key: symbol, value: unknown): OtelContext {
    return new Linked(this, key, value)
  }
  deleteValue(key: symbol): OtelContext {
    return new Linked(this, key, undefined)
  }
}

/** `base` with `otelSpan` active, marked as installed by Effect as `@effect/opentelemetry` does. */
const contextOf = (otelSpan: OtelSpan, base: OtelContext): OtelContext =>
  new Linked(new Linked(base, spanKey, otelSpan), effectSpanKey, otelSpan)

/** `base` with `otelSpan` as its active span, or with none: the context a new span's sampler decides in. */
export const contextWith = (base: OtelContext, otelSpan: OtelSpan | undefined): OtelContext =>
  new Linked(base, spanKey, otelSpan)

/**
 * Wraps `tracer` (one whose spans carry their OpenTelemetry span as `span`,
 * as the recording tracer's and `@effect/opentelemetry`'s do) so each fiber run enters
 * its span's context through `manager` once instead of once per step. An
 * external parent (a remote caller's span, `OtelTracer.withSpanContext`) is
 * entered as a non-recording span carrying its span context.
 */
export const enteringOncePerRun = (tracer: Tracer.Tracer, manager: Manager): Tracer.Tracer => {
  let top: Run | undefined

  const end = (run: Run) => {
    top = run.outer
    run.token.dispose()
  }

  const hook = <X>(primitive: Tracer.EffectPrimitive<X>, fiber: Fiber.Fiber<unknown, unknown>): X => {
    const span = fiber.cache.span
    let run = top !== undefined && top.fiber === fiber ? top : undefined
    if (span !== run?.span) {
      const target = propagated(span)
      if (target === undefined) {
        if (run !== undefined) end(run)
        return primitive["~effect/Effect/evaluate"](fiber)
      }
      const otelSpan = otelSpanOf(target)
      if (run === undefined) {
        const base = manager.active()
        run = top = { fiber, token: manager.attach(contextOf(otelSpan, base)), base, span: span!, outer: top }
      } else {
        manager.attach(contextOf(otelSpan, run.base))
        run.span = span!
      }
    }
    const next = primitive["~effect/Effect/evaluate"](fiber)
    if (run !== undefined && ((next as unknown) === Yield || fiber.cache.tracerContext !== hook)) end(run)
    return next
  }
  return Tracer.make({ span: (options) => tracer.span(options), context: hook })
}
