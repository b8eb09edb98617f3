/**
 * @internal
 *
 * The Node.js HTTP server `Http.layerServer` listens with, and its bounds
 * against hostile clients.
 */
import { createServer, type IncomingMessage, type Server } from "node:http"
import type { Duplex } from "node:stream"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { ListenError, reasonOf } from "../ListenError.ts"
import { Metrics } from "../Metrics.ts"
import { type Bind, formatAddress } from "../Settings.ts"

/** Options of `Http.layerServer`. */
export interface ServerOptions {
  /** The setting `bind` came from, such as `SENDING_DAG_BIND`, named when it cannot be listened on. */
  readonly setting?: string | undefined
  /** How long a client may take to send a whole request, headers and body, in ms; 10 000 by default. */
  readonly requestTimeout?: number | undefined
  /** How long an idle keep-alive connection stays open, in ms; 5 000 by default. */
  readonly keepAliveTimeout?: number | undefined
  /** The most connections open at once; 4096 by default. */
  readonly maxConnections?: number | undefined
  /** Hand `Upgrade:` requests to the upgrade path (WebSockets); off by default: they are served as any request. */
  readonly upgrades?: boolean | undefined
  /** Makes the Node.js server; `http.createServer()` by default. The bounds above are set on it. */
  readonly createServer?: (() => Server) | undefined
}

/** The requests a server of this module received as `HEAD` and hands on as `GET`. */
const headRequests = new WeakSet<IncomingMessage>()

/** Whether `request` came as `HEAD` (answered as `GET` without its body). */
export const cameAsHead = (request: object): boolean => headRequests.has(request as IncomingMessage)

/** A whole answer on a raw socket, closing it: for requests no route is asked about (`CONNECT`). */
const answerRaw = (socket: Duplex, status: string, error: string) => {
  const body = JSON.stringify({ error })
  socket.on("error", () => undefined)
  socket.end(
    `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`
  )
}

/** Sets the bounds of `options` on `server`; `onDrop` is called for each connection refused over the cap. */
const bound = (server: Server, options: ServerOptions, onDrop: () => void): Server => {
  const requestTimeout = options.requestTimeout ?? 10_000
  server.requestTimeout = requestTimeout
  server.headersTimeout = Math.min(server.headersTimeout, requestTimeout)
  // How often Node.js looks for requests past their timeout (30 s by default): read when the server starts listening.
  Object.assign(server, { connectionsCheckingInterval: Math.min(1_000, requestTimeout / 4) })
  server.keepAliveTimeout = options.keepAliveTimeout ?? 5_000
  server.maxConnections = options.maxConnections ?? 4096
  // Node.js (≥ 24.9) serves a request whose upgrade this callback declines as any other request.
  if (options.upgrades !== true) Object.assign(server, { shouldUpgradeCallback: () => false })
  server.on("drop", onDrop)
  // `HEAD` is served by the `GET` routes; Node.js leaves the body out of the answer to a request that came as `HEAD`.
  server.prependListener("request", (request) => {
    if (request.method !== "HEAD") return
    headRequests.add(request)
    request.method = "GET"
  })
  // Node.js closes a `CONNECT` nobody listens for without a word.
  server.on("connect", (_request, socket) => answerRaw(socket, "501 Not Implemented", "CONNECT is not supported"))
  return server
}

/** See `Http.layerServer`. */
export const layerServer = (bind: Bind, options: ServerOptions = {}) =>
  Layer.unwrap(Effect.gen(function*() {
    const rejected = (yield* Metrics).counter({
      name: "http_server_connections_rejected_total",
      help: "Connections closed at once because the server had its maximum of open connections."
    })
    const services = yield* Effect.context<never>()
    let warned = false
    const onDrop = () => {
      rejected.inc()
      if (warned) return
      warned = true
      Effect.runForkWith(services)(Effect.logWarning(
        `HTTP server on ${formatAddress(bind.host, bind.port)} has ${options.maxConnections ?? 4096} connections ` +
          "open: refusing more (counted in http_server_connections_rejected_total; warned once)"
      ))
    }
    const make = () => bound((options.createServer ?? createServer)(), options, onDrop)
    const listening = NodeHttpServer.make(make, bind).pipe(
      Effect.mapError((error) =>
        new ListenError({
          server: "HTTP",
          address: formatAddress(bind.host, bind.port),
          ...(options.setting === undefined ? {} : { setting: options.setting }),
          reason: reasonOf(error.cause)
        })
      )
    )
    return Layer.merge(Layer.effect(HttpServer.HttpServer, listening), NodeHttpServer.layerHttpServices)
  }))
