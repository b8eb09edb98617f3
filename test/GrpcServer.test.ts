/**
 * `GrpcServer` against hostile clients (issue 18, item 2), on real loopback
 * sockets with short bounds: connections that never finish the HTTP/2
 * preface, that are not HTTP/2, that only open a session and idle, that
 * ignore the server's GOAWAY, and that exceed the cap are all closed and
 * counted; a real client's calls go through.
 */
import { connect, createServer } from "node:net"
import * as grpc from "@grpc/grpc-js"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import * as GrpcServer from "../src/GrpcServer.ts"
import { ObservabilityTest, Testing } from "../src/index.ts"

const preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
/** An empty SETTINGS frame, and its acknowledgement. */
const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])
const settingsAck = Buffer.from([0, 0, 0, 4, 1, 0, 0, 0, 0])

const echo: grpc.ServiceDefinition = {
  Echo: {
    path: "/test.Echo/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (value: Buffer) => value,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (value: Buffer) => value
  }
}

const echoing: grpc.UntypedServiceImplementation = {
  Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => done(null, call.request)
}

/** A server of `GrpcServer` with the echo service, bounded as given; its port. */
const serve = (options: Partial<GrpcServer.Options> = {}) =>
  GrpcServer.serve({ host: "127.0.0.1", port: 0, services: [[echo, echoing]], ...options })

/** Opens a raw connection, writes `chunks`, and resolves with how long it stayed open (ms), up to `limitMs`. */
const openFor = (port: number, chunks: ReadonlyArray<string | Buffer>, limitMs = 5_000) =>
  Effect.callback<number>((resume) => {
    const started = performance.now()
    const socket = connect(port, "127.0.0.1", () => chunks.forEach((chunk) => socket.write(chunk)))
    socket.on("error", () => undefined)
    socket.on("data", () => undefined)
    const timer = setTimeout(() => socket.destroy(), limitMs)
    socket.on("close", () => {
      clearTimeout(timer)
      resume(Effect.succeed(performance.now() - started))
    })
  })

const rejected = (reason: string) => Testing.metricValue("grpc_server_connections_rejected_total", { reason })

describe("GrpcServer", () => {
  it.live("a client's calls go through the bounded listener", () =>
    Effect.gen(function*() {
      const port = yield* serve()
      const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure())
      yield* Effect.addFinalizer(() => Effect.sync(() => client.close()))
      const answer = yield* Effect.callback<Buffer, Error>((resume) => {
        client.makeUnaryRequest("/test.Echo/Echo", (value: Buffer) => value, (value: Buffer) => value, Buffer.from("hi"), (
          error,
          value
        ) => resume(error === null ? Effect.succeed(value!) : Effect.fail(error)))
      })
      assert.strictEqual(answer.toString(), "hi")
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("connections that never finish the preface are closed after the handshake timeout, counted, warned once", () =>
    Effect.gen(function*() {
      const warnings: Array<string> = []
      const port = yield* serve({ handshakeTimeout: "300 millis" }).pipe(
        Effect.provide(Logger.layer([Logger.map(Logger.formatSimple, (line) => void warnings.push(line))]))
      )
      const open = yield* Effect.all(Array.from({ length: 20 }, () => openFor(port, ["PRI * HTTP/2.0\r\n"])), {
        concurrency: "unbounded"
      })
      assert.isTrue(open.every((ms) => ms >= 250 && ms < 2_000), open.join(", "))
      assert.strictEqual(yield* rejected("handshake_timeout"), 20)
      assert.strictEqual(warnings.filter((line) => line.includes("handshake_timeout")).length, 1, warnings.join("\n"))
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("a connection that is not HTTP/2 is closed at once", () =>
    Effect.gen(function*() {
      const port = yield* serve()
      const open = yield* openFor(port, ["GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
      assert.isBelow(open, 1_000)
      assert.strictEqual(yield* rejected("not_http2"), 1)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("sessions opened and left idle are closed after the idle timeout", () =>
    Effect.gen(function*() {
      const port = yield* serve({ idleTimeout: "400 millis" })
      const open = yield* Effect.all(Array.from({ length: 20 }, () => openFor(port, [preface, settings])), {
        concurrency: "unbounded"
      })
      assert.isTrue(open.every((ms) => ms >= 300 && ms < 3_000), open.join(", "))
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("a peer that stays after the idle GOAWAY is closed by its maximum age (plus grace)", () =>
    Effect.gen(function*() {
      const port = yield* serve({ idleTimeout: "10 seconds", maxAge: "400 millis", maxAgeGrace: "300 millis" })
      const open = yield* openFor(port, [preface, settings, settingsAck])
      assert.isTrue(open >= 300 && open < 3_000, String(open)) // the age has a ±10 % jitter
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("connections over maxConnections are closed at once and counted; those within stay", () =>
    Effect.gen(function*() {
      const port = yield* serve({ maxConnections: 2 })
      const held = [connect(port, "127.0.0.1"), connect(port, "127.0.0.1")]
      yield* Effect.addFinalizer(() => Effect.sync(() => held.forEach((socket) => socket.destroy())))
      for (const socket of held) socket.write(preface)
      yield* Effect.sleep("150 millis")
      const over = yield* Effect.all([openFor(port, []), openFor(port, [])])
      assert.isTrue(over.every((ms) => ms < 1_000), over.join(", "))
      assert.strictEqual(yield* rejected("limit"), 2)
      assert.isTrue(held.every((socket) => !socket.destroyed))
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))

  it.live("a taken address fails with one ListenError line naming it and its setting", () =>
    Effect.gen(function*() {
      const taken = createServer()
      yield* Effect.promise(() => new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve)))
      yield* Effect.addFinalizer(() => Effect.sync(() => taken.close()))
      const port = (taken.address() as { readonly port: number }).port
      const error = yield* Effect.flip(serve({ port, setting: "GRPC_BIND", name: "test gRPC" }))
      assert.match(error.message, new RegExp(`^cannot serve test gRPC on 127\\.0\\.0\\.1:${port} \\(GRPC_BIND\\): .*EADDRINUSE`))
      assert.strictEqual(error.stack, `ListenError: ${error.message}`)
    }).pipe(Effect.scoped, Effect.provide(ObservabilityTest)))
})
