/**
 * Tracing: Effect spans recorded by the OpenTelemetry SDK (through
 * `@effect/opentelemetry`) and exported over OTLP gRPC in batches.
 *
 * The provider is registered globally with the AsyncLocalStorage context
 * manager and the W3C propagators, so OpenTelemetry code outside Effect (the
 * MongoDB monitor, gRPC interceptors, contrib instrumentations) sees Effect's
 * current span as its parent. Export outcomes are counted in
 * `otlp_exported_spans_total{outcome}`; a missing collector costs failed
 * exports, never a crash, and shutdown gives up after `shutdownTimeout`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Metrics, Tracing } from "dag-observability"
 *
 * const TracingLive = Tracing.layer("poh-node").pipe(Layer.provide(Metrics.Metrics.layer))
 * ```
 */
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import * as OtelResource from "@effect/opentelemetry/Resource"
import { type Attributes, context, createNoopMeter, type MeterProvider, propagation, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { ExportResultCode } from "@opentelemetry/core"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import { Duration, Effect, Layer, References, Tracer } from "effect"
import * as Config from "./Config.ts"
import { enteringOncePerRun } from "./internal/fiberContext.ts"
import { Metrics } from "./Metrics.ts"

/** Builds the sampler a {@link Config.SamplerSetting} names. */
export const makeSampler = (setting: Config.SamplerSetting): Sampler => {
  const ratio = new TraceIdRatioBasedSampler(setting.ratio)
  switch (setting.name) {
    case "always_on":
      return new AlwaysOnSampler()
    case "always_off":
      return new AlwaysOffSampler()
    case "traceidratio":
      return ratio
    case "parentbased_always_on":
      return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: ratio })
  }
}

/** Options of {@link layerProvider}. */
export interface ProviderOptions {
  readonly serviceName: string
  readonly sampler: Sampler
  /** Resource attributes beside `service.name`. */
  readonly attributes?: Attributes
  /** How long shutdown may flush before it gives up. */
  readonly shutdownTimeout: Duration.Input
}

/**
 * Installs a globally registered `NodeTracerProvider` over `processor` as
 * Effect's tracer. Each run of a fiber makes its current span the active
 * OpenTelemetry span once, through the provider's AsyncLocalStorage context
 * manager, rather than once per Effect step. Release flushes and shuts the provider down within
 * `shutdownTimeout`, swallowing export failures, then unregisters the globals.
 */
export const layerProvider = (processor: SpanProcessor, options: ProviderOptions): Layer.Layer<never> =>
  Layer.unwrap(Effect.sync(() => {
    const contextManager = new AsyncLocalStorageContextManager()
    const registered = Effect.acquireRelease(
      Effect.sync(() => {
        const provider = new NodeTracerProvider({
          resource: resourceFromAttributes(
            OtelResource.configToAttributes({
              serviceName: options.serviceName,
              ...(options.attributes === undefined ? {} : { attributes: options.attributes })
            })
          ),
          sampler: options.sampler,
          spanProcessors: [processor]
        })
        provider.register({ contextManager })
        return provider
      }),
      (provider) =>
        Effect.tryPromise(() => provider.forceFlush().finally(() => provider.shutdown())).pipe(
          Effect.ignore,
          Effect.timeoutOption(options.shutdownTimeout),
          Effect.ensuring(Effect.sync(() => {
            trace.disable()
            context.disable()
            propagation.disable()
          }))
        )
    )
    return Layer.effect(Tracer.Tracer, Effect.map(OtelTracer.make, (tracer) => enteringOncePerRun(tracer, contextManager)))
      .pipe(
        Layer.provide(OtelTracer.layerTracer),
        Layer.provide(Layer.effect(OtelTracer.OtelTracerProvider, registered))
      )
  }))

/**
 * Wraps an exporter so each batch's outcome is counted, and never rejects:
 * a failed export is reported to the processor as a failure result.
 */
export const countingExporter = (
  exporter: SpanExporter,
  record: Metrics["Service"]["recordSpanExport"]
): SpanExporter => ({
  export: (spans, done) => {
    try {
      exporter.export(spans, (result) => {
        record(result.code === ExportResultCode.SUCCESS ? "exported" : "failed", spans.length)
        done(result)
      })
    } catch (error) {
      record("failed", spans.length)
      done({ code: ExportResultCode.FAILED, error: error instanceof Error ? error : new Error(String(error)) })
    }
  },
  shutdown: () => exporter.shutdown().catch(() => undefined),
  forceFlush: () => exporter.forceFlush?.().catch(() => undefined) ?? Promise.resolve()
})

/**
 * A meter provider for the batch processor's self-observability that keeps
 * only what it says of dropped spans (`error.type="queue_full"`), counted as
 * `otlp_exported_spans_total{outcome="dropped"}`.
 */
const dropCounter = (record: Metrics["Service"]["recordSpanExport"]): MeterProvider => ({
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

/** Options of {@link make}. */
export interface Options {
  readonly serviceName: string
  readonly otlpEndpoint: string
  readonly sampler: Config.SamplerSetting
  readonly attributes?: Attributes
  /** Spans kept waiting for export at most; more are dropped and counted. */
  readonly maxQueueSize?: number
  readonly scheduledDelay?: Duration.Input
  readonly exportTimeout?: Duration.Input
  readonly shutdownTimeout?: Duration.Input
}

/** Tracing exported over OTLP gRPC to `otlpEndpoint`, with a bounded batch queue. */
export const make = (options: Options): Layer.Layer<never, never, Metrics> =>
  Layer.unwrap(Effect.gen(function*() {
    const metrics = yield* Metrics
    const exporter = new OTLPTraceExporter({
      url: options.otlpEndpoint,
      timeoutMillis: Duration.toMillis(options.exportTimeout ?? "5 seconds")
    })
    const processor = new BatchSpanProcessor({
      exporter: countingExporter(exporter, metrics.recordSpanExport),
      maxQueueSize: options.maxQueueSize ?? 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: Duration.toMillis(options.scheduledDelay ?? "1 second"),
      exportTimeoutMillis: Duration.toMillis(options.exportTimeout ?? "5 seconds"),
      selfObsMeterProvider: dropCounter(metrics.recordSpanExport)
    })
    return layerProvider(processor, {
      serviceName: options.serviceName,
      sampler: makeSampler(options.sampler),
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
      shutdownTimeout: options.shutdownTimeout ?? "3 seconds"
    })
  }))

/**
 * Tracing from the environment (SPEC §3): OTLP endpoint, sampler and service
 * name. `OTEL_SDK_DISABLED=true` turns tracing off: Effect's tracer is disabled
 * too, so no span is made or exported, and no latency sample carries an
 * exemplar pointing at a trace that exists nowhere; metrics stay on.
 */
export const layer = (serviceName: string): Layer.Layer<never, Config.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.gen(function*() {
    if (yield* Config.sdkDisabled) return Layer.succeed(References.TracerEnabled)(false)
    return make(yield* Effect.all({
      serviceName: Config.serviceName(serviceName),
      otlpEndpoint: Config.otlpEndpoint,
      sampler: Config.sampler
    }))
  }))
