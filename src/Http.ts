/**
 * One-line instrumentation for Effect's HTTP server (`effect/http`, served by
 * `@effect/platform-node`): a SERVER span per request named
 * `<method> <route template>`, continuing the caller's W3C trace
 * (`traceparent` + `tracestate`; a malformed header starts a new trace), and
 * `http_server_request_duration_seconds{method,route,status_code}`. The route
 * label is the template (`/tx/:id`), never the raw path; requests no route
 * matches share the one value `unmatched`. Typed failures become their
 * responses; 5xx answers mark the span ERROR with the error's tag. Every
 * answer names its server span in the W3C `traceresponse` header (Trace
 * Context Level 2, `00-<trace-id>-<span-id>-<flags>`, the sampled flag as the
 * tracer decided), so a client learns the trace id of its request; there is
 * none when no tracer records the span (`OTEL_SDK_DISABLED`, or Effect's
 * default tracer, which keeps spans nowhere). Once the server starts shutting
 * down, answers close their keep-alive connections (`Connection: close`), so
 * that in-flight requests finish and the server closes instead of serving
 * clients that keep sending on open connections.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { Http } from "dag-observability"
 *
 * declare const Routes: Layer.Layer<never, never, HttpRouter.HttpRouter>
 * const App = Http.serve(Routes) // instead of HttpRouter.serve(Routes)
 * ```
 */
import { context, propagation, trace } from "@opentelemetry/api"
import * as OtelTracer from "@effect/opentelemetry/OtelTracer"
import { type NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { Cause, Clock, Context, Effect, Exit, type Fiber, Layer, Predicate, References, Tracer } from "effect"
import {
  HttpMiddleware,
  HttpRouter,
  type HttpServer,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import type { Histogram } from "prom-client"
import { cameAsHead, layerServer as makeLayerServer, type ServerOptions } from "./internal/httpServer.ts"
import type { ListenError } from "./ListenError.ts"
import { Metrics, observeWithSpan } from "./Metrics.ts"
import type { Bind } from "./Settings.ts"

/** The `route` label of requests no route matched. */
export const unmatchedRoute = "unmatched"

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"])

/** The method as a bounded label: a standard method, else `_OTHER` (OpenTelemetry semantic conventions). */
export const methodLabel = (method: string): string => knownMethods.has(method) ? method : "_OTHER"

const headerGetter = {
  keys: (carrier: Readonly<Record<string, string>>) => Object.keys(carrier),
  get: (carrier: Readonly<Record<string, string>>, key: string) => carrier[key]
}

/** The caller's span from `traceparent`/`tracestate`, read with the global W3C propagator. */
const remoteParent = (headers: Readonly<Record<string, string>>) => {
  const span = trace.getSpanContext(propagation.extract(context.active(), headers, headerGetter))
  return span === undefined || !trace.isSpanContextValid(span)
    ? undefined
    : OtelTracer.makeExternalSpan({
      traceId: span.traceId,
      spanId: span.spanId,
      traceFlags: span.traceFlags,
      ...(span.traceState === undefined ? {} : { traceState: span.traceState })
    })
}

const pathOf = (url: string): string => {
  const end = url.search(/[?#]/)
  return end === -1 ? url : url.slice(0, end)
}

/** A 5xx answer that was not a failure still fails its span, as OpenTelemetry asks of server spans. */
const spanExit = (
  request: HttpServerRequest.HttpServerRequest,
  exit: Exit.Exit<HttpServerResponse.HttpServerResponse, unknown>
): Exit.Exit<unknown, unknown> =>
  Exit.isSuccess(exit) && exit.value.status >= 500
    ? Exit.fail(new HttpServerError.HttpServerError({
      reason: new HttpServerError.ResponseError({ request, response: exit.value })
    }))
    : exit

/** Whether the server is shutting down. */
interface Draining {
  readonly value: boolean
}

/** A request being served: what `observe` learnt of it when it began. */
interface Served {
  readonly request: HttpServerRequest.HttpServerRequest
  /** Its method as a label. */
  readonly method: string
  readonly span: Tracer.Span
  readonly started: bigint
}

/**
 * The W3C `traceresponse` of `span` (Trace Context Level 2), or `undefined`
 * when no tracer records it: tracing is off (`OTEL_SDK_DISABLED`, Effect's
 * `TracerEnabled`), or the tracer is Effect's default one, which keeps spans
 * nowhere; a header naming a trace that exists nowhere would send the client
 * looking for it. The flags say whether the span is sampled.
 */
const traceResponse = (fiber: Fiber.Fiber<unknown, unknown>, span: Tracer.Span): string | undefined =>
  fiber.getRef(References.TracerEnabled) && fiber.getRef(Tracer.Tracer) !== Tracer.nativeTracer
    ? `00-${span.traceId}-${span.spanId}-${span.sampled ? "01" : "00"}`
    : undefined

/**
 * Completes a request inside its server span: names the span after the
 * route, records the latency, turns typed failures below 500 into their
 * responses, adds `traceresponse` (and `Connection: close` once the server is
 * `draining`) to every answer and fails the span of a 5xx answer.
 */
const complete = <E>(
  duration: Duration,
  draining: Draining,
  { method, request, span, started }: Served,
  exit: Exit.Exit<HttpServerResponse.HttpServerResponse, E>,
  response: HttpServerResponse.HttpServerResponse
): Effect.Effect<HttpServerResponse.HttpServerResponse, E> =>
  Effect.withFiber((fiber) => {
    const matched = Context.getOption(fiber.context, HttpRouter.RouteContext)
    const route = matched._tag === "Some" ? matched.value.route.path : unmatchedRoute
    if (route !== unmatchedRoute) {
      trace.getSpan(context.active())?.updateName(`${method} ${route}`)
      span.attribute("http.route", route)
    }
    span.attribute("http.response.status_code", response.status)
    const now = fiber.getRef(Clock.Clock).currentTimeNanosUnsafe()
    observeWithSpan(
      duration,
      { method, route, status_code: response.status },
      Number(now - started) / 1e9,
      span
    )
    const traceresponse = traceResponse(fiber, span)
    let answer = traceresponse === undefined
      ? response
      : HttpServerResponse.setHeader(response, "traceresponse", traceresponse)
    if (draining.value) answer = HttpServerResponse.setHeader(answer, "connection", "close")
    if (response.status >= 500) {
      if (Exit.isFailure(exit)) {
        const error = Cause.squash(exit.cause)
        if (Predicate.hasProperty(error, "_tag")) span.attribute("error.type", String(error._tag))
        span.end(now, exit)
        // The failure goes on to be reported; the server answers with the response it carries as a defect.
        return Effect.failCause(Cause.fromReasons([...exit.cause.reasons, Cause.makeDieReason(answer)]))
      }
      span.end(now, spanExit(request, exit))
    }
    return Effect.succeed(answer)
  })

/** Whether `request` came as `HEAD` to `layerServer`'s server, which hands it on as `GET`. */
const isHead = (request: HttpServerRequest.HttpServerRequest) =>
  request.method === "GET" && cameAsHead(NodeHttpServerRequest.toIncomingMessage(request))

const malformedEscape = /%(?![0-9a-fA-F]{2})/

/**
 * The answer to a request no route is asked about: `OPTIONS *` (the server's
 * own options: `204`), a path with a malformed percent-encoding (`400`, JSON).
 */
const earlyAnswer = (
  request: HttpServerRequest.HttpServerRequest,
  path: string
): HttpServerResponse.HttpServerResponse | undefined => {
  if (path === "*") return HttpServerResponse.empty({ status: request.method === "OPTIONS" ? 204 : 400 })
  return malformedEscape.test(path)
    ? HttpServerResponse.jsonUnsafe({ error: "malformed percent-encoding in the URL path" }, { status: 400 })
    : undefined
}

/** Wraps one request in its SERVER span, a child of the caller's span when the headers carry one. */
const observe = <E, R>(
  duration: Duration,
  draining: Draining,
  httpApp: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, E, R | HttpServerRequest.HttpServerRequest> =>
  Effect.withFiber((fiber) => {
    const request = Context.getUnsafe(fiber.context, HttpServerRequest.HttpServerRequest)
    const started = fiber.getRef(Clock.Clock).currentTimeNanosUnsafe()
    const method = isHead(request) ? "HEAD" : methodLabel(request.method)
    const path = pathOf(request.url)
    const parent = remoteParent(request.headers)
    const options = {
      kind: "server",
      ...(parent === undefined ? { root: true } : { parent }),
      attributes: {
        "http.request.method": method,
        "url.path": path,
        "url.scheme": "http",
        ...(request.headers["user-agent"] === undefined ? {} : { "user_agent.original": request.headers["user-agent"] })
      }
    } as const
    // The span ends with the request's exit, unless `complete` ended it first for a 5xx answer.
    const early = earlyAnswer(request, path)
    return Effect.useSpan(method, options, (span) => {
      const served: Served = { request, method, span, started }
      return Effect.exit(early === undefined ? httpApp : Effect.succeed(early)).pipe(
        Effect.flatMap((exit) =>
          Exit.isSuccess(exit)
            ? complete(duration, draining, served, exit, exit.value)
            : Effect.flatMap(
              HttpServerError.causeResponse(exit.cause),
              ([response]) => complete(duration, draining, served, exit, response)
            )
        ),
        // The span's stack frame would point into this module; capturing it costs an Error per request.
        Effect.withParentSpan(span, { captureStackTrace: false })
      )
    })
  })

/** `http_server_request_duration_seconds`, whose `_count` counts requests. */
type Duration = Histogram<"method" | "route" | "status_code">

/** Registers `http_server_request_duration_seconds` on the registry, or finds it there. */
export const durationHistogram = (metrics: Metrics["Service"]): Duration =>
  metrics.histogram({
    name: "http_server_request_duration_seconds",
    help: "HTTP server request latency; its _count counts requests.",
    labelNames: ["method", "route", "status_code"]
  })

const makeMiddleware = (draining: Draining) =>
  HttpRouter.middleware(
    Effect.map(Metrics, (metrics) => {
      const duration = durationHistogram(metrics)
      return (httpApp) => observe(duration, draining, httpApp)
    }),
    { global: true }
  )

/** The global router middleware: span, route name and latency of every request. */
export const middleware = makeMiddleware({ value: false })

/**
 * `HttpRouter.serve` with the instrumentation: serves `appLayer`'s routes with
 * {@link middleware}, and Effect's own server span turned off so that each
 * request has exactly one span. When the layer is released, answers carry
 * `Connection: close` from before the server starts closing: Node's
 * `server.close()` waits for every open connection, and a keep-alive client
 * that keeps sending would hold it open until the graceful-shutdown timeout.
 */
export const serve = <A, E, R>(
  appLayer: Layer.Layer<A, E, R>,
  options?: { readonly disableLogger?: boolean; readonly disableListenLog?: boolean }
) =>
  Layer.unwrap(Effect.sync(() => {
    const draining = { value: false }
    // Built after the server, so released before it closes.
    const drain = Layer.effectDiscard(Effect.addFinalizer(() => Effect.sync(() => (draining.value = true))))
    return drain.pipe(Layer.provide(HttpRouter.serve(Layer.merge(appLayer, makeMiddleware(draining)), options)))
  })).pipe(
    Layer.provide(Layer.succeed(HttpMiddleware.TracerDisabledWhen)(() => true))
  )

export { type ServerOptions } from "./internal/httpServer.ts"

/**
 * Node.js's HTTP server for {@link serve} (`NodeHttpServer.layer`) listening
 * on `bind`, bounded against hostile clients: a request must arrive whole
 * within `requestTimeout` (10 s; slower ones get `408` and the connection
 * closes), idle keep-alive connections close after `keepAliveTimeout` (5 s),
 * at most `maxConnections` (4096) connections are open at once — the excess
 * is closed at once, counted in `http_server_connections_rejected_total`
 * and warned of once — and a request asking to upgrade the connection
 * (`Upgrade:`) is served as any other request unless `upgrades` is set, so no
 * connection escapes these timeouts. An address it cannot listen on fails with
 * a {@link ListenError} naming it and `options.setting`, one line.
 *
 * @example
 * ```ts
 * const App = Http.serve(Routes).pipe(Layer.provide(Http.layerServer({ host: "0.0.0.0", port: 8081 }, { setting: "PORT" })))
 * ```
 */
export const layerServer: (
  bind: Bind,
  options?: ServerOptions
) => Layer.Layer<Layer.Success<typeof NodeHttpServer.layerHttpServices> | HttpServer.HttpServer, ListenError, Metrics> =
  makeLayerServer
