/**
 * @internal
 *
 * The OpenTelemetry side of a span recorded by Effect's tracer (see
 * `recordingTracer.ts`): what OpenTelemetry code sees while the span is
 * active (`trace.getActiveSpan()`, a parent for driver and gRPC spans) and,
 * once the span ends, the `ReadableSpan` handed to the span processor. It
 * keeps the SDK's rules for status, exceptions, events, links and limits.
 */
import {
  type Attributes,
  type AttributeValue,
  type Exception,
  type HrTime,
  type Link,
  type Span as OtelSpan,
  type SpanAttributes,
  type SpanContext,
  type SpanKind,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput
} from "@opentelemetry/api"
import { hrTime, hrTimeDuration, type InstrumentationScope, isTimeInput, timeInputToHrTime } from "@opentelemetry/core"
import type { Resource } from "@opentelemetry/resources"
import type { ReadableSpan, SpanProcessor, TimedEvent } from "@opentelemetry/sdk-trace-base"
import type { SpanLimits } from "../Settings.ts"
import { Inspectable } from "effect"

/** What every span of one tracer shares. */
export interface Recorder {
  readonly processor: SpanProcessor
  readonly resource: Resource
  readonly scope: InstrumentationScope
  readonly limits: SpanLimits
}

/** Where the span's attributes live until it ends: Effect's own span. */
export interface AttributeSink {
  attribute(key: string, value: unknown): void
  readonly attributes: ReadonlyMap<string, unknown>
  /** Ends the span from OpenTelemetry code (`span.end()`), at `endTime` in nanoseconds. */
  endFromOtel(endTime: bigint): void
}

const billion = BigInt(1_000_000_000)

/** Nanoseconds since the epoch as an `HrTime`. */
export const hrTimeOf = (nanos: bigint): HrTime => [Number(nanos / billion), Number(nanos % billion)]

const nanosOf = (time: HrTime): bigint => BigInt(time[0]) * billion + BigInt(time[1])

const truncate = (value: AttributeValue, limit: number): AttributeValue => {
  if (limit >= Number.POSITIVE_INFINITY) return value
  if (typeof value === "string") return value.length > limit ? value.slice(0, limit) : value
  if (Array.isArray(value)) {
    return value.map((item: unknown) => typeof item === "string" && item.length > limit ? item.slice(0, limit) : item) as AttributeValue
  }
  return value
}

/** Appends `item` to `list`, which keeps at most `limit` (the oldest go first); answers how many were dropped. */
const pushLimited = <A>(list: Array<A>, item: A, limit: number): number => {
  if (list.length < limit) {
    list.push(item)
    return 0
  }
  if (limit > 0) {
    list.shift()
    list.push(item)
  }
  return 1
}

/**
 * An attribute value OpenTelemetry can carry, from anything Effect code sets
 * on a span, converted as `@effect/opentelemetry` converts it: bigints and
 * mixed arrays as strings, objects through Effect's `Inspectable`.
 */
export const attributeValueOf = (value: unknown): AttributeValue => {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value
  if (typeof value === "bigint") return value.toString()
  if (Array.isArray(value) && isHomogeneous(value)) return value.slice() as AttributeValue
  return Inspectable.toStringUnknown(value)
}

const isHomogeneous = (array: ReadonlyArray<unknown>): boolean => {
  const type = typeof array[0]
  return (array.length === 0 || type === "string" || type === "number" || type === "boolean") &&
    array.every((item) => typeof item === type)
}

/** `record`'s values as OpenTelemetry attribute values. */
export const attributesOf = (record: Readonly<Record<string, unknown>>): Attributes => {
  const attributes: Attributes = {}
  for (const key of Object.keys(record)) attributes[key] = attributeValueOf(record[key])
  return attributes
}

/**
 * A span as OpenTelemetry sees it: an OpenTelemetry `Span` while it runs, a
 * `ReadableSpan` once it has ended. Its attributes are Effect's span's,
 * converted and limited when it ends.
 */
export class RecordedSpan implements OtelSpan, ReadableSpan {
  name: string
  readonly kind: SpanKind
  readonly parentSpanContext?: SpanContext
  readonly startTime: HrTime
  endTime: HrTime = [0, 0]
  duration: HrTime = [-1, -1]
  status: SpanStatus = { code: SpanStatusCode.UNSET }
  attributes: Attributes = {}
  readonly links: Array<Link> = []
  readonly events: Array<TimedEvent> = []
  droppedAttributesCount = 0
  droppedEventsCount = 0
  droppedLinksCount = 0
  ended = false
  readonly resource: Resource
  readonly instrumentationScope: InstrumentationScope
  readonly #context: SpanContext
  readonly #recorder: Recorder
  readonly #sink: AttributeSink
  readonly #recording: boolean
  /** Set while the processor's `onEnding` runs: what it sets goes straight into the converted attributes. */
  #finishing = false
  /** How many attributes {@link RecordedSpan.attributes} holds once converted. */
  #attributeCount = 0

  constructor(
    recorder: Recorder,
    sink: AttributeSink,
    name: string,
    kind: SpanKind,
    context: SpanContext,
    parent: SpanContext | undefined,
    startTime: HrTime,
    recording: boolean
  ) {
    this.#recorder = recorder
    this.#sink = sink
    this.#context = context
    this.#recording = recording
    this.name = name
    this.kind = kind
    if (parent !== undefined) this.parentSpanContext = parent
    this.startTime = startTime
    this.resource = recorder.resource
    this.instrumentationScope = recorder.scope
  }

  spanContext(): SpanContext {
    return this.#context
  }

  isRecording(): boolean {
    return this.#recording && !this.ended
  }

  setAttribute(key: string, value?: AttributeValue): this {
    if (value === undefined || value === null || key.length === 0 || this.ended) return this
    if (this.#finishing) this.#keep(key, value)
    else this.#sink.attribute(key, value)
    return this
  }

  setAttributes(attributes: SpanAttributes): this {
    for (const key of Object.keys(attributes)) this.setAttribute(key, attributes[key])
    return this
  }

  addEvent(name: string, attributesOrTime?: SpanAttributes | TimeInput, time?: TimeInput): this {
    if (this.ended) return this
    const startTime = isTimeInput(attributesOrTime) ? attributesOrTime : time
    const attributes = isTimeInput(attributesOrTime) || attributesOrTime === undefined ? {} : attributesOrTime
    return this.event(name, attributesOf(attributes), startTime === undefined ? hrTime() : timeInputToHrTime(startTime))
  }

  /** Adds an event whose attributes are already OpenTelemetry's, at most `eventCountLimit` kept (the oldest go). */
  event(name: string, attributes: Attributes, time: HrTime): this {
    if (this.ended) return this
    const event = { name, attributes, time, droppedAttributesCount: 0 }
    this.droppedEventsCount += pushLimited(this.events, event, this.#recorder.limits.eventCountLimit)
    return this
  }

  addLink(link: Link): this {
    if (this.ended) return this
    this.droppedLinksCount += pushLimited(this.links, link, this.#recorder.limits.linkCountLimit)
    return this
  }

  addLinks(links: Array<Link>): this {
    for (const link of links) this.addLink(link)
    return this
  }

  /** The SDK's rule: `OK` is final; `UNSET` changes nothing. */
  setStatus(status: SpanStatus): this {
    if (this.ended || status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this
    this.status = status.code === SpanStatusCode.ERROR && typeof status.message === "string"
      ? { code: status.code, message: status.message }
      : { code: status.code }
    return this
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name
    return this
  }

  end(endTime?: TimeInput): void {
    this.#sink.endFromOtel(nanosOf(endTime === undefined ? hrTime() : timeInputToHrTime(endTime)))
  }

  /** The SDK's `exception` event: type (its code or name), message and stack. */
  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {}
    if (typeof exception === "string") attributes["exception.message"] = exception
    else {
      const type = exception.code !== undefined ? String(exception.code) : exception.name
      if (type !== undefined && type !== "") attributes["exception.type"] = type
      if (exception.message !== undefined && exception.message !== "") attributes["exception.message"] = exception.message
      if (exception.stack !== undefined) attributes["exception.stacktrace"] = exception.stack
    }
    if (attributes["exception.type"] !== undefined || attributes["exception.message"] !== undefined) {
      this.event("exception", attributes, time === undefined ? hrTime() : timeInputToHrTime(time))
    }
  }

  /** Keeps a converted attribute under the span limits: past the count it is dropped and counted, long values cut. */
  #keep(key: string, value: AttributeValue): void {
    const { attributeCountLimit, attributeValueLengthLimit } = this.#recorder.limits
    if (!Object.hasOwn(this.attributes, key)) {
      if (this.#attributeCount >= attributeCountLimit) {
        this.droppedAttributesCount++
        return
      }
      this.#attributeCount++
    }
    this.attributes[key] = truncate(value, attributeValueLengthLimit)
  }

  /** Ends the span at `endTime`; if it records, its attributes taken from Effect's span and handed to the processor. */
  finish(endTime: bigint): void {
    if (this.ended) return
    if (!this.#recording) {
      this.ended = true
      return
    }
    this.attributes = {}
    for (const [key, value] of this.#sink.attributes) this.#keep(key, attributeValueOf(value))
    this.endTime = hrTimeOf(endTime)
    this.duration = hrTimeDuration(this.startTime, this.endTime)
    if (this.duration[0] < 0) {
      this.endTime = [this.startTime[0], this.startTime[1]]
      this.duration = [0, 0]
    }
    // The SDK's order: `onEnding` while the span can still be changed, then ended, then `onEnd`.
    this.#finishing = true
    this.#recorder.processor.onEnding?.(this)
    this.ended = true
    this.#recorder.processor.onEnd(this)
  }
}
