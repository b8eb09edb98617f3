/**
 * MetricsServer: serves the {@link Metrics} registry at `GET /metrics` on its
 * own port with `@effect/platform-node`'s HTTP server. The Prometheus text
 * format by default; OpenMetrics (with exemplars) when the scraper's `Accept`
 * header asks for `application/openmetrics-text`. Scrapes are not traced. With a bearer token
 * (`PROMETHEUS_BEARER_TOKEN`), only requests carrying `Authorization: Bearer <token>` are answered; the others get
 * `401` with `WWW-Authenticate: Bearer`. Once listening it logs the URL it is bound to (the real port when asked
 * for port 0); an address it cannot listen on stops the program with one line naming it.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Metrics, MetricsServer } from "dag-observability"
 *
 * const MetricsLive = MetricsServer.layer({ bind: { host: "127.0.0.1", port: 9464 } }).pipe(
 *   Layer.provideMerge(Metrics.layer)
 * )
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Context, Effect, Layer, Option, Redacted } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { SocketAddress } from "effect/net/NetAddress"
import { ListenError, reasonOf } from "./ListenError.ts"
import { contentTypes, Metrics, negotiate } from "./Metrics.ts"
import * as Settings from "./Settings.ts"

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
const respond = (metrics: Metrics["Service"], bearerToken: Redacted.Redacted<string> | undefined) => {
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
    const format = negotiate(request.headers["accept"])
    return HttpServerResponse.text(yield* metrics.render(format), { contentType: contentTypes[format] })
  })
}

/** The running metrics endpoint. */
export class MetricsServer extends Context.Service<MetricsServer, {
  /** The address it listens on (with the real port when bound to port 0). */
  readonly address: SocketAddress
  /** The endpoint's URL, such as `http://0.0.0.0:8000/metrics`. */
  readonly url: string
}>()("dag-observability/MetricsServer") {}

/** Options of {@link layer}. */
export interface Options {
  /** Where to listen; port 0 picks a free port. */
  readonly bind: Settings.Bind
  /** When set, `/metrics` answers only `Authorization: Bearer <token>`, else `401` with `WWW-Authenticate: Bearer`. */
  readonly bearerToken?: Redacted.Redacted<string> | undefined
  /** The setting `bind` came from, named when it cannot be listened on. */
  readonly setting?: string | undefined
}

/** Serves `/metrics` as `options` say, and logs where. */
export const layer = (options: Options): Layer.Layer<MetricsServer, ListenError, Metrics> =>
  Layer.effect(
    MetricsServer,
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(createServer, options.bind).pipe(
        Effect.mapError((error) =>
          new ListenError({
            server: "/metrics",
            address: Settings.formatAddress(options.bind.host, options.bind.port),
            ...(options.setting === undefined ? {} : { setting: options.setting }),
            reason: reasonOf(error.cause)
          })
        )
      )
      yield* server.serve(respond(yield* Metrics, options.bearerToken)).pipe(Effect.withTracerEnabled(false))
      const url = `${HttpServer.formatAddress(server.address)}/metrics`
      yield* Effect.logInfo(`metrics at ${url}`)
      return MetricsServer.of({ address: server.address, url })
    })
  )

/**
 * The settings of `/metrics`: where to listen from `variable` (`PROMETHEUS_BIND`
 * by default, `fallback` when unset), and `PROMETHEUS_BEARER_TOKEN`. A program
 * that runs beside others gives its own variable, so that one inherited
 * `PROMETHEUS_BIND` never makes two of them collide.
 *
 * @example
 * ```ts
 * const PohNodeMetrics = MetricsServer.config("POH_METRICS_BIND", { host: "0.0.0.0", port: 8001 })
 * ```
 */
export const config = (
  variable = "PROMETHEUS_BIND",
  fallback: Settings.Bind = { host: "0.0.0.0", port: 8000 }
): Config.Config<Options> =>
  Config.map(
    Config.all([
      Settings.setting(variable, fallback, Settings.bind(Settings.formatAddress(fallback.host, fallback.port))),
      Settings.metricsBearerToken
    ]),
    ([bind, bearerToken]) => ({ bind, bearerToken: Option.getOrUndefined(bearerToken), setting: variable })
  )

/**
 * Serves `/metrics` with options read through Effect `Config`: {@link config}
 * (`PROMETHEUS_BIND`, `PROMETHEUS_BEARER_TOKEN`) unless given another.
 */
export const layerConfig = (
  options: Config.Wrap<Options> = config()
): Layer.Layer<MetricsServer, ListenError | Settings.InvalidConfig, Metrics> =>
  Layer.unwrap(Effect.map(Settings.read(options), layer))
