/**
 * The sending DAG's API served in process for the specs of its inputs
 * (BadInput, StrictBody): the layer, and requests sent on the wire.
 */
import { Agent, type IncomingHttpHeaders, request } from "node:http"
import { Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import * as SendingDagApi from "../../examples/SendingDagApi.ts"
import { DagMetrics, Poh, Presence, Storage } from "../../src/dag/index.ts"
import { Http, MetricsServer, ObservabilityTest } from "../../src/index.ts"

/**
 * The sending DAG's API in process on a free loopback port, in-process PoH,
 * `store` (memory by default), `ObservabilityTest`.
 */
export const api = <E>(
  options: Http.ServerOptions = {},
  store: Layer.Layer<Storage.Storage, E, DagMetrics.DagMetrics> = Storage.layerMemory
) =>
  SendingDagApi.layer.pipe(
    Layer.provideMerge(Http.layerServer({ host: "127.0.0.1", port: 0 }, options)),
    Layer.provideMerge(MetricsServer.layer({ bind: { host: "127.0.0.1", port: 0 } })),
    Layer.provide(Layer.mergeAll(Poh.layerInProcess(), store, Presence.layerStatic({ nodes: [], failureRatio: 0 }))),
    Layer.provideMerge(DagMetrics.layer()),
    Layer.provideMerge(ObservabilityTest)
  )

/** One exchange: status, headers and body text. */
export interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** A request as sent on the wire: a string or bytes with a truthful content-length, or chunks sent chunked. */
export interface Sent {
  readonly method?: string
  readonly path?: string
  readonly headers?: Readonly<Record<string, string>>
  readonly body?: string | Buffer | ReadonlyArray<string | Buffer>
}

const agent = new Agent({ keepAlive: true, maxSockets: 32 })

/** Sends `sent` to `base`: the answer. */
export const exchange = (base: string, sent: Sent) =>
  Effect.promise(() =>
    new Promise<Answer>((resolve, reject) => {
      const outgoing = request(
        new URL(sent.path ?? "/tx", base),
        { method: sent.method ?? "POST", headers: sent.headers ?? {}, agent },
        (incoming) => {
          const chunks: Array<Buffer> = []
          incoming.on("data", (chunk: Buffer) => chunks.push(chunk))
          incoming.on("end", () =>
            resolve({
              status: incoming.statusCode ?? 0,
              headers: incoming.headers,
              body: Buffer.concat(chunks).toString()
            }))
          incoming.on("error", reject)
        }
      )
      outgoing.on("error", reject)
      const body = sent.body
      if (Array.isArray(body)) {
        for (const chunk of body) outgoing.write(chunk)
        outgoing.end()
      } else outgoing.end(body)
    })
  )

/** Sends `sent` to the API under test. */
export const send = (sent: Sent) =>
  Effect.flatMap(HttpServer.HttpServer, ({ address }) => exchange(HttpServer.formatAddress(address), sent))

/** The JSON content type. */
export const json = { "content-type": "application/json" }

/** A valid transaction, with `fields` replaced (`undefined` removes one). */
export const tx = (fields: Record<string, unknown> = {}) =>
  JSON.stringify(Object.fromEntries(
    Object.entries({ from: "alice", to: "bob", amount: 5, region: "eu-central", ...fields })
      .filter(([, value]) => value !== undefined)
  ))

