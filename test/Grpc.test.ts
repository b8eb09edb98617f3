/**
 * The generic gRPC instrumentation: `Grpc.unary` maps failures to statuses, the interceptors register their own
 * histogram and nothing else, names and addresses are read safely, and a PoH node survives hostile messages and
 * metadata.
 */
import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import { SpanKind } from "@opentelemetry/api"
import { Effect, Schema } from "effect"
import { type Poh } from "../src/dag/index.ts"
import * as PohGrpc from "../src/dag/PohGrpc.ts"
import * as Grpc from "../src/Grpc.ts"
import { Metrics, ObservabilityTest, Testing } from "../src/index.ts"
import {
  byKind,
  finished,
  Network,
  rawCall,
  rawClient,
  service,
  settled,
  tracedClient
} from "./support/PohNetwork.ts"

class Refused extends Schema.TaggedError<Refused>()("Refused", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/** A server for `poh.PohService` whose handler fails, dies or is interrupted as `txId` says. */
const FailingServer = Effect.gen(function*() {
  const interceptor = yield* Grpc.serverInterceptor
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
    Effect.sync(() => new grpc.Server({ interceptors: [interceptor] })),
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

/** The names of the families registered on the current registry, sorted. */
const registered = Effect.map(Metrics.Metrics, ({ registry }) =>
  registry.getMetricsAsArray().map(({ name }) => name).toSorted())

describe("Grpc interceptors", () => {
  it.effect("each registers its own latency histogram on the current registry when made, once, and nothing else", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* registered, [])
      yield* Grpc.serverInterceptor
      assert.deepStrictEqual(yield* registered, ["grpc_method_latency_seconds"])
      yield* Grpc.clientInterceptor({ address: "127.0.0.1:50051" })
      assert.deepStrictEqual(yield* registered, ["grpc_client_latency_seconds", "grpc_method_latency_seconds"])
      // Made again (a second server, a channel per node), they find the histograms already registered.
      yield* Grpc.serverInterceptor
      yield* Grpc.clientInterceptor()
      assert.deepStrictEqual(yield* registered, ["grpc_client_latency_seconds", "grpc_method_latency_seconds"])
    }).pipe(Effect.provide(Metrics.layerTest)))

  it.live("a traced call through both records in the grpc_* families only: no DAG, HTTP or MongoDB family", () =>
    Effect.gen(function*() {
      const address = yield* FailingServer
      const client = yield* tracedClient(address)
      const failed = yield* Effect.flip(rawCall(client, { txId: "fail", region: "eu-central" }))
      assert.strictEqual(failed.code, grpc.status.PERMISSION_DENIED)
      assert.deepStrictEqual(yield* registered, ["grpc_client_latency_seconds", "grpc_method_latency_seconds"])
      const denied = { ...service, code: "PERMISSION_DENIED" }
      assert.strictEqual(yield* Testing.metricValue("grpc_client_latency_seconds_count", denied), 1)
      assert.strictEqual(
        yield* settled(Testing.metricValue("grpc_method_latency_seconds_count", denied), (n) => n > 0),
        1
      )
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
