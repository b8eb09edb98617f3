/**
 * What the server children of the HTTP benchmarks share (bench/http/server.ts, bench/http/poh-node.ts): Effect's
 * tracer turned off with a count of the spans it was still asked for, the OTLP exporter's outcomes, and the protocol
 * with the runner (bench/load.ts's `startChild`): `{"port":…}` once serving, one JSON line per `report` line on
 * stdin, exit when stdin closes.
 */
import { createInterface } from "node:readline"
import { Effect, Layer, References, Tracer } from "effect"
import { Metrics } from "../../src/index.ts"
import { recorded } from "../support.ts"

type Registry = Metrics.Metrics["Service"]["registry"]

/** Effect's tracer off, and a count of the spans Effect was asked to start anyway: none, when it is really off. */
export const tracerOff = () => {
  let started = 0
  const counting = Tracer.make({
    span: (options) => {
      started += 1
      return Tracer.nativeTracer.span(options)
    }
  })
  return {
    layer: Layer.mergeAll(Layer.succeed(References.TracerEnabled)(false), Layer.succeed(Tracer.Tracer)(counting)),
    started: () => started
  }
}

/** What the OTLP exporter did with the spans so far (`otlp_exported_spans_total` by outcome), and CPU µs used. */
export const exportReport = async (registry: Registry) => {
  const outcome = (name: string) => recorded(registry, "otlp_exported_spans_total", { outcome: name })
  const cpu = process.cpuUsage()
  return {
    exported: await outcome("exported"),
    failed: await outcome("failed"),
    dropped: await outcome("dropped"),
    cpuMicros: cpu.user + cpu.system
  }
}

/** Prints `{"port":…}` once `port` is known, then answers each `report` line on stdin with `report`'s JSON. */
export const reporting = <E, R>(
  port: Effect.Effect<number, E, R>,
  report: (registry: Registry) => Promise<object>
): Layer.Layer<never, E, R | Metrics.Metrics> =>
  Layer.effectDiscard(Effect.gen(function*() {
    const { registry } = yield* Metrics.Metrics
    const listening = yield* port
    const lines = createInterface({ input: process.stdin })
    lines.on("line", async (line) => {
      if (line === "report") process.stdout.write(`${JSON.stringify(await report(registry))}\n`)
    })
    lines.on("close", () => process.exit(0))
    process.stdout.write(`${JSON.stringify({ port: listening })}\n`)
  }))

/** What {@link exportReport} says. */
export type ExportReport = Awaited<ReturnType<typeof exportReport>>
