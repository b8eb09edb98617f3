/**
 * `npm run trace -- <trace id>`: prints one trace from Jaeger's HTTP query API
 * as a tree in the terminal (see `TraceTree.ts`), since the module build of
 * Jaeger has no web UI. The id is 32 hex digits, or a whole `traceresponse`
 * (or `traceparent`) value as `Http.serve` answers it. Jaeger's query API is
 * at `JAEGER_QUERY_URL`, {@link defaultQueryUrl} by default.
 *
 * Exit codes: 0 printed; 2 bad input (not a trace id, a bad `JAEGER_QUERY_URL`);
 * 1 the trace is not in Jaeger, or Jaeger cannot be reached or answers an
 * error. Each failure prints one line on stderr.
 */
import { Console, Effect, Schema } from "effect"
import { FetchHttpClient, HttpClient } from "effect/http"
import { Settings } from "../src/index.ts"
import { formatTrace, type JaegerTrace, JaegerTraces } from "./TraceTree.ts"

/** Where the query API is looked for when `JAEGER_QUERY_URL` is not set: Jaeger's own default port, on loopback. */
export const defaultQueryUrl = "http://127.0.0.1:16686"

/** `JAEGER_QUERY_URL`: the base URL of Jaeger's HTTP query API, {@link defaultQueryUrl} when unset. */
export const queryUrl = Settings.setting("JAEGER_QUERY_URL", defaultQueryUrl, {
  expected: `an http(s) URL such as ${defaultQueryUrl}`,
  parse: (text) =>
    URL.canParse(text) && /^https?:$/.test(new URL(text).protocol) ? text.replace(/\/+$/, "") : undefined
})

/** The command line names no trace, or something that is not one. */
export class BadTraceId extends Schema.TaggedError<BadTraceId>()("BadTraceId", {
  /** The arguments given. */
  given: Schema.Array(Schema.String)
}) {
  override get message(): string {
    const usage = "usage: npm run trace -- <trace id>, 32 hex digits or a traceresponse value " +
      "00-<trace id>-<span id>-<flags>"
    const given = this.given.map((arg) => JSON.stringify(arg)).join(" ")
    return this.given.length === 0 ? usage : `not a trace id: ${given} (${usage})`
  }
}

/** Jaeger has no trace of that id. */
class TraceNotFound extends Schema.TaggedError<TraceNotFound>()("TraceNotFound", {
  traceId: Schema.String,
  queryUrl: Schema.String
}) {
  override get message(): string {
    return `trace ${this.traceId} is not in Jaeger at ${this.queryUrl} (JAEGER_QUERY_URL): spans arrive a second or ` +
      "two after their request ends, only from programs exporting to this Jaeger, and only if a collector's tail " +
      "sampling in between kept the trace"
  }
}

/** Jaeger's query API did not answer. */
class JaegerUnreachable extends Schema.TaggedError<JaegerUnreachable>()("JaegerUnreachable", {
  queryUrl: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot reach Jaeger's query API at ${this.queryUrl} (JAEGER_QUERY_URL): ${this.reason}; ` +
      "start it with `npm start` (after `npm run provision`), or set JAEGER_QUERY_URL to yours"
  }
}

/** Jaeger answered, but not with a trace. */
class JaegerFailed extends Schema.TaggedError<JaegerFailed>()("JaegerFailed", {
  queryUrl: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `Jaeger at ${this.queryUrl} (JAEGER_QUERY_URL) did not answer with a trace: ${this.reason}`
  }
}

/** The trace id the arguments name: 32 hex digits alone, or inside a `traceresponse`/`traceparent` value. */
export const traceIdOf = (args: ReadonlyArray<string>): Effect.Effect<string, BadTraceId> => {
  const id = /^(?:([0-9a-f]{32})|[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2})$/i
  const match = args.length === 1 ? id.exec(args[0]!.trim()) : null
  return match === null
    ? Effect.fail(new BadTraceId({ given: args }))
    : Effect.succeed((match[1] ?? match[2]!).toLowerCase())
}

/** The innermost message of an error and its causes: what the socket said (`connect ECONNREFUSED …`). */
const innermost = (error: unknown): string => {
  const cause = (error as { readonly cause?: unknown } | undefined)?.cause
  if (cause !== undefined && cause !== null) return innermost(cause)
  return error instanceof Error ? error.message : String(error)
}

/** `GET /api/traces/<traceId>` of the query API at `base`. */
const fetchTrace = (
  base: string,
  traceId: string
): Effect.Effect<JaegerTrace, TraceNotFound | JaegerUnreachable | JaegerFailed, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const response = yield* HttpClient.get(`${base}/api/traces/${traceId}`).pipe(
      Effect.catchTag("HttpClientError", (error) =>
        Effect.fail(new JaegerUnreachable({ queryUrl: base, reason: innermost(error) })))
    )
    const failed = (reason: string) =>
      new JaegerFailed({ queryUrl: base, reason: `HTTP ${response.status}, ${reason}` })
    const body = yield* response.json.pipe(
      Effect.flatMap(Schema.decodeUnknownEffect(JaegerTraces)),
      Effect.mapError((error) => failed(`unexpected body: ${innermost(error).split("\n")[0]}`))
    )
    const trace = body.data?.[0]
    if (response.status === 200 && trace !== undefined) return trace
    if (response.status === 200 || response.status === 404) {
      return yield* Effect.fail(new TraceNotFound({ traceId, queryUrl: base }))
    }
    return yield* Effect.fail(failed(body.errors?.map((error) => error.msg).join("; ") || "no trace"))
  }).pipe(
    Effect.timeoutOrElse({
      duration: "10 seconds",
      orElse: () => Effect.fail(new JaegerUnreachable({ queryUrl: base, reason: "no answer within 10 s" }))
    })
  )

/** The lines `npm run trace -- <args>` prints. */
const program = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const traceId = yield* traceIdOf(args)
    const base = yield* Settings.read(queryUrl)
    return formatTrace(yield* fetchTrace(base, traceId))
  })

/** The exit code of a failure: 2 for bad input, else 1. */
export const exitCode = (error: { readonly _tag: string }): number =>
  error._tag === "BadTraceId" || error._tag === "InvalidConfig" ? 2 : 1

if (import.meta.main) {
  await Effect.runPromise(program(process.argv.slice(2)).pipe(
    Effect.matchEffect({
      onSuccess: (lines) => Console.log(lines.join("\n")),
      onFailure: (error) =>
        Effect.andThen(Console.error(error.message), Effect.sync(() => (process.exitCode = exitCode(error))))
    }),
    Effect.provide(FetchHttpClient.layer)
  ))
}
