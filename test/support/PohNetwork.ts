/**
 * A PoH node and a sending DAG over gRPC on loopback, for the gRPC specs: layers for both ends, raw grpc-js clients
 * and calls of `poh.PohService/Request`, and small helpers over the finished spans.
 */
import * as grpc from "@grpc/grpc-js"
import type { SpanKind } from "@opentelemetry/api"
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base"
import { Context, type Duration, Effect, Exit, Layer, Schedule, Scope } from "effect"
import { DagMetrics, Poh } from "../../src/dag/index.ts"
import * as PohGrpc from "../../src/dag/PohGrpc.ts"
import * as Grpc from "../../src/Grpc.ts"
import { ObservabilityTest, Testing } from "../../src/index.ts"

/** The labels of `poh.PohService/Request` in the gRPC latency histograms. */
export const service = { service: "poh.PohService", method: "Request" }

/** `ObservabilityTest` with the DAG's metrics registered on its registry. */
export const DagTest = DagMetrics.layer().pipe(Layer.provideMerge(ObservabilityTest))

/** A PoH node on a free loopback port whose sequencer answers after `delay`, in a span `slow`. */
export const Node = (options: { readonly delay?: number; readonly shutdownTimeout?: Duration.Input } = {}) =>
  PohGrpc.layerServer({
    host: "127.0.0.1",
    port: 0,
    ...(options.shutdownTimeout === undefined ? {} : { shutdownTimeout: options.shutdownTimeout })
  }).pipe(Layer.provide(
    options.delay === undefined ? Poh.layerSequencer("poh-test") : Layer.effect(
      Poh.PohSequencer,
      Effect.gen(function*() {
        const inner = yield* Poh.PohSequencer
        return Poh.PohSequencer.of({
          sequence: (txId) => Effect.delay(inner.sequence(txId), options.delay!).pipe(Effect.withSpan("slow"))
        })
      })
    ).pipe(Layer.provide(Poh.layerSequencer("poh-test")))
  ))

/** The sending DAG's PoH workflow over gRPC to the node at `address`. */
export const Sender = (options: Poh.Options, address: string) =>
  Poh.layer(options).pipe(Layer.provide(PohGrpc.layerClient({ address })))

/** A node and a sender asking it, both observed by one `ObservabilityTest` with the DAG's metrics. */
export const Network = (options: Poh.Options = {}, node = Node()) =>
  Layer.unwrap(Effect.gen(function*() {
    const { address } = yield* PohGrpc.PohNode
    return Sender(options, address)
  })).pipe(
    Layer.provideMerge(node),
    Layer.provideMerge(DagTest)
  )

export const finished = Testing.finishedSpans

export const byKind = (spans: ReadonlyArray<ReadableSpan>, kind: SpanKind) =>
  spans.filter((span) => span.kind === kind)

/** The address of a PoH node that has stopped: nothing listens there any more. */
export const stoppedNode = Effect.gen(function*() {
  const scope = yield* Scope.make()
  const { address } = Context.get(yield* Layer.buildWithScope(Node(), scope), PohGrpc.PohNode)
  yield* Scope.close(scope, Exit.void)
  return address
})

const openClient = (address: string, interceptors: Array<grpc.Interceptor>) =>
  Effect.acquireRelease(
    Effect.sync(() => new grpc.Client(address, grpc.credentials.createInsecure(), { interceptors })),
    (opened) => Effect.sync(() => opened.close())
  )

/** A grpc-js client of its own, not instrumented. */
export const rawClient = (address: string) => openClient(address, [])

/** A grpc-js client of its own, instrumented with `Grpc.clientInterceptor` on the current registry. */
export const tracedClient = (address: string) =>
  Effect.flatMap(Grpc.clientInterceptor({ address }), (interceptor) => openClient(address, [interceptor]))

/** One raw `Request` call: its response, or the status it failed with. */
export const rawCall = (client: grpc.Client, request: object, metadata = new grpc.Metadata(), deadlineMillis = 5000) =>
  Effect.callback<Record<string, unknown>, grpc.ServiceError>((resume) => {
    const method = PohGrpc.loadService()["Request"]!
    const call = client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      request,
      metadata,
      { deadline: Date.now() + deadlineMillis },
      (error, response) =>
        resume(error === null ? Effect.succeed(response as Record<string, unknown>) : Effect.fail(error))
    )
    return Effect.sync(() => call.cancel())
  })

/** Polls `value` until `predicate` holds, for at most 2 seconds; the last value either way. */
export const settled = <A, E, R>(value: Effect.Effect<A, E, R>, predicate: (a: A) => boolean) =>
  value.pipe(
    Effect.repeat({ schedule: Schedule.spaced("10 millis"), until: predicate }),
    Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => value })
  )
