/**
 * @internal
 *
 * One log call of an Effect program as a record: level, message, annotations, log spans, the cause, and the trace and
 * span it was made in, with every credential in a URL hidden (`Settings.redactCredentials`) and `Redacted` values
 * shown as `<redacted>`; and the record as a JSON line, or in Effect's pretty format with the trace fields as
 * annotations.
 */
import { Cause, Console, type Fiber, Formatter, Logger, type LogLevel, References } from "effect"
import { redactCredentials } from "../Settings.ts"
import { otelSpanOf } from "./fiberContext.ts"

/** One log line of a program. */
export interface LogRecord {
  readonly timestamp: Date
  readonly level: LogLevel.LogLevel
  /** The message's parts, each a string or Effect's rendering of a value, joined by spaces; else the cause. */
  readonly message: string
  /** The `service.name` of the program, when known. */
  readonly serviceName: string | undefined
  /** The trace and span the line was logged in (32 and 16 hex digits), and the span's W3C trace flags. */
  readonly traceId: string | undefined
  readonly spanId: string | undefined
  readonly traceFlags: number | undefined
  readonly fiberId: number
  /** Effect's log annotations, as JSON values. */
  readonly annotations: Readonly<Record<string, unknown>>
  /** Effect's log spans: label → milliseconds since it began. */
  readonly spans: Readonly<Record<string, number>>
  /** The cause logged with the line (`Cause.pretty`), its first error's name and message. */
  readonly cause: string | undefined
  readonly errorType: string | undefined
  readonly errorMessage: string | undefined
}

/** `value` as JSON would carry it, every string in it with credentials hidden. */
const jsonValue = (value: unknown): unknown => {
  if (typeof value === "string") return redactCredentials(value)
  if (typeof value === "number" || typeof value === "boolean" || value === null || value === undefined) return value
  if (typeof value === "function" || typeof value === "symbol") return redactCredentials(String(value))
  return JSON.parse(Formatter.formatJson(value), (_, inner) => typeof inner === "string" ? redactCredentials(inner) : inner)
}

const textOf = (part: unknown): string => typeof part === "string" ? part : Formatter.format(part)

/** The record of one call of an Effect logger, for the program `serviceName`. */
export const recordOf = (options: Logger.Options<unknown>, serviceName: string | undefined): LogRecord => {
  const { cause, date, fiber, logLevel, message } = options
  const parts: ReadonlyArray<unknown> = Array.isArray(message) ? message : [message]
  const failed = cause.reasons.length > 0
  const causeText = failed ? redactCredentials(Cause.pretty(cause)) : undefined
  const error = failed ? Cause.prettyErrors(cause)[0] : undefined
  const text = parts.length === 0
    ? causeText ?? ""
    : redactCredentials(parts.length === 1 ? textOf(parts[0]) : parts.map(textOf).join(" "))
  const span = fiber.cache.span
  const traced = span !== undefined && span.traceId.length === 32 && span.spanId.length === 16
  const annotations: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(fiber.getRef(References.CurrentLogAnnotations))) {
    annotations[key] = jsonValue(value)
  }
  const spans: Record<string, number> = {}
  const now = date.getTime()
  for (const [label, started] of fiber.getRef(References.CurrentLogSpans)) spans[label] = now - started
  return {
    timestamp: date,
    level: logLevel,
    message: text,
    serviceName,
    traceId: traced ? span.traceId : undefined,
    spanId: traced ? span.spanId : undefined,
    traceFlags: traced ? otelSpanOf(span).spanContext().traceFlags : undefined,
    fiberId: fiber.id,
    annotations,
    spans,
    cause: causeText,
    errorType: error?.name,
    errorMessage: error === undefined ? undefined : redactCredentials(error.message)
  }
}

const hex = (flags: number) => flags.toString(16).padStart(2, "0")

const levelNames = new Map<string, string>()
const levelName = (level: string): string => {
  let name = levelNames.get(level)
  if (name === undefined) levelNames.set(level, name = level.toUpperCase())
  return name
}

/** The fields a record adds to what Effect shows: `service.name` and, inside a span, the trace's. */
const traceFields = (record: LogRecord, into: Record<string, unknown>): Record<string, unknown> => {
  if (record.serviceName !== undefined) into["service.name"] = record.serviceName
  if (record.traceId !== undefined) {
    into["trace_id"] = record.traceId
    into["span_id"] = record.spanId
    into["trace_flags"] = hex(record.traceFlags!)
  }
  return into
}

const hasAny = (fields: Readonly<Record<string, unknown>>): boolean => {
  for (const _ in fields) return true
  return false
}

/** The record as one JSON line (no newline in it): `timestamp`, `level`, `message`, `service.name`, `trace_id`, … */
export const formatJson = (record: LogRecord): string => {
  const line = traceFields(record, {
    timestamp: record.timestamp.toISOString(),
    level: levelName(record.level),
    message: record.message
  })
  line["fiberId"] = `#${record.fiberId}`
  if (record.cause !== undefined) {
    line["cause"] = record.cause
    line["error.type"] = record.errorType
  }
  if (hasAny(record.spans)) line["spans"] = record.spans
  if (hasAny(record.annotations)) line["annotations"] = record.annotations
  return JSON.stringify(line)
}

/** Writes `line` to the fiber's console: stdout, or stderr under `Logger.LogToStderr`. */
export const writeLine = (fiber: Fiber.Fiber<unknown, unknown>, line: string): void => {
  const console = fiber.getRef(Console.Console)
  if (fiber.getRef(Logger.LogToStderr)) console.error(line)
  else console.log(line)
}

const redactArguments = (args: ReadonlyArray<unknown>) =>
  args.map((arg) => typeof arg === "string" ? redactCredentials(arg) : arg)

/** A console writing through `base`, credentials hidden in every string it is given. */
const redactingConsole = (base: Console.Console): Console.Console =>
  Object.assign(Object.create(base) as Console.Console, {
    log: (...args: ReadonlyArray<unknown>) => base.log(...redactArguments(args)),
    error: (...args: ReadonlyArray<unknown>) => base.error(...redactArguments(args)),
    group: (...args: ReadonlyArray<unknown>) => base.group(...args),
    groupEnd: () => base.groupEnd()
  })

/**
 * Effect's pretty logger (`Logger.consolePretty`), showing `service.name` and the trace fields of each record as
 * annotations, and hiding credentials in what it prints.
 */
export const prettyWriter = () => {
  const pretty = Logger.consolePretty({ mode: "tty" })
  const consoles = new WeakMap<Console.Console, Console.Console>()
  return (options: Logger.Options<unknown>, record: LogRecord): void => {
    const { fiber } = options
    const base = fiber.getRef(Console.Console)
    let console = consoles.get(base)
    if (console === undefined) consoles.set(base, console = redactingConsole(base))
    const annotations = traceFields(record, { ...fiber.getRef(References.CurrentLogAnnotations) })
    const view = Object.create(fiber, {
      getRef: {
        value: <X>(ref: { readonly key: string }): X =>
          (ref.key === References.CurrentLogAnnotations.key
            ? annotations
            : ref.key === Console.Console.key
            ? console
            : fiber.getRef(ref as never)) as X
      }
    }) as Fiber.Fiber<unknown, unknown>
    pretty.log({ ...options, fiber: view })
  }
}
