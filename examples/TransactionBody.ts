/**
 * The body of `POST /tx`: read, checked and decoded, with an answer ready for
 * every way it can be wrong — `415` for a content type other than JSON, a
 * charset other than UTF-8 or a `Content-Encoding`; `413` too large; `400`
 * unreadable, not UTF-8, malformed JSON, a duplicate key, a string that is not
 * well-formed Unicode, a number a double cannot carry exactly (examples/StrictJson.ts),
 * or an invalid transaction. What is decoded is then stored as it is: what the
 * answer acknowledges is what `GET /tx/:id` reads back.
 */
import { Effect, Schema } from "effect"
import * as ByteSize from "effect/ByteSize"
import { HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "effect/http"
import { Transaction } from "../src/dag/index.ts"
import { parseStrict } from "./StrictJson.ts"

/** Largest accepted request body. */
export const maxBodyBytes = 16 * 1024

/** A transaction id a client may choose: 1–128 letters, digits, `.`, `_`, `:` or `-`. */
export const TransactionId = Schema.String.check(Schema.isPattern(/^[\w.:-]{1,128}$/))

/** A transaction as `POST /tx` takes it: SPEC §6's fields, and optionally the client's own `id`. */
export const TransactionRequest = Schema.Struct({
  ...Transaction.Transaction.fields,
  id: Schema.optional(TransactionId)
})

/** A JSON answer. */
export const answer = (status: number, body: unknown): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(body, { status })

/** A JSON error answer: `{"error", "details"?}`. */
export const failure = (status: number, error: string, details?: unknown): HttpServerResponse.HttpServerResponse =>
  answer(status, details === undefined ? { error } : { error, details })

const utf8 = new TextDecoder("utf-8", { fatal: true })

/** The media type and `charset` of a `Content-Type`; an absent type is taken for JSON in UTF-8. */
const mediaType = (contentType: string | undefined) => {
  const [type = "", ...parameters] = (contentType ?? "application/json").split(";").map((part) => part.trim())
  const charset = parameters.find((parameter) => /^charset=/i.test(parameter))?.slice(8).replace(/^"|"$/g, "")
  return { json: /^application\/(?:[\w.-]+\+)?json$/i.test(type), charset }
}

/** The checks of the headers: a `415` for what cannot be read as JSON in UTF-8. */
const checkHeaders = (request: HttpServerRequest.HttpServerRequest) => {
  const contentType = request.headers["content-type"]
  const { charset, json } = mediaType(contentType)
  if (!json) return failure(415, "content-type must be application/json", { contentType })
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    return failure(415, "the body must be UTF-8", { charset })
  }
  const encoding = request.headers["content-encoding"]
  if (encoding !== undefined && encoding.trim().toLowerCase() !== "identity") {
    return failure(415, "content-encoding is not supported: send the body as it is", { contentEncoding: encoding })
  }
  const declared = Number(request.headers["content-length"] ?? 0)
  return declared > maxBodyBytes ? failure(413, `body larger than ${maxBodyBytes} bytes`) : undefined
}

/** Reads and validates the body: the request, or the answer saying what is wrong with it. */
export const readTransaction = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const refused = checkHeaders(request)
  if (refused !== undefined) return yield* Effect.fail(refused)
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
  const parsed = parseStrict(text)
  if ("refused" in parsed) {
    const { error, kind, path } = parsed.refused
    return yield* Effect.fail(
      kind === "malformed"
        ? failure(400, "malformed JSON", error)
        : failure(400, error, { field: path.replace(/^\$\.?/, "") })
    )
  }
  return yield* Schema.decodeUnknownEffect(TransactionRequest)(parsed.value, {
    errors: "all",
    onExcessProperty: "error"
  }).pipe(Effect.mapError((error) => failure(400, "invalid transaction", error.message)))
})
