/**
 * @internal
 *
 * An Effect tracer whose spans are recorded by Effect and handed to the
 * OpenTelemetry span processor as `ReadableSpan`s when they end, instead of
 * each Effect span wrapping an SDK span (`@effect/opentelemetry`'s
 * `OtelSpan`). The sampler still decides when the span starts, with the
 * parent's context; ids come from the SDK's generator; the processor sees
 * `onStart` and `onEnd` as with the SDK's own spans. Attributes are kept once,
 * in Effect's span, and converted when it ends.
 */
import {
  type Context as OtelContext,
  context as otelContext,
  type Link,
  SamplingDecision,
  SpanKind,
  type SpanContext,
  SpanStatusCode,
  trace,
  TraceFlags
} from "@opentelemetry/api"
import type { IdGenerator, Sampler } from "@opentelemetry/sdk-trace-base"
import { Cause, Context, Exit, Option, Tracer } from "effect"
import { contextWith, effectSpanKey, OtelParentSpanContext, otelSpanWith, spanContextOf } from "./fiberContext.ts"
import { attributesOf, hrTimeOf, RecordedSpan, type Recorder } from "./recordedSpan.ts"

/** What the tracer needs besides the processor: the sampler, the id generator and the context manager. */
export interface Options extends Recorder {
  readonly sampler: Sampler
  readonly ids: IdGenerator
  /** The context a span's sampler decides in, below its parent: the stored context, with no fiber's span. */
  readonly stored: () => OtelContext
}

const kinds: Record<Tracer.SpanKind, SpanKind> = {
  internal: SpanKind.INTERNAL,
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  producer: SpanKind.PRODUCER,
  consumer: SpanKind.CONSUMER
}

/** The active OpenTelemetry span as an Effect parent, unless Effect itself made it active. */
const activeParent = (active: OtelContext, annotations: Context.Context<never>): Option.Option<Tracer.AnySpan> => {
  const span = trace.getSpan(active)
  if (span === undefined || span === active.getValue(effectSpanKey)) return Option.none()
  const parent = span.spanContext()
  if (!trace.isSpanContextValid(parent)) return Option.none()
  return Option.some(Tracer.externalSpan({
    spanId: parent.spanId,
    traceId: parent.traceId,
    sampled: (parent.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED,
    annotations: Context.add(annotations, OtelParentSpanContext, parent)
  }))
}

const linkOf = (link: Tracer.SpanLink): Link => ({ context: spanContextOf(link.span), attributes: attributesOf(link.attributes) })

/** An Effect span recorded for OpenTelemetry: its OpenTelemetry side is {@link RecordedSpan}, `span`. */
class RecordingSpan implements Tracer.Span {
  readonly _tag = "Span"
  readonly name: string
  readonly kind: Tracer.SpanKind
  readonly annotations: Context.Context<never>
  readonly links: Array<Tracer.SpanLink>
  readonly parent: Option.Option<Tracer.AnySpan>
  readonly attributes = new Map<string, unknown>()
  readonly spanId: string
  readonly traceId: string
  readonly sampled: boolean
  /** What OpenTelemetry code sees of this span (read by `fiberContext.ts` as `@effect/opentelemetry`'s spans). */
  readonly span: RecordedSpan
  status: Tracer.SpanStatus

  constructor(tracer: Options, options: Parameters<Tracer.Tracer["span"]>[0]) {
    this.name = options.name
    this.kind = options.kind
    this.annotations = options.annotations
    this.links = options.links
    this.parent = options.root !== true && options.parent._tag === "None"
      ? activeParent(otelContext.active(), options.annotations)
      : options.parent
    const parentContext = this.parent._tag === "Some" ? spanContextOf(this.parent.value, options.annotations) : undefined
    const valid = parentContext !== undefined && trace.isSpanContextValid(parentContext)
    const traceId = valid ? parentContext.traceId : tracer.ids.generateTraceId()
    const spanId = tracer.ids.generateSpanId()
    const parentSpan = valid && this.parent._tag === "Some" ? otelSpanWith(this.parent.value, parentContext) : undefined
    const samplingContext = contextWith(tracer.stored(), parentSpan)
    const links = options.links.length === 0 ? [] : options.links.map(linkOf)
    const kind = kinds[options.kind]
    const result = tracer.sampler.shouldSample(samplingContext, traceId, options.name, kind, {}, links)
    const traceState = result.traceState ?? (valid ? parentContext.traceState : undefined)
    const sampled = result.decision === SamplingDecision.RECORD_AND_SAMPLED
    const traceFlags = sampled ? TraceFlags.SAMPLED : TraceFlags.NONE
    const spanContext: SpanContext = traceState === undefined
      ? { traceId, spanId, traceFlags }
      : { traceId, spanId, traceFlags, traceState }
    this.traceId = traceId
    this.spanId = spanId
    this.sampled = sampled
    this.status = { _tag: "Started", startTime: options.startTime }
    const recording = result.decision !== SamplingDecision.NOT_RECORD
    this.span = new RecordedSpan(
      tracer,
      this,
      options.name,
      kind,
      spanContext,
      valid ? parentContext : undefined,
      hrTimeOf(options.startTime),
      recording
    )
    if (links.length > 0) this.span.addLinks(links)
    if (result.attributes !== undefined) {
      for (const key of Object.keys(result.attributes)) this.attribute(key, result.attributes[key])
    }
    if (recording) tracer.processor.onStart(this.span, samplingContext)
  }

  attribute(key: string, value: unknown): void {
    if (this.status._tag === "Started") this.attributes.set(key, value)
  }

  event(name: string, startTime: bigint, attributes?: Record<string, unknown>): void {
    if (this.status._tag === "Started") this.span.event(name, attributes === undefined ? {} : attributesOf(attributes), hrTimeOf(startTime))
  }

  addLinks(links: ReadonlyArray<Tracer.SpanLink>): void {
    if (this.status._tag !== "Started") return
    for (const link of links) {
      this.links.push(link)
      this.span.addLink(linkOf(link))
    }
  }

  /** As `@effect/opentelemetry` ends its spans: `OK`, or `ERROR` with an exception event per error; interruption is an attribute. */
  end(endTime: bigint, exit: Exit.Exit<unknown, unknown>): void {
    if (this.status._tag === "Ended") return
    this.status = { _tag: "Ended", startTime: this.status.startTime, endTime, exit }
    if (!this.span.isRecording()) return this.span.finish(endTime)
    if (Exit.isSuccess(exit)) this.span.setStatus({ code: SpanStatusCode.OK })
    else if (Cause.hasInterruptsOnly(exit.cause)) this.attributes.set("effect.fiber.interrupted", true)
    else {
      const errors = Cause.prettyErrors(exit.cause, { includeCauseInStack: true })
      for (const error of errors) this.span.recordException(error, hrTimeOf(endTime))
      this.span.setStatus(errors.length > 0 ? { code: SpanStatusCode.ERROR, message: errors[0]!.message } : { code: SpanStatusCode.OK })
    }
    this.span.finish(endTime)
  }

  endFromOtel(endTime: bigint): void {
    this.end(endTime, Exit.void)
  }
}

/** An Effect tracer recording its spans for `options.processor`. */
export const make = (options: Options): Tracer.Tracer =>
  Tracer.make({ span: (spanOptions) => new RecordingSpan(options, spanOptions) })
