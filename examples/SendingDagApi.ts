/**
 * The sending DAG's HTTP API (SPEC §6), served with `Http.serve` so every
 * request is one server span and one latency sample:
 *
 * - `GET /ping` → `200 {"ok":true}`
 * - `POST /tx`, `POST /poh` with a transaction → `201 {"id","region","ack"}` once the PoH_ACK is in and the write is
 *   acknowledged; `400` bad body (malformed JSON, not UTF-8, invalid transaction), `413` too large, `415` a
 *   content type other than JSON, `503` storage or PoH node down, `504` PoH timeout
 * - `GET /tx/:id` → `200` the stored transaction, or `404`
 * - anything else → `404 {"error"}` (one route label, `/*`)
 */
import { createServer, type Server } from "node:http"
import { Effect, Layer, Option, Schema } from "effect"
import { HttpIncomingMessage, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as ByteSize from "effect/ByteSize"
import { Http } from "../src/index.ts"
import { Storage, Transaction } from "../src/dag/index.ts"

/** Largest accepted request body. */
export const maxBodyBytes = 16 * 1024

/** How long a client may take to send a whole request, headers and body; a slower one gets `408` and is cut off. */
export const requestTimeoutMs = 10_000

/**
 * The Node.js server to serve the API with: a request not received in full within `requestTimeout` ms (a client
 * trickling its body) is answered `408` and its connection closed, checked every `checkInterval` ms.
 */
export const createHttpServer = (
  options: { readonly requestTimeout?: number; readonly checkInterval?: number } = {}
): Server => {
  const requestTimeout = options.requestTimeout ?? requestTimeoutMs
  return createServer({
    requestTimeout,
    headersTimeout: requestTimeout,
    connectionsCheckingInterval: options.checkInterval ?? Math.min(1_000, requestTimeout)
  })
}

const answer = (status: number, body: unknown) => HttpServerResponse.jsonUnsafe(body, { status })

const failure = (status: number, error: string, details?: unknown) =>
  answer(status, details === undefined ? { error } : { error, details })

const decodeTransaction = Schema.decodeUnknownEffect(Transaction.Transaction)

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** `application/json` or `application/<anything>+json`, with any parameters; an absent type is taken for JSON. */
const isJson = (contentType: string | undefined) =>
  contentType === undefined || /^application\/(?:[\w.-]+\+)?json\s*(?:;|$)/i.test(contentType.trim())

/** Reads and validates the body: a response for every way it can be wrong. */
const readTransaction = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const contentType = request.headers["content-type"]
  if (!isJson(contentType)) {
    return yield* Effect.fail(failure(415, "content-type must be application/json", { contentType }))
  }
  const declared = Number(request.headers["content-length"] ?? 0)
  if (declared > maxBodyBytes) return yield* Effect.fail(failure(413, `body larger than ${maxBodyBytes} bytes`))
  const bytes = yield* request.arrayBuffer.pipe(
    Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
    Effect.mapError((error) =>
      error.reason._tag === "RequestParseError" && error.reason.reason === "BodyTooLarge"
        ? failure(413, `body larger than ${maxBodyBytes} bytes`)
        : failure(400, "unreadable body", error.message)
    )
  )
  const text = yield* Effect.try({
    try: () => utf8.decode(bytes),
    catch: () => failure(400, "body is not valid UTF-8")
  })
  const json = yield* Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) => failure(400, "malformed JSON", error instanceof Error ? error.message : String(error))
  })
  return yield* decodeTransaction(json, { errors: "all", onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => failure(400, "invalid transaction", error.message))
  )
})

const submit = Effect.gen(function*() {
  const tx = yield* readTransaction
  const stored = yield* Transaction.commit(tx).pipe(
    Effect.catchTags({
      PohTimeout: (error) => Effect.fail(failure(504, error.message)),
      PohUnavailable: (error) => Effect.fail(failure(503, error.message)),
      StorageUnavailable: (error) => Effect.fail(failure(503, error.message)),
      DuplicateTransaction: (error) => Effect.fail(failure(409, error.message))
    })
  )
  return answer(201, { id: stored.id, region: stored.region, ack: stored.ack })
}).pipe(Effect.catch(Effect.succeed))

const find = Effect.gen(function*() {
  const { id } = yield* HttpRouter.schemaPathParams(Schema.Struct({ id: Schema.String }))
  const storage = yield* Storage.Storage
  const stored = yield* storage.find(id)
  return Option.match(stored, {
    onNone: () => failure(404, `no transaction ${id}`),
    onSome: (tx) => answer(200, tx)
  })
}).pipe(
  Effect.catchTag("StorageUnavailable", (error) => Effect.succeed(failure(503, error.message))),
  Effect.catch(() => Effect.succeed(failure(400, "bad transaction id")))
)

/** The routes. */
export const Routes = Layer.mergeAll(
  HttpRouter.add("GET", "/ping", answer(200, { ok: true })),
  HttpRouter.add("POST", "/tx", submit),
  HttpRouter.add("POST", "/poh", submit),
  HttpRouter.add("GET", "/tx/:id", find),
  HttpRouter.add("*", "/*", failure(404, "no such route"))
)

/** The API served with the instrumentation; needs an `HttpServer`, the workflows and `Metrics`. */
export const layer = Http.serve(Routes, { disableLogger: true })
