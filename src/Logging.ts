/**
 * Logging: Effect's `Effect.log*` lines written with the trace they belong to. Each line carries `service.name`, the
 * level, the message, Effect's annotations and log spans and, when written inside a span, that span's `trace_id`,
 * `span_id` and `trace_flags` (as OpenTelemetry's log instrumentations name them), so a line leads to its trace.
 * JSON lines when stdout is not a terminal or `LOG_FORMAT=json`, Effect's pretty format otherwise
 * (`LOG_FORMAT=pretty`); `LOG_LEVEL` sets the minimum level. Credentials in URLs are hidden and `Redacted` values shown
 * as `<redacted>` in every line, and in the span event each line also becomes (as Effect's own tracer logger does).
 * With `OTEL_LOGS_EXPORTER=otlp` the lines are also exported over OTLP gRPC ({@link OtlpLogs}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Logging } from "dag-observability"
 *
 * const program = Effect.log("looking up ada").pipe(
 *   Effect.withSpan("GET /users/:name"),
 *   Effect.provide(Logging.layer({ serviceName: "greeter", format: "json" }))
 * )
 * // {"timestamp":"…","level":"INFO","message":"looking up ada","service.name":"greeter","trace_id":"…",…}
 * ```
 */
import { Cause, Config, Effect, Layer, Logger, type LogLevel, Option, References } from "effect"
import { formatJson, type LogRecord, prettyWriter, recordOf, writeLine } from "./internal/logRecord.ts"
import type { Metrics } from "./Metrics.ts"
import * as OtlpLogs from "./OtlpLogs.ts"
import * as Settings from "./Settings.ts"
import { type Resource, resourceConfig } from "./Tracing.ts"

export { formatJson, type LogRecord } from "./internal/logRecord.ts"

/** How lines are written: one JSON object a line, or Effect's pretty format for a terminal. */
export type Format = "json" | "pretty"

/** What a record may be handed to besides the console: an exporter, a test's memory. */
export type Sink = (record: LogRecord) => void

/** The format when `LOG_FORMAT` is unset: pretty on a terminal, JSON lines otherwise (a file, a pipe, a collector). */
export const defaultFormat = (): Format => process.stdout.isTTY === true ? "pretty" : "json"

/** `LOG_FORMAT`: `json` or `pretty`; {@link defaultFormat} when unset. */
export const format: Config.Config<Format> = Config.map(
  Settings.optional<Format>("LOG_FORMAT", {
    expected: "json or pretty",
    parse: (text) => text.toLowerCase() === "json" ? "json" : text.toLowerCase() === "pretty" ? "pretty" : undefined
  }),
  Option.getOrElse(defaultFormat)
)

const levels: ReadonlyArray<LogLevel.LogLevel> = ["All", "Trace", "Debug", "Info", "Warn", "Error", "Fatal", "None"]

/** `LOG_LEVEL`: the least severe level written (`trace`, `debug`, `info`, `warn`, `error`, `fatal`, `all`, `none`). */
export const minimumLevel: Config.Config<LogLevel.LogLevel> = Settings.setting("LOG_LEVEL", "Info", {
  expected: "one of trace, debug, info, warn, error, fatal, all, none",
  parse: (text) => levels.find((level) => level.toLowerCase() === text.toLowerCase())
})

/** The record of one call of an Effect logger, for the program `serviceName`. */
export const record: (options: Logger.Options<unknown>, serviceName: string | undefined) => LogRecord = recordOf

/** Options of {@link make}. */
export interface LoggerOptions {
  /** The program's `service.name`, on every line. */
  readonly serviceName?: string | undefined
  readonly format: Format
  /** Where each record also goes. */
  readonly sinks?: ReadonlyArray<Sink> | undefined
}

/** The record as the event Effect's tracer logger adds to the current span, credentials hidden. */
const spanEvent = (options: Logger.Options<unknown>, line: LogRecord) => {
  const span = options.fiber.cache.span
  if (span === undefined || span._tag !== "Span" || span.status._tag === "Ended") return
  span.event(line.message, BigInt(line.timestamp.getTime()) * 1_000_000n, {
    ...line.annotations,
    "effect.fiberId": line.fiberId,
    "effect.logLevel": line.level.toUpperCase(),
    ...(line.cause === undefined ? {} : { "effect.cause": line.cause })
  })
}

/**
 * A logger writing each line to the console in `format` and as an event of the current span, then handing its
 * record to each of `sinks`.
 */
export const make = (options: LoggerOptions): Logger.Logger<unknown, void> => {
  const pretty = options.format === "pretty" ? prettyWriter() : undefined
  const sinks = options.sinks ?? []
  return Logger.make((call) => {
    const line = recordOf(call, options.serviceName)
    if (pretty === undefined) writeLine(call.fiber, formatJson(line))
    else pretty(call, line)
    spanEvent(call, line)
    for (const sink of sinks) sink(line)
  })
}

/** Options of {@link layer}. */
export interface Options extends LoggerOptions {
  /** The least severe level written; Effect's own (`Info`) when absent. */
  readonly minimumLevel?: LogLevel.LogLevel | undefined
}

/** The program's logger, instead of Effect's default ones: {@link make} with `options`, and the minimum level. */
export const layer = (options: Options): Layer.Layer<never> =>
  Layer.mergeAll(
    Layer.succeed(Logger.CurrentLoggers)(new Set([make(options)])),
    options.minimumLevel === undefined ? Layer.empty : Layer.succeed(References.MinimumLogLevel)(options.minimumLevel)
  )

/**
 * The logger of the program named `resource`, configured through Effect `Config`: `LOG_FORMAT`, `LOG_LEVEL`,
 * `OTEL_SERVICE_NAME` over the program's name, and `OTEL_LOGS_EXPORTER=otlp` for {@link OtlpLogs} (its exports
 * counted in `otlp_exported_logs_total{outcome}`; flushed within 3 seconds when the layer is released), unless
 * `OTEL_SDK_DISABLED=true`.
 */
export const layerConfig = (resource: Resource | string): Layer.Layer<never, Settings.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.gen(function*() {
    const settings = yield* Settings.read({
      resource: resourceConfig(resource),
      format,
      minimumLevel,
      otlp: OtlpLogs.enabled,
      endpoint: Settings.otlpLogsEndpoint,
      sdkDisabled: Settings.sdkDisabled
    })
    // OTEL_SDK_DISABLED turns every OpenTelemetry signal off, logs included; the console lines stay.
    const exporting = settings.otlp && !settings.sdkDisabled
    const sinks = exporting ? [yield* OtlpLogs.make({ resource: settings.resource, endpoint: settings.endpoint })] : []
    return layer({ ...settings, serviceName: settings.resource.serviceName, sinks })
  }))

/**
 * Logs the failure that ends a program as {@link make} would write it with the format the environment asks for
 * (`LOG_FORMAT`, else {@link defaultFormat}; a bad value falls back to it), on one line when its errors are one-line
 * errors: what `Main.runMain` prints when a program stops.
 */
export const logFailure = (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const settings = yield* Settings.read({ format, serviceName: Settings.serviceName }).pipe(
      Effect.orElseSucceed(() => ({ format: defaultFormat(), serviceName: Option.none<string>() }))
    )
    const logger = make({ format: settings.format, serviceName: Option.getOrUndefined(settings.serviceName) })
    // Effect's pretty format prints a cause on lines of its own: there, the cause is the message.
    yield* Effect.logError(settings.format === "pretty" ? Cause.pretty(cause) : cause).pipe(
      Effect.provideService(Logger.CurrentLoggers, new Set([logger]))
    )
  })
