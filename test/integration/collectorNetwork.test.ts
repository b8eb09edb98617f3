/**
 * The example network's telemetry through a real OpenTelemetry Collector
 * (issue 13, item 5): every node exports its spans and its log records over
 * OTLP gRPC to the collector, which forwards the spans to Jaeger and writes
 * the log records to its file exporter. For each of a handful of
 * transactions, the log line the sending DAG wrote inside the request is in
 * the collector's output with the trace id Jaeger holds the transaction's
 * trace under; and the PoH nodes' Effect metric (`poh_chain_height`) is in
 * the Prometheus the network runs.
 */
import { Effect } from "effect"
import { afterAll, assert, beforeAll, describe, inject, it } from "vitest"
import { type Collector, startCollector } from "../../servers/Servers.ts"
import { eventually } from "../support/Eventually.ts"
import { fetchTraces } from "./Jaeger.ts"
import { type Launcher, loopbackBinds, networkUp, printed, startLauncher, surroundings } from "./Launcher.ts"

let collector: Collector
let around: Awaited<ReturnType<typeof surroundings>>
let launcher: Launcher | undefined

beforeAll(async () => {
  collector = await startCollector({ jaegerEndpoint: inject("otlpEndpoint") })
  around = await surroundings()
})

afterAll(async () => {
  if (launcher !== undefined && launcher.child.exitCode === null) {
    launcher.child.kill("SIGTERM")
    await launcher.exited
  }
  await collector.dispose()
  around.close()
})

/** The stamps the PoH nodes' chain heights add up to. */
const stampedIn = (samples: ReadonlyArray<{ readonly value: readonly [number, string] }>) =>
  samples.reduce((sum, sample) => sum + Number(sample.value[1]), 0)

describe("the example network through an OpenTelemetry Collector", () => {
  it("each transaction's log line, in the collector's output, carries the trace id of its trace in Jaeger", async () => {
    launcher = startLauncher("node", {
      ...loopbackBinds,
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.otlpEndpoint,
      OTEL_LOGS_EXPORTER: "otlp",
      DAG_NETWORK_DATA: around.tempDir()
    })
    const base = await networkUp(launcher)
    const prometheus = await printed(launcher, /Prometheus\s+(http:\/\/127\.0\.0\.1:\d+)/)
    const committed: Array<{ readonly id: string; readonly traceId: string }> = []
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${base}/tx`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ from: `collector-${i}`, to: "bob", amount: 5, region: i % 2 === 0 ? "eu-central" : "us-east" })
      })
      assert.strictEqual(response.status, 201)
      const traceId = /^00-([0-9a-f]{32})-/.exec(response.headers.get("traceresponse") ?? "")?.[1]
      committed.push({ id: ((await response.json()) as { readonly id: string }).id, traceId: traceId! })
    }

    for (const { id, traceId } of committed) {
      const record = await eventually(`the log line of ${id}`, async () =>
        (await collector.logRecords()).find((found) => found.body?.stringValue?.includes(`transaction ${id} committed`)), 20_000)
      assert.strictEqual(record.service, "sending-dag")
      assert.strictEqual(record.traceId, traceId, "the log record carries its request's trace id")
      assert.match(record.spanId ?? "", /^[0-9a-f]{16}$/)
      const [trace] = await Effect.runPromise(fetchTraces(traceId, 10))
      assert.isTrue(trace!.spans.some((span) => span.spanID === record.spanId), "the span that wrote it is in Jaeger")
      const spans = await collector.spans()
      assert.isTrue(spans.some((span) => span.traceId === traceId && span.name === "POST /tx"))
    }

    const heights = await eventually("poh_chain_height in Prometheus", async () => {
      const answer = await (await fetch(`${prometheus}/api/v1/query?query=poh_chain_height`)).json() as {
        readonly data: { readonly result: ReadonlyArray<{ readonly metric: Record<string, string>; readonly value: [number, string] }> }
      }
      const result = answer.data.result
      // A scrape may predate the last stamps: wait for one that has them all.
      return result.length >= 3 && stampedIn(result) >= committed.length ? result : undefined
    }, 30_000)
    assert.includeMembers(heights.map((sample) => sample.metric["node"]), ["poh-1", "poh-2", "poh-3"])
  }, 120_000)
})
