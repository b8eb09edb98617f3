/**
 * @internal
 *
 * Makes Effect's current span OpenTelemetry's active span without entering
 * anything on the steps of a fiber.
 *
 * Effect hands every step of a fiber to its tracer's `context` hook, and
 * `@effect/opentelemetry` answers with `context.with(<span's context>)`: two
 * fresh context maps and an AsyncLocalStorage frame entered and left per step,
 * the largest single cost of tracing an Effect program. Here the context
 * manager asks the running fiber instead: `active()` reads
 * `Fiber.getCurrent()` and its current span, so synchronous OpenTelemetry
 * code in a step sees that span and code outside any fiber sees its own
 * AsyncLocalStorage context. A frame is entered only where asynchronous work
 * begins: around the step that registers a callback (`Effect.promise`,
 * `tryPromise`, `callback`, `sleep`), so promises, driver callbacks and
 * timers it starts see the span when they continue outside the fiber.
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
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { Context, Effect, Fiber, Tracer } from "effect"

/**
 * The key `@effect/opentelemetry` marks the span it made active with (`createContextKey` is keyed by name): such a
 * span is Effect's own, never an OpenTelemetry parent of an Effect span.
 */
export const effectSpanKey = createContextKey("@effect/opentelemetry/OtelTracer/EffectSpan")

/** The key `trace.setSpan` stores the active span under in `@opentelemetry/api`. */
const spanKey = createContextKey("OpenTelemetry Context Key SPAN")

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

/** How the primitive that registers a callback (`Effect.callback`, `promise`, `tryPromise`, `sleep`) is evaluated. */
const evaluateAsync = (Effect.callback(() => {}) as unknown as Tracer.EffectPrimitive<unknown>)["~effect/Effect/evaluate"]

/** Evaluates an Effect primitive on `fiber` (the run loop's `evaluate`). */
const evaluate = <X>(primitive: Tracer.EffectPrimitive<X>, fiber: Fiber.Fiber<unknown, unknown>): X =>
  primitive["~effect/Effect/evaluate"](fiber)

/**
 * A context entered while `fiber` ran with `span` as its current span: it is
 * the active context for that fiber only while its span is still `span`.
 */
class Frame implements OtelContext {
  readonly context: OtelContext
  readonly fiber: Fiber.Fiber<unknown, unknown>
  readonly span: Tracer.AnySpan | undefined
  constructor(context: OtelContext, fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.AnySpan | undefined) {
    this.context = context
    this.fiber = fiber
    this.span = span
  }
  getValue(key: symbol): unknown {
    return this.context.getValue(key)
  }
  setValue(key: symbol, value: unknown): OtelContext {
    return this.context.setValue(key, value)
  }
  deleteValue(key: symbol): OtelContext {
    return this.context.deleteValue(key)
  }
}

const untagged = (context: OtelContext): OtelContext => context instanceof Frame ? context.context : context

/**
 * The active context of `fiber` over the `stored` one: what it entered with its current span, else that span (the
 * nearest that propagates) on top of `stored`, else `stored` untagged.
 */
const fiberContext = (fiber: Fiber.Fiber<unknown, unknown>, stored: OtelContext): OtelContext => {
  const span = fiber.cache.span
  if (stored instanceof Frame && stored.fiber === fiber && stored.span === span) return stored.context
  const target = propagated(span)
  return target === undefined ? untagged(stored) : contextOf(otelSpanOf(target), untagged(stored))
}

/**
 * An AsyncLocalStorage context manager whose active context, inside a fiber
 * traced by {@link FiberContextManager.tracer}, is the fiber's current span
 * (the nearest one that propagates) on top of the stored context. A context
 * entered with `with` inside a step is active for the rest of that step, as
 * usual; outside fibers the manager is the SDK's.
 */
export class FiberContextManager extends AsyncLocalStorageContextManager {
  /** The `context` hook of the tracers this manager follows; fibers under another tracer see the stored context. */
  readonly hook = <X>(primitive: Tracer.EffectPrimitive<X>, fiber: Fiber.Fiber<unknown, unknown>): X => {
    const step = primitive["~effect/Effect/evaluate"]
    return step === evaluateAsync ? this.entering(fiber, primitive) : step.call(primitive, fiber)
  }

  /** `tracer` with this manager's hook: each step that starts asynchronous work runs inside its span's context. */
  tracer(tracer: Tracer.Tracer): Tracer.Tracer {
    return Tracer.make({ span: (options) => tracer.span(options), context: this.hook })
  }

  /** The stored context, with no fiber's span: the base a new span's sampler decides in. */
  stored(): OtelContext {
    return untagged(super.active())
  }

  override active(): OtelContext {
    const stored = super.active()
    const fiber = Fiber.getCurrent()
    return fiber === undefined || fiber.cache.tracerContext !== this.hook ? untagged(stored) : fiberContext(fiber, stored)
  }

  override with<A extends Array<unknown>, F extends (...args: A) => ReturnType<F>>(
    context: OtelContext,
    fn: F,
    thisArg?: ThisParameterType<F>,
    ...args: A
  ): ReturnType<F> {
    return super.with(this.framed(untagged(context)), fn, thisArg, ...args)
  }

  override attach(context: OtelContext): ReturnType<AsyncLocalStorageContextManager["attach"]> {
    return super.attach(this.framed(untagged(context)))
  }

  /** `context` tagged with the running fiber and its span, when a fiber runs. */
  private framed(context: OtelContext): OtelContext {
    const fiber = Fiber.getCurrent()
    return fiber === undefined ? context : new Frame(context, fiber, fiber.cache.span)
  }

  /** Evaluates `primitive`, a step that may start asynchronous work, inside its fiber's span's context. */
  private entering<X>(fiber: Fiber.Fiber<unknown, unknown>, primitive: Tracer.EffectPrimitive<X>): X {
    const stored = super.active()
    const context = fiberContext(fiber, stored)
    // The stored context itself: no span to propagate, or this fiber already entered its span.
    if (context === untagged(stored)) return evaluate(primitive, fiber)
    return super.with(new Frame(context, fiber, fiber.cache.span), evaluate<X>, undefined, primitive, fiber)
  }
}
