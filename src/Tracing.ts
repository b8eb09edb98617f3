/**
 * Tracing: Effect spans handed to the OpenTelemetry SDK's span processor
 * and exported over OTLP gRPC in batches. Each span is recorded by Effect
 * itself (the SDK's sampler decides when it starts, its ids are the SDK's)
 * and becomes the SDK's `ReadableSpan` when it ends, instead of each Effect
 * span wrapping an SDK span: the same spans for about two thirds of the cost.
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
 * const TracingLive = Tracing.layerConfig({ serviceName: "poh-node", serviceVersion: "1.2.0" }).pipe(
 *   Layer.provide(Metrics.layer)
 * )
 * ```
 */
import { type Attributes, context, propagation, trace } from "@opentelemetry/api"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc"
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources"
import { BatchSpanProcessor } from "@opentelemetry/sdk-trace"
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  RandomIdGenerator,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler
} from "@opentelemetry/sdk-trace-base"
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node"
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions"
import { Config, Duration, Effect, Layer, Option, References, Tracer, Version } from "effect"
import {
  countingExporter as counting,
  dropCounter,
  type ExportOutcome,
  outcomeCounter,
  type RecordExport as Counting
} from "./internal/exportCounting.ts"
import { FiberContextManager } from "./internal/fiberContext.ts"
import * as RecordingTracer from "./internal/recordingTracer.ts"
import { Metrics } from "./Metrics.ts"
import * as Settings from "./Settings.ts"

/** Who is tracing: the program's name and, optionally, its version and more resource attributes. */
export interface Resource {
  readonly serviceName: string
  readonly serviceVersion?: string | undefined
  /** Resource attributes such as `deployment.environment.name`. */
  readonly attributes?: Attributes | undefined
}

/**
 * The resource attributes of `resource` as the environment completes them:
 * `OTEL_RESOURCE_ATTRIBUTES` under what the program gives (the OpenTelemetry
 * specification puts the user's resource first), `OTEL_SERVICE_NAME` over
 * both for `service.name`.
 */
export const resourceConfig = (resource: Resource | string): Config.Config<Resource> =>
  Config.map(Config.all([Settings.serviceName, Settings.resourceAttributes]), ([serviceName, fromEnv]) => {
    const given = typeof resource === "string" ? { serviceName: resource } : resource
    const { "service.name": _, "service.version": envVersion, ...attributes } = fromEnv
    return {
      serviceName: Option.getOrElse(serviceName, () => given.serviceName),
      serviceVersion: given.serviceVersion ?? envVersion,
      attributes: { ...attributes, ...given.attributes }
    }
  })

/**
 * The OpenTelemetry resource of `resource`: the SDK's own `telemetry.sdk.*`
 * attributes, then the program's attributes, `service.name` and
 * `service.version`.
 */
export const otelResource = ({ attributes, serviceName, serviceVersion }: Resource) =>
  defaultResource().merge(resourceFromAttributes({
    ...attributes,
    [ATTR_SERVICE_NAME]: serviceName,
    ...(serviceVersion === undefined ? {} : { [ATTR_SERVICE_VERSION]: serviceVersion })
  }))

/** Builds the sampler a {@link Settings.SamplerSetting} names. */
export const makeSampler = (setting: Settings.SamplerSetting): Sampler => {
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
  readonly resource: Resource
  readonly sampler: Sampler
  /** How long shutdown may flush before it gives up. */
  readonly shutdownTimeout: Duration.Input
  /** What a span keeps at most; the specification's defaults ({@link Settings.defaultSpanLimits}) when absent. */
  readonly spanLimits?: Settings.SpanLimits | undefined
}

/**
 * Installs a globally registered `NodeTracerProvider` over `processor`, for
 * OpenTelemetry code, and Effect's tracer recording into the same processor
 * with the same sampler, resource and span limits. The provider's context
 * manager makes the running fiber's current span OpenTelemetry's active span,
 * and enters it only around the steps that start asynchronous work, rather
 * than on every Effect step. Release flushes and shuts the provider down
 * within `shutdownTimeout`, swallowing export failures, then unregisters the
 * globals.
 */
export const layerProvider = (processor: SpanProcessor, options: ProviderOptions): Layer.Layer<never> =>
  Layer.unwrap(Effect.sync(() => {
    const contextManager = new FiberContextManager()
    const resource = otelResource(options.resource)
    const spanLimits = options.spanLimits ?? Settings.defaultSpanLimits
    const registered = Effect.acquireRelease(
      Effect.sync(() => {
        const provider = new NodeTracerProvider({ resource, sampler: options.sampler, spanProcessors: [processor], spanLimits })
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
    const tracer = RecordingTracer.make({
      processor,
      resource,
      sampler: options.sampler,
      ids: new RandomIdGenerator(),
      scope: { name: "effect", version: Version.getCurrentVersion() },
      limits: spanLimits,
      stored: () => contextManager.stored()
    })
    return Layer.effect(Tracer.Tracer, Effect.as(registered, contextManager.tracer(tracer)))
  }))

/** What became of finished spans handed to the exporter. */
export type SpanExportOutcome = ExportOutcome

/** Counts `count` spans whose export ended as `outcome`. */
export type RecordExport = Counting

/** `otlp_exported_spans_total{outcome}` on the registry, as a {@link RecordExport}. */
export const exportCounter = (metrics: Metrics["Service"]): RecordExport =>
  outcomeCounter(
    metrics,
    "otlp_exported_spans_total",
    "Finished spans handed to the OTLP exporter, by outcome (exported, failed, dropped)."
  )

/**
 * Wraps an exporter so each batch's outcome is counted, and never rejects:
 * a failed export is reported to the processor as a failure result.
 */
export const countingExporter = (exporter: SpanExporter, record: RecordExport): SpanExporter =>
  counting(exporter, record)

/** Options of {@link layer}. */
export interface Options {
  readonly resource: Resource
  readonly otlpEndpoint: string
  readonly sampler: Settings.SamplerSetting
  /** Spans kept waiting for export at most; more are dropped and counted. */
  readonly maxQueueSize?: number
  readonly scheduledDelay?: Duration.Input
  readonly exportTimeout?: Duration.Input
  readonly shutdownTimeout?: Duration.Input
  readonly spanLimits?: Settings.SpanLimits | undefined
}

/**
 * Tracing exported over OTLP gRPC to `otlpEndpoint`, with a bounded batch
 * queue; export outcomes counted in `otlp_exported_spans_total{outcome}`.
 */
export const layer = (options: Options): Layer.Layer<never, never, Metrics> =>
  Layer.unwrap(Effect.gen(function*() {
    const record = exportCounter(yield* Metrics)
    const exporter = new OTLPTraceExporter({
      url: options.otlpEndpoint,
      timeoutMillis: Duration.toMillis(options.exportTimeout ?? "5 seconds")
    })
    const processor = new BatchSpanProcessor({
      exporter: countingExporter(exporter, record),
      maxQueueSize: options.maxQueueSize ?? 2048,
      maxExportBatchSize: 512,
      scheduledDelayMillis: Duration.toMillis(options.scheduledDelay ?? "1 second"),
      exportTimeoutMillis: Duration.toMillis(options.exportTimeout ?? "5 seconds"),
      selfObsMeterProvider: dropCounter(record)
    })
    return layerProvider(processor, {
      resource: options.resource,
      sampler: makeSampler(options.sampler),
      shutdownTimeout: options.shutdownTimeout ?? "3 seconds",
      spanLimits: options.spanLimits
    })
  }))

/**
 * Tracing configured through Effect `Config` (SPEC §3): OTLP endpoint,
 * sampler, span limits ({@link Settings.spanLimits}),
 * `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` completing the
 * program's `resource` (see {@link resourceConfig}). `OTEL_SDK_DISABLED=true`
 * turns tracing off: Effect's tracer is disabled too, so no span is made or
 * exported, and no latency sample carries an exemplar pointing at a trace that
 * exists nowhere; metrics stay on.
 */
export const layerConfig = (resource: Resource | string): Layer.Layer<never, Settings.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.gen(function*() {
    if (yield* Settings.read(Settings.sdkDisabled)) return Layer.succeed(References.TracerEnabled)(false)
    return layer(yield* Settings.read({
      resource: resourceConfig(resource),
      otlpEndpoint: Settings.otlpEndpoint,
      sampler: Settings.sampler,
      spanLimits: Settings.spanLimits
    }))
  }))
