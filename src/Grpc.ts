/**
 * One-line instrumentation for `@grpc/grpc-js`, after OpenTelemetry contrib
 * `instrumentation-grpc` and the RPC semantic conventions: a server
 * interceptor, a client interceptor, and {@link unary}, which serves an Effect
 * handler as a grpc-js unary method.
 *
 * Each call is one span named `<package.Service>/<Method>` (SERVER or CLIENT)
 * with `rpc.system`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code` and
 * `server.address`/`server.port`, status ERROR (and `error.type` the status
 * name) for any code but OK, and one observation of
 * `grpc_method_latency_seconds` or `grpc_client_latency_seconds` labelled with
 * the service, the method and the status name, the span as exemplar. W3C
 * `traceparent`/`tracestate` travel in the call's metadata through the global
 * propagator; a malformed one starts a new trace.
 *
 * @example
 * ```ts
 * import * as grpc from "@grpc/grpc-js"
 * import { Effect } from "effect"
 * import * as Grpc from "dag-observability/Grpc"
 *
 * const serve = Effect.gen(function*() {
 *   const server = new grpc.Server({ interceptors: [yield* Grpc.serverInterceptor] })
 *   const client = new grpc.Client("127.0.0.1:50051", grpc.credentials.createInsecure(), {
 *     interceptors: [yield* Grpc.clientInterceptor({ address: "127.0.0.1:50051" })]
 *   })
 *   return { server, client }
 * })
 * ```
 */
import * as grpc from "@grpc/grpc-js"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import {
  type Attributes,
  type Context as OtelContext,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags
} from "@opentelemetry/api"
import { Cause, Effect, Exit, FiberSet, Predicate, Schema, type Scope } from "effect"
import type { Histogram } from "prom-client"
import { metadataGetter, metadataSetter, methodName, serverAttributes, statusName } from "./internal/grpcNames.ts"
import { Metrics, observeWithSpan } from "./Metrics.ts"

export {
  metadataGetter,
  metadataSetter,
  type MethodName,
  methodName,
  otherName,
  serverAttributes,
  statusName
} from "./internal/grpcNames.ts"

// Looked up per call: a tracer cached across a provider's unregistration would keep the old provider.
const tracer = () => trace.getTracer("dag-observability/Grpc")

const seconds = (started: number) => (performance.now() - started) / 1000

const exemplar = (span: Span | undefined) => {
  if (span === undefined) return undefined
  const { traceId, spanId, traceFlags } = span.spanContext()
  return { traceId, spanId, sampled: (traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED }
}

/**
 * Starts a call's span and returns what ends it: the status code and, on
 * failure, its details; once, however many times it is called.
 */
const startCall = (
  path: string,
  kind: SpanKind,
  parent: OtelContext,
  attributes: Attributes,
  histogram: Latency
) => {
  const started = performance.now()
  const { service, method, name } = methodName(path)
  const span = tracer().startSpan(name, {
    kind,
    attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, ...attributes }
  }, parent)
  let ended = false
  const end = (code: grpc.status, message: string | undefined) => {
    if (ended) return
    ended = true
    const label = statusName(code)
    span.setAttribute("rpc.grpc.status_code", code)
    if (code !== grpc.status.OK) {
      span.setAttribute("error.type", label)
      span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message }) })
    }
    span.end()
    observeWithSpan(histogram, { service, method, code: label }, seconds(started), exemplar(span))
  }
  return { span, context: trace.setSpan(parent, span), end }
}

const deadlinePassed = (deadline: grpc.Deadline) =>
  (deadline instanceof Date ? deadline.getTime() : deadline) <= Date.now()

/** A call latency histogram, labelled by service, method and status name. */
type Latency = Histogram<"service" | "method" | "code">

const latency = (metrics: Metrics["Service"], name: string, help: string): Latency =>
  metrics.histogram({ name, help, labelNames: ["service", "method", "code"] })

/**
 * A grpc-js server interceptor tracing and timing every call, its histogram
 * `grpc_method_latency_seconds` registered on the current {@link Metrics}:
 * install it with `new grpc.Server({ interceptors: [yield* Grpc.serverInterceptor] })`.
 * The span continues the caller's trace from the metadata and is the active
 * OpenTelemetry context while the call's handler runs, so spans of the
 * handler (see {@link unary}) are its children. A call the client cancels
 * ends as CANCELLED, one past its deadline as DEADLINE_EXCEEDED, one whose
 * message grpc-js cannot read as the INTERNAL or RESOURCE_EXHAUSTED it answers
 * (seen when this interceptor is the first of the list).
 */
export const serverInterceptor: Effect.Effect<grpc.ServerInterceptor, never, Metrics> = Effect.map(
  Metrics,
  (metrics) => tracingServer(latency(metrics, "grpc_method_latency_seconds", "gRPC server method latency."))
)

const tracingServer = (histogram: Latency): grpc.ServerInterceptor => (descriptor, call) => {
  let active: OtelContext = ROOT_CONTEXT
  let end: ((code: grpc.status, message: string | undefined) => void) | undefined
  const within = (next: () => void) => context.with(active, next)
  // grpc-js answers a message it cannot read (INTERNAL, RESOURCE_EXHAUSTED) from the call below the interceptors,
  // past `sendStatus` here: catch that status too, or the call would end as the CANCELLED that follows it.
  const sendStatus = call.sendStatus.bind(call)
  call.sendStatus = (status) => {
    end?.(status.code ?? grpc.status.UNKNOWN, status.details)
    sendStatus(status)
  }
  return new grpc.ServerInterceptingCall(call, {
    start: (start) =>
      start({
        onReceiveMetadata: (metadata, next) => {
          // The server's own async context (where it was bound) is no parent of a remote call.
          const { localAddress, localPort } = call.getConnectionInfo()
          const started = startCall(
            descriptor.path,
            SpanKind.SERVER,
            propagation.extract(ROOT_CONTEXT, metadata, metadataGetter),
            localAddress === undefined ? {} : { "server.address": localAddress, "server.port": localPort ?? 0 },
            histogram
          )
          active = started.context
          end = started.end
          within(() => next(metadata))
        },
        onReceiveMessage: (message, next) => within(() => next(message)),
        onReceiveHalfClose: (next) => within(next),
        // grpc-js also reports a cancel after every status it sent; by then the call has ended.
        onCancel: () =>
          deadlinePassed(call.getDeadline())
            ? end?.(grpc.status.DEADLINE_EXCEEDED, "Deadline exceeded")
            : end?.(grpc.status.CANCELLED, "Cancelled by the client")
      }),
    sendStatus: (status, next) => {
      end?.(status.code ?? grpc.status.UNKNOWN, status.details)
      next(status)
    }
  })
}

/** Options of {@link clientInterceptor}. */
export interface ClientOptions {
  /** The channel's target, for `server.address` and `server.port`. */
  readonly address?: string
  /** More attributes of every call's span on this channel, such as the id of the peer it reaches. */
  readonly attributes?: Attributes
}

/**
 * A grpc-js client interceptor tracing and timing every call, its histogram
 * `grpc_client_latency_seconds` registered on the current {@link Metrics}:
 * pass `yield* Grpc.clientInterceptor({ address })` in the client's
 * `interceptors` option. The CLIENT span is a child of the active
 * OpenTelemetry context where the call is made (inside an Effect, of the
 * current Effect span) and its context is injected into the call's metadata.
 */
export const clientInterceptor = (options: ClientOptions = {}): Effect.Effect<grpc.Interceptor, never, Metrics> =>
  Effect.map(Metrics, (metrics) => {
    const histogram = latency(metrics, "grpc_client_latency_seconds", "gRPC client call latency.")
    return tracingClient(histogram, {
      ...options.attributes,
      ...(options.address === undefined ? {} : serverAttributes(options.address))
    })
  })

const tracingClient = (histogram: Latency, attributes: Attributes): grpc.Interceptor => (callOptions, nextCall) => {
  const call = startCall(callOptions.method_definition.path, SpanKind.CLIENT, context.active(), attributes, histogram)
  return new grpc.InterceptingCall(nextCall(callOptions), {
    start: (metadata, _listener, start) => {
      propagation.inject(call.context, metadata, metadataSetter)
      start(
        metadata,
        new grpc.ListenerBuilder().withOnReceiveStatus((status, next) => {
          call.end(status.code, status.details)
          next(status)
        }).build()
      )
    }
  })
}

/** Options of {@link unary}. */
export interface UnaryOptions<I, O, E, R> {
  /** Validates the decoded message; a request it rejects is answered INVALID_ARGUMENT. */
  readonly request: Schema.Decoder<I>
  readonly handler: (request: I) => Effect.Effect<O, E, R>
  /** The status a typed failure is answered with (the details are its message); INTERNAL when absent. */
  readonly status?: (error: E) => grpc.status
}

/** Details longer than this are cut: they travel in a trailer, and grpc-js bounds metadata to 8 KiB. */
const maxDetails = 256

const details = (error: unknown): string => {
  const text = Predicate.hasProperty(error, "message") && Predicate.isString(error.message)
    ? error.message
    : String(error)
  return text.length > maxDetails ? `${text.slice(0, maxDetails - 1)}…` : text
}

const serviceError = (code: grpc.status, message: string): grpc.ServerErrorResponse =>
  Object.assign(new Error(message), { code })

/**
 * Serves an Effect handler as a grpc-js unary method, run with the services
 * of the effect that built it. The handler runs as a child of the call's
 * OpenTelemetry span (installed by {@link serverInterceptor}), in a fiber of
 * the current scope: a call the client cancels interrupts it, and closing the
 * scope interrupts what is still running. A request the `request` schema
 * rejects answers INVALID_ARGUMENT, a typed failure the code `status` gives,
 * a defect INTERNAL and an interruption CANCELLED.
 *
 * @example
 * ```ts
 * const Request = Schema.Struct({ name: Schema.String.check(Schema.isMinLength(1)) })
 *
 * const serve = Effect.gen(function*() {
 *   const hello = yield* Grpc.unary({
 *     request: Request,
 *     handler: ({ name }) => Effect.succeed({ message: `hello ${name}` })
 *   })
 *   server.addService(definition, { Hello: hello })
 * })
 * ```
 */
export const unary = <I, O, E, R>(
  options: UnaryOptions<I, O, E, R>
): Effect.Effect<grpc.handleUnaryCall<unknown, O>, never, R | Scope.Scope> =>
  Effect.gen(function*() {
    const run = yield* FiberSet.makeRuntime<R>()
    const decode = Schema.decodeUnknownEffect(options.request)
    const statusOf = options.status ?? (() => grpc.status.INTERNAL)
    const failure = (cause: Cause.Cause<E | Schema.SchemaError>): grpc.ServerErrorResponse => {
      const error = Cause.findErrorOption(cause)
      if (error._tag === "Some") {
        const value = error.value
        const code = Schema.isSchemaError(value) ? grpc.status.INVALID_ARGUMENT : statusOf(value)
        return serviceError(code, details(value))
      }
      return Cause.hasInterruptsOnly(cause)
        ? serviceError(grpc.status.CANCELLED, "Cancelled")
        : serviceError(grpc.status.INTERNAL, "Internal error")
    }
    return (call, callback) => {
      const parent = trace.getSpan(context.active())?.spanContext()
      const effect = Effect.flatMap(decode(call.request), options.handler)
      const fiber = run(
        parent !== undefined && trace.isSpanContextValid(parent) ? OtelTracer.withSpanContext(effect, parent) : effect
      )
      const cancel = () => fiber.interruptUnsafe()
      call.once("cancelled", cancel)
      if (call.cancelled) cancel()
      fiber.addObserver((exit) => {
        call.off("cancelled", cancel)
        if (Exit.isSuccess(exit)) callback(null, exit.value)
        else callback(failure(exit.cause))
      })
    }
  })
