/**
 * Jaeger's HTTP query API for the integration tests: the `Trace` of
 * `GET /api/traces/<id>`, {@link fetchTrace} polling until a trace's spans are
 * stored, and helpers to read a trace's tags, tree and services.
 */
import { assert } from "@effect/vitest"
import { Effect, Schedule, Schema } from "effect"
import { inject } from "vitest"

const Tag = Schema.Struct({ key: Schema.String, value: Schema.Unknown })

/** One trace as Jaeger's query API returns it. */
export const Trace = Schema.Struct({
  traceID: Schema.String,
  spans: Schema.Array(Schema.Struct({
    traceID: Schema.String,
    spanID: Schema.String,
    operationName: Schema.String,
    references: Schema.Array(Schema.Struct({ refType: Schema.String, traceID: Schema.String, spanID: Schema.String })),
    tags: Schema.Array(Tag),
    logs: Schema.Array(Schema.Struct({ fields: Schema.Array(Tag) })),
    processID: Schema.String
  })),
  processes: Schema.Record(Schema.String, Schema.Struct({ serviceName: Schema.String }))
})

export type Trace = typeof Trace.Type

export type JaegerSpan = Trace["spans"][number]

/** The body of `GET /api/traces/<id>`. */
export const Traces = Schema.Struct({ data: Schema.NullOr(Schema.Array(Trace)) })

/**
 * Polls `GET /api/traces/<traceId>` (404 until it is stored) of the Jaeger at
 * `queryUrl` (globalSetup's by default) until it has at least `spans` spans,
 * for at most ~15 s; returns every trace of the answer.
 */
export const fetchTraces = (traceId: string, spans: number, queryUrl = inject("jaegerQueryUrl")) =>
  Effect.tryPromise(async () => {
    const response = await fetch(`${queryUrl}/api/traces/${traceId}`)
    return { status: response.status, body: await response.json() as unknown }
  }).pipe(
    Effect.flatMap(({ status, body }) =>
      Effect.flatMap(Schema.decodeUnknownEffect(Traces)(body), ({ data }) => {
        const found = data?.[0]
        return data !== null && found !== undefined && found.spans.length >= spans
          ? Effect.succeed(data)
          : Effect.fail(new Error(`trace ${traceId}: HTTP ${status}, ${found?.spans.length ?? 0} of ${spans} spans`))
      })
    ),
    Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 75 })
  )

/** The HTTP status of `GET /api/traces/<traceId>` of the Jaeger at `queryUrl`, once (404: no span of it stored). */
export const traceStatus = (traceId: string, queryUrl = inject("jaegerQueryUrl")) =>
  Effect.promise(async () => (await fetch(`${queryUrl}/api/traces/${traceId}`)).status)

/** {@link fetchTraces}, the first trace of the answer. */
export const fetchTrace = (traceId: string, spans: number, queryUrl = inject("jaegerQueryUrl")) =>
  Effect.map(fetchTraces(traceId, spans, queryUrl), (traces) => traces[0]!)

/** The value of a span's tag `key`, `undefined` when it has none. */
export const tag = (span: JaegerSpan | undefined, key: string): unknown =>
  span?.tags.find((kv) => kv.key === key)?.value

/** A span's name: how {@link byName} and {@link parents} tell spans apart unless told otherwise. */
export const operationName = (span: JaegerSpan): string => span.operationName

/** `<name> (<kind>)`: tells a call's CLIENT span from its SERVER span of the same name. */
export const nameAndKind = (span: JaegerSpan): string => `${span.operationName} (${String(tag(span, "span.kind"))})`

/** The `service.name` of the process that sent `span`. */
export const serviceOf = (trace: Trace, span: JaegerSpan): string | undefined =>
  trace.processes[span.processID]?.serviceName

/** The trace's spans by `label` (their names by default). */
export const byName = (trace: Trace, label = operationName): Map<string, JaegerSpan> =>
  new Map(trace.spans.map((span) => [label(span), span]))

/** Each span's `label` → its CHILD_OF parent's (`null` for a root, or a parent not in the trace). */
export const parents = (trace: Trace, label = operationName): Record<string, string | null> => {
  const labels = new Map(trace.spans.map((span) => [span.spanID, label(span)]))
  return Object.fromEntries(trace.spans.map((span) => {
    const parent = span.references.filter((ref) => ref.refType === "CHILD_OF").map((ref) => labels.get(ref.spanID))
    assert.isAtMost(parent.length, 1, `${label(span)} has one parent at most`)
    return [label(span), parent[0] ?? null]
  }))
}
