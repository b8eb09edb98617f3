/**
 * MongoMonitor: traces and times every command of the {@link Mongo} client
 * from the driver's command monitoring events, and reports its pool.
 *
 * - one CLIENT span per command, `<command> <db>.<collection>`, child of the
 *   span current when the driver was called (the driver emits
 *   `commandStarted` in the caller's async context, where
 *   `@effect/opentelemetry` has made the Effect span the active one), with
 *   the attributes of OpenTelemetry's database semantic conventions and never
 *   a document, filter or query value;
 * - `mongodb_command_duration_seconds{command,collection,outcome}` with the
 *   span as exemplar;
 * - `mongodb_pool_connections{state}` from the pool events.
 *
 * Both families are registered on the current {@link Metrics} when the layer
 * is built.
 *
 * A command whose reply carries write errors or a write concern error (a
 * duplicate key, say) ran but failed: its span is ERROR and its outcome
 * `failure`, as when the driver reports the command failed. Error messages,
 * which may quote document values, are never recorded: `error.type` is the
 * server's code name (or the driver error's name) and `db.response.status_code`
 * its code.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { Metrics } from "dag-observability"
 * import * as Mongo from "dag-observability/Mongo"
 * import * as MongoMonitor from "dag-observability/MongoMonitor"
 *
 * const MongoLive = MongoMonitor.layer.pipe(Layer.provideMerge(Mongo.layerConfig()), Layer.provide(Metrics.layer))
 * ```
 */
import { type Attributes, context, type Span, SpanKind, SpanStatusCode, trace, TraceFlags } from "@opentelemetry/api"
import { Effect, Layer, type Scope } from "effect"
import type { CommandFailedEvent, CommandStartedEvent, CommandSucceededEvent, Document } from "mongodb"
import { listen } from "./internal/listen.ts"
import { type ExemplarSpan, Metrics, observeWithSpan } from "./Metrics.ts"
import { Mongo, poolEvents, poolStates } from "./Mongo.ts"

/** The instrumentation scope name of the command spans. */
export const tracerName = "dag-observability"

/** The label value of command and collection names that are not kept. */
export const otherLabel = "other"

/** Distinct collection label values kept at most; names seen after them are `other`. */
export const maxCollections = 100

/** Commands in flight tracked at most; more get no span (their metrics say `collection="other"`). */
const maxInFlight = 10_000

/** Commands whose first field names the collection they work on (`getMore` names it in `collection`). */
const collectionCommands: ReadonlySet<string> = new Set([
  "insert",
  "update",
  "delete",
  "find",
  "findAndModify",
  "aggregate",
  "count",
  "distinct",
  "create",
  "drop",
  "createIndexes",
  "dropIndexes",
  "listIndexes",
  "collMod",
  "killCursors",
  "validate",
  "collStats"
])

/** Names of the server error codes a write error may carry without its code name. */
const codeNames: Readonly<Record<number, string>> = {
  11000: "DuplicateKey",
  121: "DocumentValidationFailure",
  64: "WriteConcernFailed",
  112: "WriteConflict",
  50: "MaxTimeMSExpired",
  13: "Unauthorized"
}

const commandPattern = /^[A-Za-z][A-Za-z0-9_]{0,63}$/
const collectionPattern = /^[A-Za-z0-9_.-]{1,64}$/

/** The collection a command works on, if it names one. */
const collectionOf = (event: CommandStartedEvent): string | undefined => {
  const value = event.commandName === "getMore"
    ? event.command.collection
    : collectionCommands.has(event.commandName)
    ? event.command[event.commandName]
    : undefined
  return typeof value === "string" ? value : undefined
}

/** `host` and `port` of a driver address, `host:port` or `[v6]:port`. */
const serverOf = (address: string): Attributes => {
  const match = /^\[?(.*?)\]?:(\d+)$/.exec(address)
  return match === null
    ? { "server.address": address }
    : { "server.address": match[1], "server.port": Number(match[2]) }
}

/** Why a command failed: a low-cardinality type and the server's error code, if any. */
interface Failure {
  readonly type: string
  readonly code: number | undefined
}

const failureOf = (error: object, fallback: string): Failure => {
  const { code, codeName } = error as { readonly code?: unknown; readonly codeName?: unknown }
  const name = typeof codeName === "string" && codeName !== "" ? codeName : undefined
  const number = typeof code === "number" ? code : undefined
  return { type: name ?? (number === undefined ? undefined : codeNames[number]) ?? fallback, code: number }
}

/** The failure a reply reports although the command ran: write errors or a write concern error. */
const replyFailure = (reply: unknown): Failure | undefined => {
  if (typeof reply !== "object" || reply === null) return undefined
  const { writeErrors, writeConcernError } = reply as Document
  if (Array.isArray(writeErrors) && writeErrors.length > 0) return failureOf(writeErrors[0] ?? {}, "WriteError")
  return typeof writeConcernError === "object" && writeConcernError !== null
    ? failureOf(writeConcernError, "WriteConcernError")
    : undefined
}

const commandLabel = (name: string): string => commandPattern.test(name) ? name : otherLabel

/** A command's key, the same in its started and finished events. */
const commandKey = (event: { readonly address: string; readonly connectionId?: string | number; requestId: number }) =>
  `${event.address}/${event.connectionId}/${event.requestId}`

const exemplarOf = (span: Span): ExemplarSpan => {
  const { traceId, spanId, traceFlags } = span.spanContext()
  return { traceId, spanId, sampled: span.isRecording() && (traceFlags & TraceFlags.SAMPLED) !== 0 }
}

/** Spans and metrics of the {@link Mongo} client's commands and pool until the scope closes. */
export const make: Effect.Effect<void, never, Mongo | Metrics | Scope.Scope> = Effect.gen(function*() {
  const mongo = yield* Mongo
  const metrics = yield* Metrics
  const commandDuration = metrics.histogram({
    name: "mongodb_command_duration_seconds",
    help: "MongoDB driver command latency, by command, collection and outcome.",
    labelNames: ["command", "collection", "outcome"]
  })
  const poolConnections = metrics.gauge({
    name: "mongodb_pool_connections",
    help: "MongoDB driver pool connections, by state (checked_out, available, pending).",
    labelNames: ["state"]
  })
  const inFlight = new Map<string, { readonly span: Span; readonly collection: string }>()
  const collections = new Set<string>()

  const collectionLabel = (name: string | undefined) => {
    if (name === undefined) return ""
    if (!collectionPattern.test(name) || (!collections.has(name) && collections.size >= maxCollections)) {
      return otherLabel
    }
    collections.add(name)
    return name
  }
  const started = (event: CommandStartedEvent) => {
    if (inFlight.size >= maxInFlight) return
    const collection = collectionOf(event)
    const target = collection === undefined ? event.databaseName : `${event.databaseName}.${collection}`
    const span = trace.getTracer(tracerName).startSpan(`${event.commandName} ${target}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "db.system.name": "mongodb",
        "db.operation.name": event.commandName,
        "db.namespace": event.databaseName,
        ...(collection === undefined ? {} : { "db.collection.name": collection }),
        ...serverOf(event.address)
      }
    }, context.active())
    inFlight.set(commandKey(event), { span, collection: collectionLabel(collection) })
  }

  const finished = (event: CommandSucceededEvent | CommandFailedEvent, failure: Failure | undefined) => {
    const key = commandKey(event)
    const command = inFlight.get(key)
    inFlight.delete(key)
    if (command !== undefined && failure !== undefined) {
      command.span.setAttribute("error.type", failure.type)
      if (failure.code !== undefined) command.span.setAttribute("db.response.status_code", String(failure.code))
      command.span.setStatus({ code: SpanStatusCode.ERROR, message: failure.type })
    }
    const exemplar = command === undefined ? undefined : exemplarOf(command.span)
    command?.span.end()
    const labels = { command: commandLabel(event.commandName), collection: command?.collection ?? otherLabel }
    const seconds = event.duration / 1000
    const outcome = failure === undefined ? "success" : "failure"
    observeWithSpan(commandDuration, { ...labels, outcome }, seconds, exemplar)
  }

  const pool = () => {
    const counts = mongo.connections()
    for (const state of poolStates) poolConnections.set({ state }, counts[state])
  }

  yield* Effect.acquireRelease(
    Effect.sync(() => {
      pool()
      return listen(mongo.client, {
        commandStarted: started,
        commandSucceeded: (event) => finished(event, replyFailure(event.reply)),
        commandFailed: (event) => finished(event, failureOf(event.failure, event.failure.name)),
        ...Object.fromEntries(poolEvents.map((event) => [event, pool]))
      })
    }),
    (detach) =>
      Effect.sync(() => {
        detach()
        for (const { span } of inFlight.values()) span.end()
        inFlight.clear()
      })
  )
})

/** {@link make} as a layer: the client's commands and pool observed while the layer is in use. */
export const layer: Layer.Layer<never, never, Mongo | Metrics> = Layer.effectDiscard(make)
