/**
 * Log records exported over OTLP gRPC through OpenTelemetry's logs SDK, as spans are: a `LoggerProvider` with the
 * program's resource, a bounded `BatchLogRecordProcessor` (2048 records waiting at most; more are dropped and
 * counted) and the OTLP gRPC log exporter. Every record carries the trace and span ids of the span it was logged in;
 * outcomes are counted in `otlp_exported_logs_total{outcome}` (exported, failed, dropped). With no collector the
 * program runs on and exports fail, counted; release flushes for at most `shutdownTimeout` (3 seconds).
 *
 * {@link Logging} turns it on when `OTEL_LOGS_EXPORTER=otlp`, sending to `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else the
 * shared endpoint variables (`Settings.otlpLogsEndpointVariables`).
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { Logging, Metrics, OtlpLogs } from "dag-observability"
 *
 * const LogsLive = Layer.unwrap(Effect.gen(function*() {
 *   const otlp = yield* OtlpLogs.make({ resource: { serviceName: "greeter" }, endpoint: "http://127.0.0.1:4317" })
 *   return Logging.layer({ serviceName: "greeter", format: "json", sinks: [otlp] })
 * })).pipe(Layer.provide(Metrics.layer))
 * ```
 */
import { SeverityNumber } from "@opentelemetry/api-logs"
import { ROOT_CONTEXT, trace } from "@opentelemetry/api"
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-grpc"
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordProcessor } from "@opentelemetry/sdk-logs"
import { type Config, Duration, Effect, type LogLevel, type Scope } from "effect"
import { countingExporter, dropCounter, outcomeCounter } from "./internal/exportCounting.ts"
import type { LogRecord } from "./internal/logRecord.ts"
import { Metrics } from "./Metrics.ts"
import * as Settings from "./Settings.ts"
import { otelResource, type Resource } from "./Tracing.ts"

const severities: Record<LogLevel.LogLevel, SeverityNumber> = {
  All: SeverityNumber.UNSPECIFIED,
  None: SeverityNumber.UNSPECIFIED,
  Trace: SeverityNumber.TRACE,
  Debug: SeverityNumber.DEBUG,
  Info: SeverityNumber.INFO,
  Warn: SeverityNumber.WARN,
  Error: SeverityNumber.ERROR,
  Fatal: SeverityNumber.FATAL
}

/** `OTEL_LOGS_EXPORTER`: whether `otlp` is among its comma-separated exporters (`otlp`, `console`, `none`). */
export const enabled: Config.Config<boolean> = Settings.setting("OTEL_LOGS_EXPORTER", false, {
  expected: "otlp, console or none (or several, comma-separated)",
  parse: (text) => {
    const names = text.toLowerCase().split(",").map((name) => name.trim())
    return names.every((name) => ["otlp", "console", "none"].includes(name)) ? names.includes("otlp") : undefined
  }
})

/** A record's OpenTelemetry attributes: its annotations, fiber, log spans and error, as `OtelLogger` names them. */
const attributesOf = (record: LogRecord) => {
  const attributes: Record<string, unknown> = { ...record.annotations, "effect.fiberId": record.fiberId }
  for (const [label, millis] of Object.entries(record.spans)) attributes[`effect.log_span.${label}`] = millis
  if (record.cause !== undefined) {
    attributes["exception.type"] = record.errorType
    attributes["exception.message"] = record.errorMessage
    attributes["exception.stacktrace"] = record.cause
  }
  return attributes as Record<string, string>
}

/** Hands `record` to `provider`'s logger, in the context of the span it was logged in. */
const emitTo = (provider: LoggerProvider) => {
  const logger = provider.getLogger("dag-observability")
  return (record: LogRecord): void =>
    logger.emit({
      timestamp: record.timestamp,
      severityNumber: severities[record.level],
      severityText: record.level.toUpperCase(),
      body: record.message,
      attributes: attributesOf(record),
      context: record.traceId === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, {
        traceId: record.traceId,
        spanId: record.spanId!,
        traceFlags: record.traceFlags!
      })
    })
}

/** Options of {@link make}. */
export interface Options {
  readonly resource: Resource
  /** The OTLP gRPC collector, such as `http://localhost:4317`. */
  readonly endpoint: string
  /** Records kept waiting for export at most; more are dropped and counted. */
  readonly maxQueueSize?: number
  readonly scheduledDelay?: Duration.Input
  readonly exportTimeout?: Duration.Input
  readonly shutdownTimeout?: Duration.Input
}

/**
 * Installs the logs SDK exporting to `options.endpoint` for the scope: a sink handing each record to it. Release
 * flushes and shuts it down within `shutdownTimeout`, swallowing export failures.
 */
export const makeWith = (
  processor: LogRecordProcessor,
  options: Pick<Options, "resource" | "shutdownTimeout">
): Effect.Effect<(record: LogRecord) => void, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new LoggerProvider({ resource: otelResource(options.resource), processors: [processor] })),
      (provider) =>
        Effect.tryPromise(() => provider.forceFlush().finally(() => provider.shutdown())).pipe(
          Effect.ignore,
          Effect.timeoutOption(options.shutdownTimeout ?? "3 seconds")
        )
    ),
    emitTo
  )

/**
 * Log records exported over OTLP gRPC to `options.endpoint` in bounded batches, outcomes counted in
 * `otlp_exported_logs_total{outcome}`: a sink for {@link Logging}, for the scope.
 */
export const make = (
  options: Options
): Effect.Effect<(record: LogRecord) => void, never, Scope.Scope | Metrics> =>
  Effect.gen(function*() {
    const record = outcomeCounter(
      yield* Metrics,
      "otlp_exported_logs_total",
      "Log records handed to the OTLP exporter, by outcome (exported, failed, dropped)."
    )
    const exportTimeout = Duration.toMillis(options.exportTimeout ?? "5 seconds")
    const exporter = new OTLPLogExporter({ url: options.endpoint, timeoutMillis: exportTimeout })
    const processor = new BatchLogRecordProcessor({
      exporter: countingExporter(exporter, record),
      maxQueueSize: options.maxQueueSize ?? 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: Duration.toMillis(options.scheduledDelay ?? "1 second"),
      exportTimeoutMillis: exportTimeout,
      selfObsMeterProvider: dropCounter(record)
    })
    return yield* makeWith(processor, options)
  })
