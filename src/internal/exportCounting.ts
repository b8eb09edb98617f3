/**
 * @internal
 *
 * What became of the telemetry handed to an OTLP exporter, counted: each batch's outcome (exported, failed) from the
 * exporter's answer, and drops of a full batch queue from what the batch processors of the OpenTelemetry SDKs report
 * about themselves (`error.type="queue_full"`). Spans and log records alike.
 */
import { type Attributes, createNoopMeter, type MeterProvider } from "@opentelemetry/api"
import { type ExportResult, ExportResultCode } from "@opentelemetry/core"
import type { Metrics } from "../Metrics.ts"

/** What became of items handed to the exporter. */
export type ExportOutcome = "exported" | "failed" | "dropped"

/** Counts `count` items whose export ended as `outcome`. */
export type RecordExport = (outcome: ExportOutcome, count: number) => void

/** The counter `name{outcome}` on the registry, as a {@link RecordExport}. */
export const outcomeCounter = (metrics: Metrics["Service"], name: string, help: string): RecordExport => {
  const counter = metrics.counter({ name, help, labelNames: ["outcome"] })
  return (outcome, count) => counter.inc({ outcome }, count)
}

/** An OpenTelemetry exporter of `T`s: of spans, of log records. */
export interface Exporter<T> {
  export(items: Array<T>, done: (result: ExportResult) => void): void
  shutdown(): Promise<void>
  forceFlush?(): Promise<void>
}

/**
 * Wraps an exporter so each batch's outcome is counted, and never rejects:
 * a failed export is reported to the processor as a failure result.
 */
export const countingExporter = <T>(exporter: Exporter<T>, record: RecordExport): Required<Exporter<T>> => ({
  export: (items, done) => {
    try {
      exporter.export(items, (result) => {
        record(result.code === ExportResultCode.SUCCESS ? "exported" : "failed", items.length)
        done(result)
      })
    } catch (error) {
      record("failed", items.length)
      done({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) })
    }
  },
  shutdown: () => exporter.shutdown().catch(() => undefined),
  forceFlush: () => exporter.forceFlush?.().catch(() => undefined) ?? Promise.resolve()
})

/**
 * A meter provider for a batch processor's self-observability that keeps
 * only what it says of dropped items (`error.type="queue_full"`), counted as
 * `dropped`.
 */
export const dropCounter = (record: RecordExport): MeterProvider => ({
  getMeter: () => {
    const meter = createNoopMeter()
    return Object.assign(Object.create(meter) as typeof meter, {
      createCounter: () => ({
        add: (count: number, attributes?: Attributes) => {
          if (attributes?.["error.type"] === "queue_full") record("dropped", count)
        }
      })
    })
  }
})
