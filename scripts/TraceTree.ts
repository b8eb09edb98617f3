/**
 * One trace of Jaeger's HTTP query API (`GET /api/traces/<id>`) as lines of
 * text: a tree of its spans by parent, children in start order, each line the
 * service, the span's name (and kind, unless internal), its duration, its
 * status (`OK`, or `ERROR` with the failure's `error.type`) and the key
 * attributes of this library's instrumentations. A span whose parent is not in
 * the trace (a caller's span that was never exported, a span still in another
 * process's batch) is shown at the root, saying which parent it lacks.
 *
 * @example
 * ```ts
 * import { formatTrace, type JaegerTrace } from "./TraceTree.ts"
 *
 * declare const trace: JaegerTrace // the first of `data` in Jaeger's answer
 * console.log(formatTrace(trace).join("\n"))
 * // trace 0af7651916cd43dd8448eb211c80319c: 3 spans, 1 service (sending-dag), 14.9 ms
 * // sending-dag: POST /tx (server)  14.9 ms  OK  http.route=/tx http.response.status_code=201
 * // ├─ sending-dag: Poh.request  8.79 ms  OK  dag.region=eu-central
 * // └─ sending-dag: Storage.persist  504 µs  ERROR DuplicateTransaction  dag.tx.id=tx-1
 * ```
 */
import { Schema } from "effect"

const Tag = Schema.Struct({ key: Schema.String, value: Schema.Unknown })

/** One span as Jaeger's query API returns it (times in microseconds); other fields are ignored. */
const JaegerSpan = Schema.Struct({
  spanID: Schema.String,
  operationName: Schema.String,
  references: Schema.Array(Schema.Struct({ refType: Schema.String, spanID: Schema.String })),
  startTime: Schema.Number,
  duration: Schema.Number,
  tags: Schema.Array(Tag),
  processID: Schema.String
})

type JaegerSpan = typeof JaegerSpan.Type

/** One trace as Jaeger's query API returns it. */
export const JaegerTrace = Schema.Struct({
  traceID: Schema.String,
  spans: Schema.Array(JaegerSpan),
  processes: Schema.Record(Schema.String, Schema.Struct({ serviceName: Schema.String }))
})

/** {@link JaegerTrace}'s type. */
export type JaegerTrace = typeof JaegerTrace.Type

/** The body of `GET /api/traces/<id>`: the trace (`data`), or why there is none (`errors`). */
export const JaegerTraces = Schema.Struct({
  data: Schema.NullOr(Schema.Array(JaegerTrace)),
  errors: Schema.optional(Schema.NullOr(Schema.Array(Schema.Struct({ code: Schema.Number, msg: Schema.String }))))
})

/** The attributes a line shows when a span has them, in this order. */
const keyAttributes = [
  "http.route",
  "http.response.status_code",
  "rpc.method",
  "rpc.grpc.status_code",
  "db.operation.name",
  "db.collection.name",
  "dag.region",
  "dag.poh.node",
  "dag.poh.placement",
  "dag.poh.attempts",
  "dag.presence.stale",
  "dag.tx.id",
  "poh.seq"
] as const

/** A duration given in microseconds, to three significant digits: `504 µs`, `14.9 ms`, `1.23 s`. */
export const formatDuration = (micros: number): string => {
  if (micros < 1e3) return `${Math.round(micros)} µs`
  const [value, unit] = micros < 1e6 ? [micros / 1e3, "ms"] : [micros / 1e6, "s"]
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)} ${unit}`
}

const tag = (span: JaegerSpan, key: string): unknown => span.tags.find((kv) => kv.key === key)?.value

/** A value as `key=value` shows it: quoted when empty or when it has spaces. */
const shown = (value: unknown): string => {
  const text = typeof value === "string" ? value : JSON.stringify(value)
  return text === "" || /\s/.test(text) ? JSON.stringify(text) : text
}

/** `OK`, or `ERROR` with the failure's `error.type` (else the status description). */
const status = (span: JaegerSpan): string => {
  if (tag(span, "error") !== true && tag(span, "otel.status_code") !== "ERROR") return "OK"
  const why = tag(span, "error.type") ?? tag(span, "otel.status_description")
  return why === undefined ? "ERROR" : `ERROR ${shown(why)}`
}

/** The parent a span names (its first CHILD_OF reference), whether or not the trace has it. */
const parentOf = (span: JaegerSpan): string | undefined =>
  span.references.find((ref) => ref.refType === "CHILD_OF")?.spanID

/** Start order; spans starting in the same microsecond by name, then id, so that the output is stable. */
const byStart = (a: JaegerSpan, b: JaegerSpan): number =>
  a.startTime - b.startTime || a.operationName.localeCompare(b.operationName) || a.spanID.localeCompare(b.spanID)

/**
 * The lines of `trace`: a summary (id, spans, services, duration), then one
 * line per span, each child under its parent after `├─ `/`└─ `.
 */
export const formatTrace = (trace: JaegerTrace): ReadonlyArray<string> => {
  const spans = trace.spans.toSorted(byStart)
  const ids = new Set(spans.map((span) => span.spanID))
  const children = new Map<string, Array<JaegerSpan>>()
  for (const span of spans) {
    const parent = parentOf(span)
    if (parent !== undefined && ids.has(parent)) children.set(parent, [...children.get(parent) ?? [], span])
  }
  const service = (span: JaegerSpan) => trace.processes[span.processID]?.serviceName ?? span.processID
  const line = (span: JaegerSpan): string => {
    const kind = tag(span, "span.kind")
    const attributes = keyAttributes.flatMap((key) => {
      const value = tag(span, key)
      return value === undefined ? [] : [`${key}=${shown(value)}`]
    })
    const parent = parentOf(span)
    return [
      `${service(span)}: ${span.operationName}${kind === undefined || kind === "internal" ? "" : ` (${String(kind)})`}`,
      formatDuration(span.duration),
      status(span),
      ...(attributes.length === 0 ? [] : [attributes.join(" ")]),
      ...(parent === undefined || ids.has(parent) ? [] : [`(parent ${parent} not in trace)`])
    ].join("  ")
  }
  const lines: Array<string> = []
  const printed = new Set<JaegerSpan>()
  const walk = (span: JaegerSpan, lead: string, branch: string): void => {
    printed.add(span)
    lines.push(`${lead}${branch}${line(span)}`)
    const below = (children.get(span.spanID) ?? []).filter((child) => !printed.has(child))
    const indent = lead + (branch === "├─ " ? "│  " : branch === "" ? "" : "   ")
    below.forEach((child, i) => walk(child, indent, i === below.length - 1 ? "└─ " : "├─ "))
  }
  const isRoot = (span: JaegerSpan) => {
    const parent = parentOf(span)
    return parent === undefined || !ids.has(parent)
  }
  for (const span of spans) if (isRoot(span)) walk(span, "", "")
  // Spans whose parents form a cycle have no root above them: each is shown once all the same.
  for (const span of spans) if (!printed.has(span)) walk(span, "", "")
  const services = [...new Set(spans.map(service))]
  const start = Math.min(...spans.map((span) => span.startTime))
  const end = Math.max(...spans.map((span) => span.startTime + span.duration))
  const summary = `trace ${trace.traceID}: ${spans.length} span${spans.length === 1 ? "" : "s"}, ` +
    `${services.length} service${services.length === 1 ? "" : "s"} (${services.join(", ")}), ` +
    formatDuration(spans.length === 0 ? 0 : end - start)
  return [summary, ...lines]
}
