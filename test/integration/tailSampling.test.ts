/**
 * Tail sampling in two tiers under load with failures (issue 16, items 2 and 3): Presence, two PoH nodes and the
 * sending DAG over a FerretDB of the test's own export to a gateway collector, which makes span metrics and routes
 * every span by trace id (`load_balancing`) to one of two tail-sampling collectors, which send what they keep to a
 * Jaeger of the test's own. Under ~50 tx/s, poh-1 is SIGKILLed (requests fail over to poh-2) and the store is
 * stopped for 2 s (`503`). What every collector received (each writes it to a file as well) is the ground truth:
 *
 * - each trace went to one sampler, whole, and each sampler had a fair share of the traces;
 * - every trace with an error, and every trace slower than 500 ms, is in Jaeger, whole: the same spans, of the same
 *   services, as the gateway received; no trace in Jaeger is partial;
 * - of the other traces, the share kept is 10 % within a binomial bound (4 standard deviations).
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import type { CollectorSpan } from "../../servers/Collector.ts"
import { startPipelineCollector } from "../../servers/Pipeline.ts"
import { startFerretDB, startJaeger } from "../../servers/Servers.ts"
import { Traces } from "./Jaeger.ts"
import { inPhase, steadyLoad, summary } from "./Load.ts"
import { withOutputs } from "./Network.ts"
import { startPohNode, startPresence, startSendingDag } from "./Nodes.ts"

const thresholdMs = 500
const share = 0.1

/** A server of the test, stopped with the scope. */
const resource = <A>(start: () => Promise<A>, stop: (a: A) => Promise<void>) =>
  Effect.acquireRelease(Effect.promise(start), (a) => Effect.promise(() => stop(a)))

/** The spans of each trace, by trace id. */
const byTrace = (spans: ReadonlyArray<CollectorSpan>) => {
  const traces = new Map<string, Array<CollectorSpan>>()
  for (const span of spans) traces.set(span.traceId, [...traces.get(span.traceId) ?? [], span])
  return traces
}

/** A trace's duration: its earliest start to its latest end, as the latency policy measures it. */
const durationMs = (spans: ReadonlyArray<CollectorSpan>) =>
  Number(
    spans.map((span) => BigInt(span.endTimeUnixNano!)).reduce((a, b) => (a > b ? a : b)) -
      spans.map((span) => BigInt(span.startTimeUnixNano!)).reduce((a, b) => (a < b ? a : b))
  ) / 1e6

const ids = (spans: ReadonlyArray<{ readonly spanId?: string; readonly spanID?: string }>) =>
  spans.map((span) => span.spanId ?? span.spanID).toSorted()

describe("tail sampling in two tiers", () => {
  it.live("under load with a PoH node killed and the store stopped: errors and slow traces whole, 10 % of the rest", () =>
    Effect.gen(function*() {
      const jaeger = yield* resource(() => startJaeger(), (server) => server.stop())
      const ferretdb = yield* resource(() => startFerretDB(), (server) => server.dispose())
      const sampling = { jaegerEndpoint: jaeger.otlpEndpoint, recordReceived: true }
      const samplers = [
        yield* resource(() => startPipelineCollector("sampler", sampling), (server) => server.dispose()),
        yield* resource(() => startPipelineCollector("sampler", sampling), (server) => server.dispose())
      ]
      const gateway = yield* resource(
        () => startPipelineCollector("gateway", { samplers: samplers.map((s) => s.otlpEndpoint), recordReceived: true }),
        (server) => server.dispose()
      )
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: gateway.otlpEndpoint, PRESENCE_TTL: "3s", PRESENCE_HEARTBEAT_INTERVAL: "500ms" }
      const presence = yield* startPresence(env)
      const poh1 = yield* startPohNode("poh-1", "eu-central", presence.address, env)
      yield* startPohNode("poh-2", "eu-central", presence.address, env)
      const { url } = yield* startSendingDag(presence.address, 1, {
        ...env,
        MONGODB_URI: `${ferretdb.uri}dag`,
        MONGODB_CONNECT_TIMEOUT: "1s",
        DAG_NODES: "poh-1,poh-2"
      })

      const load = yield* steadyLoad(url, 50, "baseline")
      yield* Effect.sleep(3_000)
      load.phase = "poh-1 killed"
      poh1.node.child.kill("SIGKILL")
      yield* Effect.sleep(4_000)
      load.phase = "store stopped"
      yield* Effect.promise(() => ferretdb.stop())
      yield* Effect.sleep(2_000)
      yield* Effect.promise(() => ferretdb.start())
      load.phase = "recovered"
      yield* Effect.sleep(4_000)
      yield* Effect.promise(() => load.pause())
      for (const phase of ["baseline", "poh-1 killed", "store stopped", "recovered"]) {
        console.log(`${phase}: ${summary(inPhase(load, phase))}`)
      }

      // Ground truth: what the gateway received of the load's traces, once the nodes have flushed.
      const ours = new Set(load.answers.map((answer) => answer.traceId))
      yield* Effect.sleep(2_000)
      const received = byTrace((yield* Effect.promise(() => gateway.spans())).filter((span) => ours.has(span.traceId)))
      assert.strictEqual(received.size, ours.size, "the gateway received every trace of the load")
      const erroneous = [...received].filter(([, spans]) => spans.some((span) => span.status?.code === 2))
      const slow = [...received].filter(([, spans]) => durationMs(spans) > thresholdMs)
      const rest = [...received].filter(([id]) => !erroneous.some(([e]) => e === id) && !slow.some(([s]) => s === id))

      // Two tiers: each trace's spans all went to one sampler; each sampler had its share.
      const atSampler = yield* Effect.promise(() => Promise.all(samplers.map(async (s) => byTrace(await s.spans()))))
      for (const [traceId, spans] of received) {
        const holders = atSampler.filter((traces) => traces.has(traceId))
        assert.strictEqual(holders.length, 1, `trace ${traceId} went to one sampler`)
        assert.deepStrictEqual(ids(holders[0]!.get(traceId)!), ids(spans), `trace ${traceId} whole at its sampler`)
      }
      const perSampler = atSampler.map((traces) => [...traces.keys()].filter((id) => ours.has(id)).length)
      assert.isTrue(perSampler.every((n) => n > received.size / 4), `traces per sampler ${perSampler.join(", ")}`)

      // What Jaeger holds once every error and slow trace is there. No trace has a root span here (the load's
      // `traceparent` is the parent of `POST /tx`), so each is decided at the default `decision_wait`, 10 s after its
      // first span, so that a span exported late (a retried export, a busy collector) is still in the decision.
      const search = Effect.tryPromise(() =>
        fetch(`${jaeger.queryUrl}/api/traces?service=sending-dag&limit=100000&lookback=1h`).then((r) => r.json())
      ).pipe(Effect.flatMap(Schema.decodeUnknownEffect(Traces)), Effect.map(({ data }) => new Map((data ?? []).map((t) => [t.traceID, t]))))
      const mustKeep = [...erroneous, ...slow].map(([id]) => id)
      let kept = yield* search
      for (let waited = 0; waited < 30_000 && !mustKeep.every((id) => kept.get(id)?.spans.length === received.get(id)!.length); waited += 500) {
        yield* Effect.sleep(500)
        kept = yield* search
      }
      yield* Effect.sleep(2_000)
      kept = yield* search
      for (const [traceId, trace] of kept) {
        const truth = received.get(traceId)
        if (truth === undefined) continue
        assert.deepStrictEqual(ids(trace.spans), ids(truth), `kept trace ${traceId} is whole`)
      }
      for (const traceId of mustKeep) {
        const trace = kept.get(traceId)
        const truth = received.get(traceId)!
        const spread = `${durationMs(truth).toFixed(0)} ms, spans ${truth.map((span) => `${span.service}/${span.name}`).join(", ")}`
        assert.isDefined(trace, `error or slow trace ${traceId} kept (${spread})`)
        const services = new Set(Object.values(trace!.processes).map((process) => process.serviceName))
        assert.deepStrictEqual([...services].toSorted(), [...new Set(truth.map((s) => s.service))].toSorted())
      }
      const failed = (name: string) =>
        erroneous.filter(([, spans]) => spans.some((span) => span.status?.code === 2 && span.name === name)).length
      const keptRest = rest.filter(([id]) => kept.has(id)).length
      const bound = 4 * Math.sqrt(rest.length * share * (1 - share))
      console.log(
        `${received.size} traces (${[...received.values()].flat().length} spans): ${erroneous.length} with an error ` +
          `(${failed("poh.PohService/Request")} PoH calls failed, ${failed("Storage.persist")} persists), ` +
          `${slow.length} over ${thresholdMs} ms, all kept; ${keptRest} of the other ${rest.length} kept ` +
          `(${(100 * keptRest / rest.length).toFixed(1)} %, bound ${(share * rest.length).toFixed(0)} ± ${bound.toFixed(0)}); ` +
          `per sampler ${perSampler.join(" + ")}; ${[...kept.values()].flatMap((t) => t.spans).length} spans in Jaeger`
      )
      assert.isAbove(failed("poh.PohService/Request"), 0, "the killed node's calls failed")
      assert.isAbove(failed("Storage.persist"), 0, "persists failed while the store was stopped")
      assert.isAtLeast(rest.length, 300, "enough ordinary traces to judge the share")
      assert.isAtMost(Math.abs(keptRest - share * rest.length), bound, "the share of the rest kept is 10 %")
    }).pipe(Effect.scoped, withOutputs), 150_000)
})
