/**
 * @internal
 *
 * Effect's OpenTelemetry tracer runs every Effect step inside
 * `context.with(<current span's context>)` so that OpenTelemetry code outside
 * Effect sees the current span. It rebuilds that context (two copies of the
 * context map) and enters a new AsyncLocalStorage frame on every step. This
 * wrapper builds each span's context once, and skips entering it when the step
 * already runs inside it, which is the common case: a fiber resumed from a
 * callback scheduled inside the previous step inherits that step's context.
 */
import { type Context as OtelContext, context, createContextKey, type Span as OtelSpan, trace } from "@opentelemetry/api"
import { Context, Tracer } from "effect"

/** The key `@effect/opentelemetry` marks the span it installed with (`createContextKey` is keyed by name). */
const effectSpanKey = createContextKey("@effect/opentelemetry/OtelTracer/EffectSpan")

interface Entered {
  /** The active context the span's context was built on. */
  readonly base: OtelContext
  /** `base` with the span set. */
  readonly entered: OtelContext
}

const otelSpanOf = (span: Tracer.AnySpan | undefined): OtelSpan | undefined => {
  const candidate = (span as { readonly span?: OtelSpan } | undefined)?.span
  return candidate !== undefined && typeof candidate.spanContext === "function" ? candidate : undefined
}

/** Wraps `tracer` (an `@effect/opentelemetry` tracer) so each span's OpenTelemetry context is built once. */
export const cachingContext = (tracer: Tracer.Tracer): Tracer.Tracer => {
  const base = tracer.context
  if (base === undefined) return tracer
  const cache = new WeakMap<Tracer.AnySpan, Entered>()
  return Tracer.make({
    span: (options) => tracer.span(options),
    context: (primitive, fiber) => {
      const span = fiber.cache.span
      const otelSpan = otelSpanOf(span)
      if (span === undefined || otelSpan === undefined || Context.get(span.annotations, Tracer.DisablePropagation)) {
        return base(primitive, fiber)
      }
      const active = context.active()
      let known = cache.get(span)
      if (known !== undefined && active === known.entered) return primitive["~effect/Effect/evaluate"](fiber)
      if (known === undefined || active !== known.base) {
        known = { base: active, entered: trace.setSpan(active, otelSpan).setValue(effectSpanKey, otelSpan) }
        cache.set(span, known)
      }
      return context.with(known.entered, () => primitive["~effect/Effect/evaluate"](fiber))
    }
  })
}
