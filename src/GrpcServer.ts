/**
 * A grpc-js server as a scoped resource, instrumented and bounded against
 * hostile clients: {@link serve} runs services on a `grpc.Server` traced and
 * timed by `Grpc.serverInterceptor`, whose idle connections are closed
 * (`GOAWAY`) and whose every connection ends within a maximum age, and accepts
 * its connections on a socket of ours, so that at most `maxConnections` are
 * open at once and a connection that does not start HTTP/2 within
 * `handshakeTimeout` is closed. Refused and closed connections are counted in
 * `grpc_server_connections_rejected_total{reason}`. Closing the scope stops
 * taking connections and calls, lets calls in flight finish within
 * `shutdownTimeout`, then cancels the rest.
 *
 * @example
 * ```ts
 * import type * as grpc from "@grpc/grpc-js"
 * import { Effect } from "effect"
 * import * as GrpcServer from "dag-observability/GrpcServer"
 *
 * declare const definition: grpc.ServiceDefinition
 * declare const handlers: grpc.UntypedServiceImplementation
 *
 * const Serving = Effect.scoped(Effect.gen(function*() {
 *   const port = yield* GrpcServer.serve({ host: "0.0.0.0", port: 50051, setting: "GRPC_BIND", services: [[definition, handlers]] })
 *   yield* Effect.log(`gRPC on port ${port}`)
 *   return yield* Effect.never
 * }))
 * ```
 */
import { createServer, type Socket } from "node:net"
import * as grpc from "@grpc/grpc-js"
import { Duration, Effect, type Scope } from "effect"
import * as Grpc from "./Grpc.ts"
import { ListenError, reasonOf } from "./ListenError.ts"
import { Metrics } from "./Metrics.ts"
import { formatAddress } from "./Settings.ts"

/** Options of {@link serve}. */
export interface Options {
  readonly host: string
  /** 0 picks a free port; {@link serve} says which. */
  readonly port: number
  /** The services to serve: each definition with its handlers. */
  readonly services: ReadonlyArray<readonly [grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>
  /** The setting `host` and `port` came from, named when they cannot be listened on. */
  readonly setting?: string | undefined
  /** What is served, for errors and logs: `gRPC` by default. */
  readonly name?: string | undefined
  /** The most connections open at once; 1024 by default. */
  readonly maxConnections?: number | undefined
  /** How long a new connection may take to send the HTTP/2 connection preface; 10 seconds by default. */
  readonly handshakeTimeout?: Duration.Input | undefined
  /** A connection with no call for this long is closed (`GOAWAY`); 1 minute by default. */
  readonly idleTimeout?: Duration.Input | undefined
  /** Every connection is asked to close (`GOAWAY`) at this age (± 10 %), then closed `maxAgeGrace` later; 10 minutes. */
  readonly maxAge?: Duration.Input | undefined
  /** How long a connection past `maxAge` may finish its calls; 30 seconds by default. */
  readonly maxAgeGrace?: Duration.Input | undefined
  /** The server pings each connection this often to find dead peers; 30 seconds by default. */
  readonly keepalive?: Duration.Input | undefined
  /** How long closing waits for calls in flight before cancelling them; 5 seconds by default. */
  readonly shutdownTimeout?: Duration.Input | undefined
}

const millis = (input: Duration.Input | undefined, fallback: Duration.Input) =>
  Duration.toMillis(Duration.fromInputUnsafe(input ?? fallback))

/** What every HTTP/2 connection starts with (RFC 9113 §3.4). */
const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

/** Why a connection was closed before it reached the server. */
type Rejection = "limit" | "handshake_timeout" | "not_http2"

/**
 * Waits for the connection preface on `socket` within `timeoutMs`, then hands
 * the socket (the preface put back) to `accept`; closes it and reports why
 * when it does not come, or something else does.
 */
const handshake = (socket: Socket, timeoutMs: number, accept: (socket: Socket) => void, reject: (why: Rejection) => void) => {
  let received = Buffer.alloc(0)
  const refuse = (why: Rejection) => {
    socket.off("data", onData)
    clearTimeout(timer)
    socket.destroy()
    reject(why)
  }
  const timer = setTimeout(() => refuse("handshake_timeout"), timeoutMs)
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk])
    const known = Math.min(received.length, preface.length)
    if (!received.subarray(0, known).equals(preface.subarray(0, known))) return refuse("not_http2")
    if (received.length < preface.length) return
    socket.off("data", onData)
    clearTimeout(timer)
    socket.pause()
    socket.unshift(received)
    accept(socket)
  }
  socket.on("data", onData)
  socket.once("close", () => clearTimeout(timer))
}

/** The grpc-js server of `options`, its services added. */
const makeServer = (interceptor: grpc.ServerInterceptor, options: Options) => {
  const server = new grpc.Server({
    interceptors: [interceptor],
    "grpc.max_connection_idle_ms": millis(options.idleTimeout, "1 minute"),
    "grpc.max_connection_age_ms": millis(options.maxAge, "10 minutes"),
    "grpc.max_connection_age_grace_ms": millis(options.maxAgeGrace, "30 seconds"),
    "grpc.keepalive_time_ms": millis(options.keepalive, "30 seconds"),
    "grpc.keepalive_timeout_ms": 10_000
  })
  for (const [definition, handlers] of options.services) server.addService(definition, handlers)
  return server
}

/** Resolves once every socket of `open` has closed. */
const allClosed = (open: Set<Socket>) =>
  Effect.promise(() => Promise.all([...open].map((socket) => new Promise((resolve) => socket.once("close", resolve)))))

/**
 * Serves `options.services` on `host:port` until the scope closes; the port
 * bound (the real one for port 0), or a {@link ListenError} naming `setting`.
 * At most `maxConnections` open connections (the excess closed at once), each
 * given `handshakeTimeout` to start HTTP/2; refusals counted and the first of
 * each kind warned of. Closing stops taking connections and calls, waits up to
 * `shutdownTimeout` for the calls in flight, then cancels what is left.
 */
export const serve = (options: Options): Effect.Effect<number, ListenError, Metrics | Scope.Scope> =>
  Effect.gen(function*() {
    const rejected = (yield* Metrics).counter({
      name: "grpc_server_connections_rejected_total",
      help: "Connections closed before reaching the gRPC server: over the limit, no HTTP/2 in time, not HTTP/2.",
      labelNames: ["reason"]
    })
    const server = makeServer(yield* Grpc.serverInterceptor, options)
    const services = yield* Effect.context<never>()
    const address = formatAddress(options.host, options.port)
    const name = options.name ?? "gRPC"
    const warned = new Set<Rejection>()
    const reject = (reason: Rejection) => {
      rejected.inc({ reason })
      if (warned.has(reason)) return
      warned.add(reason)
      Effect.runForkWith(services)(Effect.logWarning(
        `${name} on ${address}: closed a connection (${reason}); counted in ` +
          "grpc_server_connections_rejected_total, warned once per reason"
      ))
    }
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure())
    const timeoutMs = millis(options.handshakeTimeout, "10 seconds")
    const open = new Set<Socket>()
    const listener = createServer((socket) => {
      open.add(socket)
      socket.on("error", () => undefined)
      socket.once("close", () => open.delete(socket))
      handshake(socket, timeoutMs, (ready) => injector.injectConnection(ready), reject)
    })
    listener.maxConnections = options.maxConnections ?? 1024
    listener.on("drop", () => reject("limit"))
    return yield* Effect.acquireRelease(
      Effect.callback<number, ListenError>((resume) => {
        const onError = (error: Error) =>
          resume(Effect.fail(
            new ListenError({
              server: name,
              address,
              reason: reasonOf(error),
              ...(options.setting === undefined ? {} : { setting: options.setting })
            })
          ))
        listener.once("error", onError)
        listener.listen(options.port, options.host, () => {
          listener.off("error", onError)
          resume(Effect.succeed((listener.address() as { readonly port: number }).port))
        })
      }),
      () =>
        Effect.sync(() => {
          listener.close()
          // GOAWAY to every connection: calls in flight go on, new ones are refused, each closes once it is done.
          server.tryShutdown(() => undefined)
        }).pipe(
          Effect.andThen(allClosed(open)),
          Effect.timeoutOrElse({
            duration: options.shutdownTimeout ?? "5 seconds",
            orElse: () =>
              Effect.sync(() => {
                server.forceShutdown()
                for (const socket of open) socket.destroy()
              })
          })
        )
    )
  })
