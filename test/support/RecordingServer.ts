/**
 * A plain node:http server on loopback that records every request it gets
 * (headers as Node.js parsed them and as they came on the wire) and answers
 * `/status/<code>` with that status, anything else with 200; and `sendRaw`,
 * which sends headers exactly as given (casing, repeats, whitespace).
 */
import { createServer, type IncomingHttpHeaders, request } from "node:http"
import type { AddressInfo } from "node:net"
import { Context, Effect, Layer } from "effect"

/** One request the server got. */
export interface Received {
  readonly method: string
  readonly url: string
  /** Lower-cased names; repeated headers joined as Node.js joins them. */
  readonly headers: IncomingHttpHeaders
  /** Name, value, name, value, … as sent. */
  readonly rawHeaders: ReadonlyArray<string>
}

/** The recording server of a test file. */
export class RecordingServer extends Context.Service<RecordingServer, {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** The requests received since the last `take`, forgetting them. */
  readonly take: Effect.Effect<ReadonlyArray<Received>>
}>()("test/RecordingServer") {}

/** Starts the server on a free loopback port; it closes with the layer. */
export const layer: Layer.Layer<RecordingServer> = Layer.effect(
  RecordingServer,
  Effect.gen(function*() {
    let received: Array<Received> = []
    const server = createServer((req, res) => {
      received.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, rawHeaders: req.rawHeaders })
      const status = /^\/status\/(\d{3})/.exec(req.url ?? "")
      res.statusCode = status === null ? 200 : Number(status[1])
      req.resume()
      req.on("end", () => res.end("done"))
    })
    yield* Effect.acquireRelease(
      Effect.callback<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
      () =>
        Effect.callback<void>((resume) => {
          server.closeAllConnections()
          server.close(() => resume(Effect.void))
        })
    )
    const { port } = server.address() as AddressInfo
    return RecordingServer.of({
      url: `http://127.0.0.1:${port}`,
      port,
      take: Effect.sync(() => {
        const taken = received
        received = []
        return taken
      })
    })
  })
)

/**
 * Sends `GET <url>` with `rawHeaders` (name, value, name, value, …) as they
 * are, after `Host` (which Node.js does not add to headers given as a list);
 * resolves with the status.
 */
export const sendRaw = (url: string, rawHeaders: ReadonlyArray<string>): Effect.Effect<number> =>
  Effect.callback<number>((resume) => {
    const headers = ["Host", new URL(url).host, ...rawHeaders]
    const sent = request(url, { headers, agent: false }, (res) => {
      res.resume()
      res.on("end", () => resume(Effect.succeed(res.statusCode ?? 0)))
    })
    sent.on("error", (error) => resume(Effect.die(error)))
    sent.end()
  })
