/**
 * MetricsServer: serves the {@link Metrics} registry at `GET /metrics` on its
 * own port with `@effect/platform-node`'s HTTP server. The Prometheus text
 * format by default; OpenMetrics (with exemplars) when the scraper's `Accept`
 * header asks for `application/openmetrics-text`. Scrapes are not traced.
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
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import type { ServeError } from "effect/http/HttpServerError"
import type { SocketAddress } from "effect/net/NetAddress"
import * as Config from "./Config.ts"
import { contentTypes, Metrics, negotiate } from "./Metrics.ts"

/** Answers one request to the metrics server. */
const respond = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const path = request.url.split("?", 1)[0]
  if (path !== "/metrics") return HttpServerResponse.text("Not found: metrics are served at /metrics\n", { status: 404 })
  if (request.method !== "GET" && request.method !== "HEAD") {
    return HttpServerResponse.text("Method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
  }
  const metrics = yield* Metrics
  const format = negotiate(request.headers["accept"])
  return HttpServerResponse.text(yield* metrics.render(format), { contentType: contentTypes[format] })
})

/** The running metrics endpoint. */
export class MetricsServer extends Context.Service<MetricsServer, {
  /** The address it listens on (with the real port when bound to port 0). */
  readonly address: SocketAddress
  /** The endpoint's URL, such as `http://0.0.0.0:8000/metrics`. */
  readonly url: string
}>()("dag-observability/MetricsServer") {
  /** Serves `/metrics` on `bind`. */
  static readonly make = (bind: Config.Bind): Layer.Layer<MetricsServer, ServeError, Metrics> =>
    Layer.effect(
      MetricsServer,
      Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        yield* server.serve(respond).pipe(Effect.withTracerEnabled(false))
        return MetricsServer.of({ address: server.address, url: `${HttpServer.formatAddress(server.address)}/metrics` })
      })
    ).pipe(Layer.provide(NodeHttpServer.layer(createServer, bind)))

  /** Serves `/metrics` on `PROMETHEUS_BIND`. */
  static readonly layer: Layer.Layer<MetricsServer, ServeError | Config.InvalidConfig, Metrics> = Layer.unwrap(
    Effect.map(Config.metricsBind, MetricsServer.make)
  )
}
