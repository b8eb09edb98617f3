/**
 * MetricsServer: serves the {@link Metrics} registry at `GET /metrics` on its
 * own port with `@effect/platform-node`'s HTTP server. The Prometheus text
 * format by default; OpenMetrics (with exemplars) when the scraper's `Accept`
 * header asks for `application/openmetrics-text`. Scrapes are not traced. With a bearer token
 * (`PROMETHEUS_BEARER_TOKEN`), only requests carrying `Authorization: Bearer <token>` are answered; the others get
 * `401` with `WWW-Authenticate: Bearer`.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Metrics, MetricsServer } from "dag-observability"
 *
 * const MetricsLive = MetricsServer.MetricsServer.make({ host: "127.0.0.1", port: 9464 }).pipe(
 *   Layer.provideMerge(Metrics.Metrics.layer)
 * )
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import type { SocketAddress } from "effect/net/NetAddress"
import * as Config from "./Config.ts"
import { contentTypes, Metrics, negotiate } from "./Metrics.ts"

const digest = (text: string) => createHash("sha256").update(text).digest()

/**
 * Whether `authorization` carries `token` as a bearer token. Compares SHA-256 digests with `timingSafeEqual`, so the
 * time taken tells nothing of the token, not even its length.
 */
const bearerMatches = (expected: Buffer) => (authorization: string | undefined): boolean => {
  const presented = /^bearer +(\S+) *$/i.exec(authorization ?? "")?.[1]
  return timingSafeEqual(digest(presented ?? ""), expected) && presented !== undefined
}

/** `401` asking for a bearer token; `invalid_token` when one was presented (RFC 6750 §3). */
const unauthorized = (presented: boolean) =>
  HttpServerResponse.text("Unauthorized: /metrics needs Authorization: Bearer <token>\n", {
    status: 401,
    headers: {
      "www-authenticate": presented ? "Bearer realm=\"metrics\", error=\"invalid_token\"" : "Bearer realm=\"metrics\""
    }
  })

/** Answers one request to the metrics server, asking for `bearerToken` when there is one. */
const respond = (bearerToken: Redacted.Redacted<string> | undefined) => {
  const authorized = bearerToken === undefined ? undefined : bearerMatches(digest(Redacted.value(bearerToken)))
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?", 1)[0]
    if (path !== "/metrics") {
      return HttpServerResponse.text("Not found: metrics are served at /metrics\n", { status: 404 })
    }
    const authorization = request.headers["authorization"]
    if (authorized !== undefined && !authorized(authorization)) return unauthorized(authorization !== undefined)
    if (request.method !== "GET" && request.method !== "HEAD") {
      return HttpServerResponse.text("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
    }
    const metrics = yield* Metrics
    const format = negotiate(request.headers["accept"])
    return HttpServerResponse.text(yield* metrics.render(format), { contentType: contentTypes[format] })
  })
}

/** Options of {@link MetricsServer.make}. */
export interface Options {
  /** When set, `/metrics` answers only `Authorization: Bearer <token>`, else `401` with `WWW-Authenticate: Bearer`. */
  readonly bearerToken?: Redacted.Redacted<string> | undefined
}

/** The running metrics endpoint. */
export class MetricsServer extends Context.Service<MetricsServer, {
  /** The address it listens on (with the real port when bound to port 0). */
  readonly address: SocketAddress
  /** The endpoint's URL, such as `http://0.0.0.0:8000/metrics`. */
  readonly url: string
}>()("dag-observability/MetricsServer") {
  /** Serves `/metrics` on `bind`, behind `options.bearerToken` when given. */
  static readonly make = (bind: Config.Bind, options: Options = {}): Layer.Layer<MetricsServer, ServeError, Metrics> =>
    Layer.effect(
      MetricsServer,
      Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        yield* server.serve(respond(options.bearerToken)).pipe(Effect.withTracerEnabled(false))
        return MetricsServer.of({ address: server.address, url: `${HttpServer.formatAddress(server.address)}/metrics` })
      })
    ).pipe(Layer.provide(NodeHttpServer.layer(createServer, bind)))

  /** Serves `/metrics` on `PROMETHEUS_BIND`, behind `PROMETHEUS_BEARER_TOKEN` when it is set. */
  static readonly layer: Layer.Layer<MetricsServer, ServeError | Config.InvalidConfig, Metrics> = Layer.unwrap(
    Effect.map(
      Effect.all([Config.metricsBind, Config.metricsBearerToken]),
      ([bind, bearerToken]) => MetricsServer.make(bind, { bearerToken: Option.getOrUndefined(bearerToken) })
    )
  )
}
