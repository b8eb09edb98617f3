/**
 * The program's logger: each line inside a span carries its trace (`trace_id`, `span_id`, `trace_flags`) beside
 * `service.name`, the level, the message, annotations and log spans; JSON lines or Effect's pretty format by
 * `LOG_FORMAT` (JSON off a terminal), the minimum level by `LOG_LEVEL`, bad values refused in one line; no credential,
 * token or memo in any line or span event; and `Testing.logRecords` saying which span a line belongs to.
 */
import { assert, describe, it } from "@effect/vitest"
import { Cause, Console, Effect, Layer, Redacted } from "effect"
import { DagMetrics, Poh, Presence, Storage, Transaction } from "../src/dag/index.ts"
import { Logging, Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import { recordingConsole } from "./support/Console.ts"
import { environment } from "./support/Environment.ts"

/** Runs `self` with `logging`, under ObservabilityTest's tracer; what it returns and the lines written. */
const logged = <A, E>(
  self: Effect.Effect<A, E, Metrics.Metrics | Testing.TestSpans | Testing.TestLogs>,
  logging: Layer.Layer<never, unknown, Metrics.Metrics>) =>
  Effect.gen(function*() {
    const { console, lines } = recordingConsole()
    const result = yield* self.pipe(
      Effect.provide(logging),
      Effect.provide(ObservabilityTest),
      Effect.provideService(Console.Console, console)
    )
    return { result, lines }
  })

/** `env` as the only configuration. */

const configured = (env: Record<string, string>) =>
  Logging.layerConfig("greeter").pipe(Layer.provide(environment(env)))

/** A log line in a span with an annotation and a log span; the span. */
const lookUp = Effect.gen(function*() {
  yield* Effect.log("starting")
  return yield* Effect.gen(function*() {
    yield* Effect.log("looking up ada").pipe(Effect.annotateLogs({ user: "ada", attempt: 2 }), Effect.withLogSpan("lookup"))
    return yield* Effect.currentSpan
  }).pipe(Effect.withSpan("GET /users/:name"))
})

describe("Logging", () => {
  it.effect("JSON lines: the trace inside a span, service.name, level, message, annotations, log spans", () =>
    Effect.gen(function*() {
      const { lines, result: span } = yield* logged(lookUp, Logging.layer({ serviceName: "greeter", format: "json" }))
      const [outside, inside] = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
      assert.strictEqual(lines.length, 2)
      assert.deepStrictEqual(Object.keys(outside!), ["timestamp", "level", "message", "service.name", "fiberId"])
      assert.include(outside, { level: "INFO", message: "starting", "service.name": "greeter" })
      assert.match(String(outside!["timestamp"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
      assert.include(inside, {
        level: "INFO",
        message: "looking up ada",
        "service.name": "greeter",
        trace_id: span.traceId,
        span_id: span.spanId,
        trace_flags: "01"
      })
      assert.deepStrictEqual(inside!["annotations"], { user: "ada", attempt: 2 })
      const odd = yield* logged(
        Effect.log("odd values").pipe(Effect.annotateLogs({ at: new Date(0), big: 10n, fn: () => 1, nested: { a: [1] } })),
        Logging.layer({ format: "json" })
      )
      assert.deepStrictEqual(JSON.parse(odd.lines[0]!).annotations, {
        at: "1970-01-01T00:00:00.000Z",
        big: "10n",
        fn: "() => 1",
        nested: { a: [1] }
      })
      assert.deepStrictEqual(Object.keys(inside!["spans"] as object), ["lookup"])
    }))

  it.effect("pretty: Effect's own format, with service.name and the trace as annotations", () =>
    Effect.gen(function*() {
      const { lines, result: span } = yield* logged(lookUp, Logging.layer({ serviceName: "greeter", format: "pretty" }))
      assert.match(lines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(#\d+\): starting$/)
      assert.strictEqual(lines[1], "service.name: greeter")
      assert.match(lines[2]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(#\d+\) lookup=\d+ms: looking up ada$/)
      assert.deepStrictEqual(lines.slice(3), [
        "user: ada",
        "attempt: 2",
        "service.name: greeter",
        `trace_id: ${span.traceId}`,
        `span_id: ${span.spanId}`,
        "trace_flags: 01"
      ])
    }))

  it.effect("LOG_FORMAT picks the format, JSON off a terminal when unset; LOG_LEVEL the minimum level", () =>
    Effect.gen(function*() {
      const program = Effect.logDebug("debugging").pipe(Effect.andThen(Effect.logInfo("informing")), Effect.andThen(Effect.logWarning("warning")))
      const json = (yield* logged(program, configured({}))).lines
      assert.deepStrictEqual(json.map((line) => JSON.parse(line).message), ["informing", "warning"])
      const pretty = (yield* logged(program, configured({ LOG_FORMAT: "PRETTY", LOG_LEVEL: "warn" }))).lines
      assert.match(pretty[0]!, /^\[.*\] WARN \(#\d+\): warning$/)
      assert.strictEqual(pretty.length, 2)
      const debug = (yield* logged(program, configured({ LOG_FORMAT: "json", LOG_LEVEL: "Debug" }))).lines
      assert.deepStrictEqual(debug.map((line) => JSON.parse(line).level), ["DEBUG", "INFO", "WARN"])
      const tty = Object.getOwnPropertyDescriptor(process.stdout, "isTTY")
      Object.defineProperty(process.stdout, "isTTY", { value: true, configurable: true })
      const onTerminal = Logging.defaultFormat()
      if (tty === undefined) delete (process.stdout as { isTTY?: boolean }).isTTY
      else Object.defineProperty(process.stdout, "isTTY", tty)
      assert.strictEqual(onTerminal, "pretty")
      assert.strictEqual(Logging.defaultFormat(), "json")
    }))

  it.effect.each([
    ["LOG_LEVEL", "loud", "one of trace, debug, info, warn, error, fatal, all, none"],
    ["LOG_FORMAT", "xml", "json or pretty"],
    ["OTEL_LOGS_EXPORTER", "zipkin", "otlp, console or none (or several, comma-separated)"]
  ])("%s=%s is refused with one line", ([variable, value, expected]) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(configured({ [variable]: value })))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.stack, `InvalidConfig: ${variable}="${value}" is not valid: expected ${expected}`)
    }).pipe(Effect.scoped, Effect.provide(Metrics.layerTest)))

  it.effect("no credential, token or memo reaches a line or a span event, in either format", () =>
    Effect.gen(function*() {
      const secrets = ["hunter2", "tok-s3cret", "memo-s3cret"]
      const leaky = Effect.gen(function*() {
        yield* Effect.logError(
          "cannot reach mongodb://dag:hunter2@db.example:27017/dag",
          { cache: "redis://:hunter2@cache:6379" },
          Cause.fail(new Error("getaddrinfo ENOTFOUND for mongodb+srv://dag:hunter2@db.example/dag"))
        ).pipe(Effect.annotateLogs({ token: Redacted.make("tok-s3cret"), upstream: "https://ci:hunter2@example.com/x" }))
        const tx = new Transaction.Transaction({ from: "alice", to: "bob", amount: 5, region: "eu-central", memo: "memo-s3cret" })
        yield* Transaction.commit(tx).pipe(Effect.withSpan("POST /tx"))
      }).pipe(
        Effect.withSpan("leaky"),
        Effect.andThen(Testing.finishedSpans),
        Effect.provide(Layer.mergeAll(Poh.layerInProcess(), Storage.layerMemory, Presence.layerStatic({ nodes: [], failureRatio: 0 }))),
        Effect.provide(DagMetrics.layer())
      )
      for (const format of ["json", "pretty"] as const) {
        const { lines, result: spans } = yield* logged(leaky, Logging.layer({ serviceName: "dag", format, minimumLevel: "All" }))
        const printed = lines.join("\n")
        assert.include(printed, "mongodb://***@db.example:27017/dag")
        assert.include(printed, "<redacted>")
        const events = JSON.stringify(spans.map((span) => [span.attributes, span.events]))
        assert.include(events, "cannot reach mongodb://***@db.example")
        for (const secret of secrets) {
          assert.notInclude(printed, secret, `${format} lines`)
          assert.notInclude(events, secret, "span attributes and events")
        }
      }
    }))

  it.effect("Testing.logRecords: each record names the span it was written in", () =>
    Effect.gen(function*() {
      const span = yield* lookUp
      const [outside, inside] = yield* Testing.logRecords
      assert.deepStrictEqual([outside!.message, outside!.traceId, outside!.spanId], ["starting", undefined, undefined])
      assert.deepStrictEqual([inside!.message, inside!.traceId, inside!.spanId], ["looking up ada", span.traceId, span.spanId])
      assert.strictEqual(inside!.traceFlags, 1)
      assert.deepStrictEqual(inside!.annotations, { user: "ada", attempt: 2 })
      const [finished] = yield* Testing.finishedSpans
      assert.strictEqual(finished!.spanContext().spanId, inside!.spanId, "the line belongs to the finished span")
    }).pipe(Effect.provide(ObservabilityTest)))
})
