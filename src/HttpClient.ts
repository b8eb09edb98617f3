/**
 * One-line instrumentation for Effect's HTTP client (`effect/http`'s
 * `HttpClient`, from `@effect/platform-node`'s `NodeHttpClient` or any other
 * implementation): a CLIENT span per request, named by the method (`GET`) or
 * by the method and the URL template when {@link Options.urlTemplate} knows
 * it (`GET /tx/{id}`), with `http.request.method`, `server.address`,
 * `server.port`, `url.full` (credentials and query values replaced by
 * `REDACTED`, no fragment), `http.response.status_code` and `error.type`; the
 * span is ERROR for 4xx and 5xx answers (OpenTelemetry's rule for client
 * spans, `error.type` the status code) and for failures (`error.type` the
 * failure's tag, such as `TransportError`).
 *
 * The trace crosses to the server through OpenTelemetry's global propagator
 * (W3C `traceparent` and `tracestate` as `Tracing` registers it), written
 * from the client span itself: its own trace flags, the trace state it
 * inherited from its parent; Effect's own header writer, which sends `b3`
 * and drops `tracestate`, is off for these requests. A `b3` header is sent
 * only when a B3 propagator is registered globally. Effect's references keep
 * their meaning: `HttpClient.TracerDisabledWhen` leaves a request without a
 * span, `HttpClient.TracerPropagationEnabled` set to false without headers.
 *
 * Every request is observed in `http_client_request_duration_seconds{method,
 * server_address, status_code}` (until the response headers arrive; the
 * client span as exemplar): the method as `Http.methodLabel` bounds it, the
 * first {@link Options.maxServerAddresses} host names as themselves and any
 * further one as `other`, and `status_code=""` for a request that got no
 * answer (a transport failure, a timeout).
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import * as TracedHttpClient from "dag-observability/HttpClient"
 *
 * declare const App: Layer.Layer<never, never, import("effect/http").HttpClient.HttpClient>
 * const Main = App.pipe(Layer.provide(TracedHttpClient.layer()), Layer.provide(NodeHttpClient.layerUndici))
 * ```
 */
import { context, propagation, trace } from "@opentelemetry/api"
import { Cause, Clock, Effect, Exit, Layer, Option, Predicate, References, Result, type Tracer } from "effect"
import { constTrue } from "effect/Function"
import { HttpClient, HttpClientError, HttpClientRequest, type HttpClientResponse, Url } from "effect/http"
import type { Histogram } from "prom-client"
import { methodLabel } from "./Http.ts"
import { otelSpanOf } from "./internal/fiberContext.ts"
import { Metrics, observeWithSpan } from "./Metrics.ts"

/** The `server_address` label of the host names past {@link Options.maxServerAddresses}. */
export const otherServerAddress = "other"

/** How many host names become `server_address` labels by default. */
export const defaultMaxServerAddresses = 20

/** Options of {@link instrument}, {@link make} and {@link layer}. */
export interface Options {
  /**
   * How many distinct host names the histogram labels as themselves; requests to any further host are labelled
   * {@link otherServerAddress}. {@link defaultMaxServerAddresses} by default.
   */
  readonly maxServerAddresses?: number | undefined
  /**
   * The URL template of a request (`/tx/{id}`: low-cardinality, no identifiers), which names its span
   * `<method> <template>` and becomes `url.template`; the span is named by the method alone where it answers
   * `undefined`.
   */
  readonly urlTemplate?: ((request: HttpClientRequest.HttpClientRequest) => string | undefined) | undefined
}

/** `http_client_request_duration_seconds`, whose `_count` counts requests. */
export type Duration = Histogram<"method" | "server_address" | "status_code">

/** Registers `http_client_request_duration_seconds` on the registry, or finds it there. */
export const durationHistogram = (metrics: Metrics["Service"]): Duration =>
  metrics.histogram({
    name: "http_client_request_duration_seconds",
    help: "HTTP client request latency until the response headers; its _count counts requests.",
    labelNames: ["method", "server_address", "status_code"]
  })

/** The host names labelled as themselves so far, per histogram (one per registry). */
const labelledAddresses = new WeakMap<Duration, Set<string>>()

const addressLabel = (histogram: Duration, address: string | undefined, max: number): string => {
  if (address === undefined) return otherServerAddress
  let seen = labelledAddresses.get(histogram)
  if (seen === undefined) labelledAddresses.set(histogram, seen = new Set())
  if (seen.has(address)) return address
  if (seen.size >= max) return otherServerAddress
  seen.add(address)
  return address
}

const defaultPorts: Readonly<Record<string, number>> = { "http:": 80, "https:": 443 }

/** The host as `server.address`: without the brackets of an IPv6 address. */
const hostOf = (url: URL): string => url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname

/**
 * `url` as `url.full` may show it: user name and password replaced by
 * `REDACTED` (OpenTelemetry's semantic conventions), every query value too
 * (tokens and signatures travel there; the keys stay), no fragment (never
 * sent).
 */
export const redactUrl = (url: URL): string => {
  const copy = new URL(url.href)
  if (copy.username !== "" || copy.password !== "") {
    copy.username = "REDACTED"
    copy.password = "REDACTED"
  }
  if (copy.search !== "") {
    const redacted = new URLSearchParams()
    for (const key of copy.searchParams.keys()) redacted.append(key, "REDACTED")
    copy.search = redacted.toString()
  }
  copy.hash = ""
  return copy.href
}

/** A failure's `error.type`: the reason of an `HttpClientError` (`TransportError`, …), else its tag, else `_OTHER`. */
const errorTypeOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  if (HttpClientError.isHttpClientError(error)) return error.reason._tag
  return Predicate.hasProperty(error, "_tag") ? String(error._tag) : "_OTHER"
}

/**
 * `request` with the client span's context written by the global propagator
 * (`traceparent`, `tracestate`, …); a `traceparent` or `tracestate` the
 * request already had (headers copied from an incoming request) is dropped
 * first, so only the span's own trace context goes out.
 */
const propagate = (request: HttpClientRequest.HttpClientRequest, span: Tracer.Span) => {
  const carrier: Record<string, string> = {}
  propagation.inject(trace.setSpan(context.active(), otelSpanOf(span)), carrier)
  const own = request.pipe(HttpClientRequest.removeHeader("traceparent"), HttpClientRequest.removeHeader("tracestate"))
  return HttpClientRequest.setHeaders(own, carrier)
}

/** What one request is: its labels and span attributes, computed before it is sent. */
const describe = (request: HttpClientRequest.HttpClientRequest, histogram: Duration, options: Options) => {
  const url = Result.getOrUndefined(Url.make(request.url, request.urlParams, Option.getOrUndefined(request.hash)))
  const method = methodLabel(request.method)
  const template = options.urlTemplate?.(request)
  const address = url === undefined || url.hostname === "" ? undefined : hostOf(url)
  const port = url === undefined ? undefined : url.port === "" ? defaultPorts[url.protocol] : Number(url.port)
  return {
    name: `${method === "_OTHER" ? "HTTP" : method}${template === undefined ? "" : ` ${template}`}`,
    labels: {
      method,
      server_address: addressLabel(histogram, address, options.maxServerAddresses ?? defaultMaxServerAddresses)
    },
    attributes: {
      "http.request.method": method,
      ...(method === request.method ? {} : { "http.request.method_original": request.method }),
      ...(address === undefined ? {} : { "server.address": address }),
      ...(port === undefined ? {} : { "server.port": port }),
      ...(url === undefined ? {} : { "url.full": redactUrl(url) }),
      ...(template === undefined ? {} : { "url.template": template })
    }
  }
}

type Send<E, R> = (
  request: HttpClientRequest.HttpClientRequest
) => Effect.Effect<HttpClientResponse.HttpClientResponse, E, R>

/** Sends `request` inside its CLIENT span and records its duration. */
const traced = <E, R>(
  histogram: Duration,
  options: Options,
  request: HttpClientRequest.HttpClientRequest,
  send: Send<E, R>
): Effect.Effect<HttpClientResponse.HttpClientResponse, E, R> =>
  Effect.withFiber((fiber) => {
    const clock = fiber.getRef(Clock.Clock)
    const started = clock.currentTimeNanosUnsafe()
    const { name, labels, attributes } = describe(request, histogram, options)
    const observe = (exit: Exit.Exit<HttpClientResponse.HttpClientResponse, E>, span: Tracer.Span | undefined) => {
      const now = clock.currentTimeNanosUnsafe()
      const status = Exit.isSuccess(exit) ? exit.value.status : undefined
      observeWithSpan(histogram, { ...labels, status_code: status ?? "" }, Number(now - started) / 1e9, span)
      if (span === undefined) return
      if (status !== undefined) span.attribute("http.response.status_code", status)
      if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
        span.attribute("error.type", errorTypeOf(exit.cause))
      } else if (Exit.isSuccess(exit) && exit.value.status >= 400) {
        span.attribute("error.type", String(exit.value.status))
        const reason = new HttpClientError.StatusCodeError({ request, response: exit.value })
        span.end(now, Exit.fail(new HttpClientError.HttpClientError({ reason })))
      }
    }
    if (!fiber.getRef(References.TracerEnabled) || fiber.getRef(HttpClient.TracerDisabledWhen)(request)) {
      return Effect.onExit(send(request), (exit) => Effect.sync(() => observe(exit, undefined)))
    }
    return Effect.useSpan(name, { kind: "client", attributes }, (span) =>
      send(fiber.getRef(HttpClient.TracerPropagationEnabled) ? propagate(request, span) : request).pipe(
        // The client below would open a second span and write Effect's own headers over ours.
        Effect.provideService(HttpClient.TracerDisabledWhen, constTrue),
        Effect.withParentSpan(span, { captureStackTrace: false }),
        Effect.onExit((exit) => Effect.sync(() => observe(exit, span)))
      ))
  })

/**
 * `client` with a CLIENT span, propagated trace context and a duration
 * observation per request, its histogram registered on the current
 * {@link Metrics}. Requests keep `client`'s preprocessing (base URLs, default
 * headers), so the span sees the URL that is sent.
 */
export const instrument = <E, R>(
  client: HttpClient.HttpClient.With<E, R>,
  options: Options = {}
): Effect.Effect<HttpClient.HttpClient.With<E, R>, never, Metrics> =>
  Effect.map(Metrics, (metrics) => {
    const histogram = durationHistogram(metrics)
    return HttpClient.makeWith(
      (prepared) =>
        Effect.flatMap(
          prepared,
          (request) => traced(histogram, options, request, (sent) => client.postprocess(Effect.succeed(sent)))
        ),
      client.preprocess
    )
  })

/** The current `HttpClient` instrumented ({@link instrument}). */
export const make = (
  options: Options = {}
): Effect.Effect<HttpClient.HttpClient, never, HttpClient.HttpClient | Metrics> =>
  Effect.flatMap(HttpClient.HttpClient, (client) => instrument(client, options))

/**
 * Replaces the `HttpClient` below it with the same client instrumented:
 * `Layer.provide(layer())` above `NodeHttpClient.layerUndici` (or any client layer).
 */
export const layer = (
  options: Options = {}
): Layer.Layer<HttpClient.HttpClient, never, HttpClient.HttpClient | Metrics> =>
  Layer.effect(HttpClient.HttpClient, make(options))
