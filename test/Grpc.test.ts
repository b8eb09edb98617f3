import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind, SpanStatusCode } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Clock, Context, type Duration, Effect, Exit, Fiber, Layer, Schedule, Schema, Scope } from "effect"
import { Grpc, Metrics, ObservabilityTest, Poh, PohGrpc, Testing } from "../src/index.ts"

const service = { service: "poh.PohService", method: "Request" }

/** A PoH node on a free loopback port whose sequencer answers after `delay`, in a span `slow`. */
const Node = (options: { readonly delay?: number; readonly shutdownTimeout?: Duration.Input } = {}) =>
  PohGrpc.layerServer({
    host: "127.0.0.1",
    port: 0,
    ...(options.shutdownTimeout === undefined ? {} : { shutdownTimeout: options.shutdownTimeout })
  }).pipe(Layer.provide(
    options.delay === undefined ? Poh.PohSequencer.layer("poh-test") : Layer.effect(
      Poh.PohSequencer,
      Effect.gen(function*() {
        const inner = yield* Poh.PohSequencer
        return Poh.PohSequencer.of({
          sequence: (txId) => Effect.delay(inner.sequence(txId), options.delay!).pipe(Effect.withSpan("slow"))
        })
      })
    ).pipe(Layer.provide(Poh.PohSequencer.layer("poh-test")))
  ))

/** The sending DAG's PoH workflow over gRPC to the node at `address`. */
const Sender = (options: Poh.Options, address: string) =>
  Poh.Poh.layer(options).pipe(Layer.provide(PohGrpc.layerClient({ address })))

/** A node and a sender asking it, both observed by one `ObservabilityTest`. */
const Network = (options: Poh.Options = {}, node = Node()) =>
  Layer.unwrap(Effect.gen(function*() {
    const { address } = yield* PohGrpc.PohNode
    return Sender(options, address)
  })).pipe(
    Layer.provideMerge(node),
    Layer.provideMerge(ObservabilityTest)
  )

const finished = Testing.TestSpans.use((spans) => spans.finished)

const byKind = (spans: ReadonlyArray<ReadableSpan>, kind: SpanKind) => spans.filter((span) => span.kind === kind)

/** The address of a PoH node that has stopped: nothing listens there any more. */
const stoppedNode = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const { address } = Context.get(yield* Layer.buildWithScope(Node(), scope), PohGrpc.PohNode)
  yield* Scope.close(scope, Exit.void)
  return address
})

/** A grpc-js client of its own: instrumented only when `metrics` is given. */
const rawClient = (address: string, metrics?: Metrics.Metrics["Service"]) =>
  Effect.acquireRelease(
    Effect.sync(() =>
      new grpc.Client(address, grpc.credentials.createInsecure(), {
        interceptors: metrics === undefined ? [] : [Grpc.clientInterceptor(metrics, { address })]
      })
    ),
    (client) => Effect.sync(() => client.close())
  )

/** One raw `Request` call: its response, or the status it failed with. */
const rawCall = (client: grpc.Client, request: object, metadata = new grpc.Metadata(), deadlineMillis = 5000) =>
  Effect.callback<Record<string, unknown>, grpc.ServiceError>((resume) => {
    const method = PohGrpc.loadService()["Request"]!
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      { deadline: Date.now() + deadlineMillis },
      (error, response) => resume(error === null ? Effect.succeed(response) : Effect.fail(error))
    )
    return Effect.sync(() => call.cancel())
  })

/** Polls `value` until `predicate` holds, for at most 2 seconds; the last value either way. */
const settled = <A, E, R>(value: Effect.Effect<A, E, R>, predicate: (a: A) => boolean) =>
  value.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: predicate }),
    Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => value })
  )

describe("PoH over gRPC", () => {
  it.live("one request is one trace: Poh.request → client call → server call → Poh.sequence", () =>
    Effect.gen(function*() {
      const node = yield* PohGrpc.PohNode
      const poh = yield* Poh.Poh
      const ack = yield* poh.request({ txId: "tx-1", region: "eu-central" })
      assert.strictEqual(ack.seq, 1)
      assert.strictEqual(ack.node, "poh-test")
      assert.match(ack.hash, /^[0-9a-f]{64}$/)
      const spans = yield* finished
      assert.deepStrictEqual(Testing.formatTree(Testing.spanTree(spans)), [
        "Poh.request",
        "  poh.PohService/Request",
        "    poh.PohService/Request",
        "      Poh.sequence"
      ])
      assert.strictEqual(new Set(spans.map((span) => span.spanContext().traceId)).size, 1)
      const [client] = byKind(spans, SpanKind.CLIENT)
      const [server] = byKind(spans, SpanKind.SERVER)
      assert.strictEqual(byKind(spans, SpanKind.CLIENT).length, 1)
      assert.strictEqual(byKind(spans, SpanKind.SERVER).length, 1)
      for (const span of [client!, server!]) {
        assert.strictEqual(span.name, "poh.PohService/Request")
        assert.deepInclude(span.attributes, {
          "rpc.system": "grpc",
          "rpc.service": "poh.PohService",
          "rpc.method": "Request",
          "rpc.grpc.status_code": 0,
          "server.address": "127.0.0.1",
          "server.port": node.port
        })
        assert.strictEqual(span.status.code, SpanStatusCode.UNSET)
      }
      // The server continued the trace it read from the metadata, not a context of its own process.
      assert.strictEqual(server!.parentSpanContext?.spanId, client!.spanContext().spanId)
      assert.isTrue(server!.parentSpanContext?.isRemote)
      const value = Testing.metricValue
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count", { ...service, code: "OK" }), 1)
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), 1)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", { ...service, code: "OK" }), 1)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count"), 1)
      assert.strictEqual(yield* value("poh_requests_total", { region: "eu-central", status: "ok" }), 1)
      assert.strictEqual(yield* value("poh_requests_total"), 1)
      assert.strictEqual(yield* value("poh_ack_total", { region: "eu-central" }), 1)
      const text = yield* Metrics.Metrics.use((metrics) => metrics.render("openmetrics"))
      const exemplars = [["grpc_method_latency_seconds", server!], ["grpc_client_latency_seconds", client!]] as const
      for (const [family, span] of exemplars) {
        const exemplar = `# {trace_id="${span.spanContext().traceId}",span_id="${span.spanContext().spanId}"}`
        assert.isTrue(
          text.split("\n").some((line) => line.startsWith(`${family}_bucket{`) && line.includes(exemplar)),
          `${family} has the ${span.kind === SpanKind.SERVER ? "server" : "client"} span as exemplar`
        )
      }
    }).pipe(Effect.provide(Network())))

  it.live("a malformed traceparent starts a new trace at the server and the call still succeeds", () =>
    Effect.gen(function*() {
      // Bound inside a span: the server's own async context must not become the parent of a call.
      const built = yield* Layer.build(Node()).pipe(Effect.withSpan("startup"))
      const { address } = Context.get(built, PohGrpc.PohNode)
      const client = yield* rawClient(address)
      const metadata = new grpc.Metadata()
      metadata.set("traceparent", "00-not-a-trace-id-01")
      metadata.set("tracestate", "=;=")
      const { response, caller } = yield* Effect.gen(function*() {
        const span = yield* Effect.currentSpan
        return { response: yield* rawCall(client, { txId: "tx-1", region: "eu-central" }, metadata), caller: span }
      }).pipe(Effect.withSpan("caller"))
      assert.strictEqual(response["seq"], 1)
      const spans = yield* finished
      const [server] = byKind(spans, SpanKind.SERVER)
      assert.isDefined(server)
      assert.isUndefined(server!.parentSpanContext)
      assert.match(server!.spanContext().traceId, /^(?!0{32})[0-9a-f]{32}$/)
      assert.notStrictEqual(server!.spanContext().traceId, caller.traceId)
      const sequence = spans.find((span) => span.name === "Poh.sequence")
      assert.strictEqual(sequence?.parentSpanContext?.spanId, server!.spanContext().spanId)
      assert.strictEqual(sequence?.spanContext().traceId, server!.spanContext().traceId)
      assert.strictEqual(yield* Testing.metricValue("grpc_method_latency_seconds_count", { code: "OK" }), 1)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("invalid request fields are answered INVALID_ARGUMENT without reaching the sequencer", () =>
    Effect.gen(function*() {
      const { address } = yield* PohGrpc.PohNode
      const metrics = yield* Metrics.Metrics
      const client = yield* rawClient(address, metrics)
      const invalid = [
        { txId: "", region: "eu-central" },
        { txId: "tx-1", region: "" },
        { region: "eu-central" },
        { txId: "x".repeat(129), region: "eu-central" },
        { txId: "tx-1", region: "r".repeat(100_000) }
      ]
      for (const request of invalid) {
        const error = yield* Effect.flip(rawCall(client, request))
        assert.strictEqual(error.code, grpc.status.INVALID_ARGUMENT, JSON.stringify(request).slice(0, 80))
        assert.isAtMost(error.details.length, 256)
      }
      const value = Testing.metricValue
      const n = invalid.length
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count", { ...service, code: "INVALID_ARGUMENT" }), n)
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), n)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", { ...service, code: "INVALID_ARGUMENT" }), n)
      const spans = yield* finished
      assert.isFalse(spans.some((span) => span.name === "Poh.sequence"))
      const servers = byKind(spans, SpanKind.SERVER)
      assert.strictEqual(servers.length, n)
      for (const span of servers) {
        assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
        assert.strictEqual(span.attributes["rpc.grpc.status_code"], grpc.status.INVALID_ARGUMENT)
        assert.strictEqual(span.attributes["error.type"], "INVALID_ARGUMENT")
      }
      // A valid request still goes through.
      assert.strictEqual((yield* rawCall(client, { txId: "tx-1", region: "eu-central" }))["seq"], 1)
    }).pipe(Effect.scoped, Effect.provide(Network())))

  it.live.each([
    ["the default policy", 3, undefined],
    ["no retries", 1, Schedule.recurs(0)],
    ["4 retries", 5, Schedule.spaced("5 millis").pipe(Schedule.upTo({ times: 4 }))]
  ] as const)("with the node down, PohUnavailable after %s: %s attempts, each counted", ([, attempts, retry]) =>
    Effect.gen(function*() {
      const address = yield* stoppedNode
      const error = yield* Effect.flip(
        Poh.Poh.use((poh) => poh.request({ txId: "tx-1", region: "us-east" })).pipe(
          Effect.provide(Sender(retry === undefined ? {} : { retry }, address))
        )
      )
      assert.strictEqual(error._tag, "PohUnavailable")
      assert.include(error.message, "UNAVAILABLE")
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "us-east", status: "error" }), attempts)
      assert.strictEqual(yield* value("poh_requests_total"), attempts)
      assert.strictEqual(yield* value("poh_ack_total"), 0)
      const unavailable = { ...service, code: "UNAVAILABLE" }
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", unavailable), attempts)
      const spans = yield* finished
      assert.deepStrictEqual(
        Testing.formatTree(Testing.spanTree(spans)),
        ["Poh.request", ...Array.from({ length: attempts }, () => "  poh.PohService/Request")]
      )
      const request = spans.find((span) => span.name === "Poh.request")
      assert.strictEqual(request?.status.code, SpanStatusCode.ERROR)
      assert.strictEqual(request?.attributes["error.type"], "PohUnavailable")
      for (const span of byKind(spans, SpanKind.CLIENT)) {
        assert.strictEqual(span.attributes["error.type"], "UNAVAILABLE")
        assert.strictEqual(span.status.code, SpanStatusCode.ERROR)
      }
    }).pipe(Effect.provide(ObservabilityTest)))

  it.live("a node slower than the timeout gives PohTimeout, counted once as timeout, and cancels the call", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        Poh.Poh.use((poh) => poh.request({ txId: "tx-slow", region: "ap-south" }))
      )
      assert.strictEqual(error._tag, "PohTimeout")
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "ap-south", status: "timeout" }), 1)
      assert.strictEqual(yield* value("poh_requests_total"), 1)
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", { ...service, code: "CANCELLED" }), 1)
      const cancelled = { ...service, code: "CANCELLED" }
      assert.strictEqual(
        yield* settled(value("grpc_method_latency_seconds_count", cancelled), (count) => count > 0),
        1
      )
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), 1)
      // The client's cancel reached the handler: its fiber was interrupted well before the sequencer answered.
      const slow = yield* settled(
        Effect.map(finished, (spans) => spans.find((span) => span.name === "slow")),
        (span) => span !== undefined
      )
      assert.strictEqual(slow?.attributes["effect.fiber.interrupted"], true)
      assert.isBelow(slow!.duration[0] * 1000 + slow!.duration[1] / 1e6, 900)
    }).pipe(Effect.provide(Network({ timeout: "100 millis" }, Node({ delay: 1000 })))))

  it.live("a call past its deadline is DEADLINE_EXCEEDED on both sides", () =>
    Effect.gen(function*() {
      const { address } = yield* PohGrpc.PohNode
      const client = yield* rawClient(address, yield* Metrics.Metrics)
      const request = { txId: "tx-1", region: "eu-central" }
      const error = yield* Effect.flip(rawCall(client, request, new grpc.Metadata(), 100))
      assert.strictEqual(error.code, grpc.status.DEADLINE_EXCEEDED)
      const value = Testing.metricValue
      const expired = { ...service, code: "DEADLINE_EXCEEDED" }
      assert.strictEqual(yield* value("grpc_client_latency_seconds_count", expired), 1)
      assert.strictEqual(yield* settled(value("grpc_method_latency_seconds_count", expired), (n) => n > 0), 1)
      assert.strictEqual(yield* value("grpc_method_latency_seconds_count"), 1)
      const [server] = byKind(yield* finished, SpanKind.SERVER)
      assert.strictEqual(server?.attributes["rpc.grpc.status_code"], grpc.status.DEADLINE_EXCEEDED)
    }).pipe(Effect.scoped, Effect.provide(Network({}, Node({ delay: 1000 })))))

  it.live("release waits for a call in flight, then refuses new ones", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { address } = Context.get(yield* Layer.buildWithScope(Node({ delay: 300 }), scope), PohGrpc.PohNode)
      const client = yield* rawClient(address)
      const inFlight = yield* Effect.forkChild(
        rawCall(client, { txId: "tx-1", region: "eu-central" }).pipe(Effect.andThen(Clock.currentTimeMillis))
      )
      yield* Effect.sleep("100 millis")
      yield* Scope.close(scope, Exit.void)
      const closedAt = yield* Clock.currentTimeMillis
      const answeredAt = yield* Fiber.join(inFlight)
      assert.isAtMost(answeredAt, closedAt)
      const refused = yield* Effect.flip(rawCall(client, { txId: "tx-2", region: "eu-central" }))
      assert.strictEqual(refused.code, grpc.status.UNAVAILABLE)
      assert.strictEqual(yield* Testing.metricValue("grpc_method_latency_seconds_count", { code: "OK" }), 1)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("a call outliving the shutdown timeout is cancelled and release ends in time", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const built = yield* Layer.buildWithScope(Node({ delay: 5000, shutdownTimeout: "200 millis" }), scope)
      const client = yield* rawClient(Context.get(built, PohGrpc.PohNode).address)
      const inFlight = yield* Effect.forkChild(Effect.flip(rawCall(client, { txId: "tx-1", region: "eu-central" })))
      yield* Effect.sleep("100 millis")
      const started = yield* Clock.currentTimeMillis
      yield* Scope.close(scope, Exit.void)
      assert.isBelow((yield* Clock.currentTimeMillis) - started, 1000)
      const error = yield* Fiber.join(inFlight)
      assert.oneOf(error.code, [grpc.status.CANCELLED, grpc.status.UNAVAILABLE])
      assert.strictEqual(
        yield* settled(Testing.metricValue("grpc_method_latency_seconds_count", { code: "CANCELLED" }), (n) => n > 0),
        1
      )
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))
})

class Refused extends Schema.TaggedError<Refused>()("Refused", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/** A server for `poh.PohService` whose handler fails, dies or is interrupted as `txId` says. */
const FailingServer = Effect.gen(function*() {
  const metrics = yield* Metrics.Metrics
  const request = yield* Grpc.unary({
    request: PohGrpc.PohRequestMessage,
    handler: ({ txId }): Effect.Effect<Poh.PohAck, Refused> =>
      txId === "fail"
        ? Effect.fail(new Refused({ reason: "r".repeat(10_000) }))
        : txId === "die"
        ? Effect.die(new Error("secret internals"))
        : Effect.interrupt,
    status: (error) => error._tag === "Refused" ? grpc.status.PERMISSION_DENIED : grpc.status.UNKNOWN
  })
  const server = yield* Effect.acquireRelease(
    Effect.sync(() => new grpc.Server({ interceptors: [Grpc.serverInterceptor(metrics)] })),
    (started) => Effect.sync(() => started.forceShutdown())
  )
  server.addService(PohGrpc.loadService(), { Request: request })
  const port = yield* Effect.callback<number>((resume) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (_, bound) =>
      resume(Effect.succeed(bound))
    )
  )
  return `127.0.0.1:${port}`
})

describe("Poh.layer retries", () => {
  it.live("an attempt that fails then one that is acknowledged count error once and ok once", () =>
    Effect.gen(function*() {
      const ack = yield* Poh.Poh.use((poh) => poh.request({ txId: "tx-1", region: "eu-west-9" }))
      assert.strictEqual(ack.seq, 1)
      const value = Testing.metricValue
      assert.strictEqual(yield* value("poh_requests_total", { region: "other", status: "error" }), 1)
      assert.strictEqual(yield* value("poh_requests_total", { region: "other", status: "ok" }), 1)
      assert.strictEqual(yield* value("poh_ack_total"), 1)
      assert.strictEqual(yield* value("poh_approval_latency_seconds_count"), 1)
      // The approval latency runs from the first attempt: it includes the 50 ms backoff.
      assert.isAtLeast(yield* value("poh_approval_latency_seconds_sum"), 0.05)
    }).pipe(Effect.provide(Layer.unwrap(Effect.sync(() => {
      let attempts = 0
      const flaky = Layer.effect(
        Poh.PohClient,
        Effect.gen(function*() {
          const sequencer = yield* Poh.PohSequencer
          return Poh.PohClient.of({
            stamp: (request) =>
              Effect.suspend(() =>
                attempts++ === 0
                  ? Effect.fail(new Poh.PohUnavailable({ region: request.region, reason: "UNAVAILABLE: first" }))
                  : sequencer.sequence(request.txId)
              )
          })
        })
      ).pipe(Layer.provide(Poh.PohSequencer.layer("poh-test")))
      return Poh.Poh.layer().pipe(Layer.provide(flaky), Layer.provideMerge(ObservabilityTest))
    })))))
})

describe("Grpc.unary", () => {
  it.live("maps a typed failure through status, a defect to INTERNAL and an interruption to CANCELLED", () =>
    Effect.gen(function*() {
      const address = yield* FailingServer
      const client = yield* rawClient(address)
      const failed = yield* Effect.flip(rawCall(client, { txId: "fail", region: "eu-central" }))
      assert.strictEqual(failed.code, grpc.status.PERMISSION_DENIED)
      assert.isAtMost(failed.details.length, 256)
      assert.isTrue(failed.details.startsWith("rrrr"))
      const died = yield* Effect.flip(rawCall(client, { txId: "die", region: "eu-central" }))
      assert.strictEqual(died.code, grpc.status.INTERNAL)
      assert.notInclude(died.details, "secret")
      const interrupted = yield* Effect.flip(rawCall(client, { txId: "stop", region: "eu-central" }))
      assert.strictEqual(interrupted.code, grpc.status.CANCELLED)
      const value = Testing.metricValue
      for (const code of ["PERMISSION_DENIED", "INTERNAL", "CANCELLED"]) {
        assert.strictEqual(yield* value("grpc_method_latency_seconds_count", { ...service, code }), 1, code)
      }
      const servers = byKind(yield* finished, SpanKind.SERVER)
      assert.deepStrictEqual(servers.map((span) => span.attributes["error.type"]), [
        "PERMISSION_DENIED",
        "INTERNAL",
        "CANCELLED"
      ])
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))
})

describe("Grpc", () => {
  it("names a method by its path, and anything else other", () => {
    assert.deepStrictEqual(Grpc.methodName("/poh.PohService/Request"), {
      service: "poh.PohService",
      method: "Request",
      name: "poh.PohService/Request"
    })
    for (const path of ["", "/", "poh.PohService/Request", "/a/b/c", `/${"s".repeat(200)}/M`, "/svc/{x}"]) {
      assert.deepStrictEqual(Grpc.methodName(path), { service: "other", method: "other", name: "other/other" })
    }
  })

  it("reads server.address and server.port from a target", () => {
    const cases = [
      ["127.0.0.1:50051", { "server.address": "127.0.0.1", "server.port": 50051 }],
      ["[::1]:7", { "server.address": "::1", "server.port": 7 }],
      ["dns:///poh.local:443", { "server.address": "poh.local", "server.port": 443 }],
      ["poh.local", {}]
    ] as const
    for (const [target, attributes] of cases) assert.deepStrictEqual(Grpc.serverAttributes(target), attributes)
  })

  it("names status codes, and an undefined code UNKNOWN", () => {
    assert.strictEqual(Grpc.statusName(grpc.status.OK), "OK")
    assert.strictEqual(Grpc.statusName(grpc.status.INVALID_ARGUMENT), "INVALID_ARGUMENT")
    assert.strictEqual(Grpc.statusName(99 as grpc.status), "UNKNOWN")
  })
})

/** One `Request` call carrying `bytes` as its message, as they are: what the node answers. */
const rawBytesCall = (client: grpc.Client, bytes: Buffer, metadata = new grpc.Metadata()) =>
  Effect.callback<Record<string, unknown>, grpc.ServiceError>((resume) => {
    const method = PohGrpc.loadService()["Request"]!
    const call = client.makeUnaryRequest(
      method.path,
      (message: Buffer) => message,
      method.responseDeserialize,
      bytes,
      metadata,
      { deadline: Date.now() + 5000 },
      (error, response) => resume(error === null ? Effect.succeed(response) : Effect.fail(error))
    )
    return Effect.sync(() => call.cancel())
  })

/** One length-delimited protobuf field of under 128 bytes: its tag byte, its length, its bytes. */
const field = (tag: number, value: Buffer | string) => {
  const bytes = Buffer.from(value)
  return Buffer.concat([Buffer.from([tag, bytes.length]), bytes])
}

/** A `PohRequest` on the wire: field 1 `tx_id`, field 2 `region`. */
const encoded = (txId: Buffer | string, region: Buffer | string) =>
  Buffer.concat([field(0x0a, txId), field(0x12, region)])

describe("the PoH node under hostile input", () => {
  const unreadable = Buffer.from("deadbeefcafebabe0123456789", "hex")
  const notUtf8 = encoded(Buffer.from([0xff, 0xfe, 0x41]), "eu-central")
  const unknownField = Buffer.concat([encoded("tx-2", "eu-central"), field(0x1a, "A")])
  const varintTxId = Buffer.concat([Buffer.from([0x08, 0x05]), field(0x12, "eu-central")])
  const { INTERNAL, INVALID_ARGUMENT, OK, RESOURCE_EXHAUSTED } = grpc.status
  const cases: ReadonlyArray<readonly [string, Buffer, grpc.status]> = [
    ["bytes that are no PohRequest", unreadable, INTERNAL],
    ["a message over grpc-js's 4 MiB limit", Buffer.alloc(5 * 1024 * 1024, 0x41), RESOURCE_EXHAUSTED],
    ["a length past the end", Buffer.from([0x0a, 0xff, 0x61]), INVALID_ARGUMENT],
    ["an undefined wire type", Buffer.from([0x0f, 0x01]), INVALID_ARGUMENT],
    ["tx_id sent as a varint", varintTxId, INVALID_ARGUMENT],
    ["no fields at all", Buffer.alloc(0), INVALID_ARGUMENT],
    ["tx_id not UTF-8 (decoded with replacement characters)", notUtf8, OK],
    ["an unknown field (ignored, as proto3 says)", unknownField, OK]
  ]

  /** The status each case was answered with, by name. */
  const answered = (client: grpc.Client, bytes: Buffer) =>
    Effect.match(rawBytesCall(client, bytes), {
      onSuccess: () => ({ code: OK, details: "" }),
      onFailure: (error) => ({ code: error.code, details: error.details })
    })

  it.live("raw messages: answered with the status grpc-js or the schema gives, traced and counted as such", () =>
    Effect.gen(function*() {
      const { address } = yield* PohGrpc.PohNode
      const client = yield* rawClient(address)
      for (const [name, bytes, code] of cases) {
        const answer = yield* answered(client, bytes)
        assert.strictEqual(answer.code, code, name)
        if (code === INTERNAL) assert.strictEqual(answer.details, "Error deserializing request")
      }
      const expected: Record<string, number> = {}
      for (const [, , code] of cases) expected[Grpc.statusName(code)] = (expected[Grpc.statusName(code)] ?? 0) + 1
      const counts = Effect.forEach(Object.keys(expected), (code) =>
        Effect.map(Testing.metricValue("grpc_method_latency_seconds_count", { ...service, code }), (n) => [code, n]))
      const counted = yield* settled(
        Effect.map(counts, (entries) => Object.fromEntries(entries) as Record<string, number>),
        (byCode) => Object.entries(expected).every(([code, n]) => byCode[code] === n)
      )
      assert.deepStrictEqual(counted, expected)
      // Not also as the CANCELLED grpc-js reports after each status it sent itself.
      assert.strictEqual(yield* Testing.metricValue("grpc_method_latency_seconds_count"), cases.length)
      const servers = byKind(yield* finished, SpanKind.SERVER)
      assert.deepStrictEqual(
        servers.map((span) => span.attributes["rpc.grpc.status_code"]).toSorted(),
        cases.map(([, , code]) => code).toSorted()
      )
      assert.strictEqual((yield* rawCall(client, { txId: "tx-after", region: "eu-central" }))["node"], "poh-test")
    }).pipe(Effect.scoped, Effect.provide(Network())))

  const valid = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
  const zeroTrace = `-${"0".repeat(32)}-`
  const metadataCases: ReadonlyArray<readonly [string, (metadata: grpc.Metadata) => void, boolean]> = [
    ["binary garbage in 16 -bin headers", (metadata) => {
      for (let i = 0; i < 16; i++) {
        metadata.set(`x-garbage-${i}-bin`, Buffer.from(Array.from({ length: 64 }, (_, j) => (i * 31 + j * 7) % 256)))
      }
    }, false],
    ["a binary traceparent-bin", (metadata) => metadata.set("traceparent-bin", Buffer.from([0, 1, 2, 0xff])), false],
    ["a 6 000-character traceparent", (metadata) => metadata.set("traceparent", `00-${"a".repeat(6000)}`), false],
    ["a zero trace id", (metadata) => metadata.set("traceparent", valid.replace(/-[0-9a-f]{32}-/, zeroTrace)), false],
    ["version ff", (metadata) => metadata.set("traceparent", valid.replace(/^00/, "ff")), false],
    ["a garbage 500-member tracestate beside a valid traceparent", (metadata) => {
      metadata.set("traceparent", valid)
      metadata.set("tracestate", `a=1,=;=,@@@,${"k=v,".repeat(500)}`)
    }, true]
  ]

  it.live.each(metadataCases)("bad metadata, %s: the call succeeds, in a new trace unless the traceparent is valid", (
    [, set, continued]
  ) =>
    Effect.gen(function*() {
      const { address } = yield* PohGrpc.PohNode
      const client = yield* rawClient(address)
      const metadata = new grpc.Metadata()
      set(metadata)
      const response = yield* rawCall(client, { txId: "tx-1", region: "eu-central" }, metadata)
      assert.strictEqual(response["seq"], 1)
      const [server] = byKind(yield* finished, SpanKind.SERVER)
      assert.isDefined(server)
      assert.strictEqual(server!.attributes["rpc.grpc.status_code"], OK)
      if (continued) {
        assert.strictEqual(server!.spanContext().traceId, "0af7651916cd43dd8448eb211c80319c")
        assert.strictEqual(server!.parentSpanContext?.spanId, "b7ad6b7169203331")
      } else {
        assert.isUndefined(server!.parentSpanContext)
        assert.match(server!.spanContext().traceId, /^(?!0{32})[0-9a-f]{32}$/)
      }
    }).pipe(Effect.scoped, Effect.provide(Network())))
})
