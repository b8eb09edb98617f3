/**
 * The telemetry pipeline's collector configs (servers/otelcol/configs, merged
 * per role by servers/Pipeline.ts): every role passes `otelcol validate`, a
 * wrong setting is refused, and the one-tier `collector` keeps what its tail
 * sampling policy says (errors, traces over the latency threshold, a share of
 * the rest) once a trace is complete, while its span metrics count every span
 * it received. The compose file's Jaeger config (Badger on disk) passes
 * `jaeger validate`.
 */
import { context, SpanStatusCode, trace } from "@opentelemetry/api"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"
import { afterAll, describe, expect, inject, it } from "vitest"
import { fileURLToPath } from "node:url"
import { jaegerBinary } from "../../servers/Cache.ts"
import { validateCollectorConfig } from "../../servers/Collector.ts"
import { type PipelineCollector, type Role, roleFiles, roles, startPipelineCollector } from "../../servers/Pipeline.ts"
import { runCommand } from "../../servers/Process.ts"
import { eventually } from "../support/Eventually.ts"
import { fetchTrace, traceStatus } from "./Jaeger.ts"
import { sample, scrape } from "./Network.ts"

/** What each role needs set; everything else has a default in the files. */
const required: Record<Role, Record<string, string>> = {
  collector: { OTELCOL_TRACES_ENDPOINT: "127.0.0.1:4317", OTELCOL_LOGS_FILE: "/tmp/logs.jsonl" },
  gateway: { OTELCOL_SAMPLERS: "[127.0.0.1:14317, 127.0.0.1:24317]", OTELCOL_LOGS_FILE: "/tmp/logs.jsonl" },
  sampler: { OTELCOL_TRACES_ENDPOINT: "127.0.0.1:4317" },
  agent: { OTELCOL_GATEWAY_ENDPOINT: "127.0.0.1:4317" }
}

/** `scrape` of a collector's `/metrics` at `target`, summed over the series of `name` with `labels`. */
const metric = (target: string, name: string, labels: Record<string, string> = {}) =>
  Effect.runPromise(Effect.map(scrape(`http://${target}/metrics`), (samples) => sample(samples, name, labels)))

/** The names of the spans of trace `traceId` in Jaeger, once it has `spans` of them. */
const names = async (traceId: string, spans: number) =>
  (await Effect.runPromise(fetchTrace(traceId, spans))).spans.map((span) => span.operationName).toSorted()

const collectors: Array<PipelineCollector> = []
afterAll(() => Promise.all(collectors.map((collector) => collector.dispose())))

describe("the pipeline's collector configs", () => {
  it("every role's files pass `otelcol validate`; a setting of the wrong type, or missing, is refused", async () => {
    for (const role of Object.keys(roles) as Array<Role>) {
      const result = await validateCollectorConfig(roleFiles(role), required[role])
      expect({ role, ...result }).toMatchObject({ role, code: 0 })
    }
    const wrong = await validateCollectorConfig(roleFiles("sampler"), { ...required.sampler, TAIL_SAMPLING_PERCENTAGE: "ten" })
    expect(wrong.stderr).toContain("sampling_percentage")
    const missing = await validateCollectorConfig(roleFiles("gateway"), { OTELCOL_LOGS_FILE: "/tmp/logs.jsonl" })
    expect(missing.code).not.toBe(0)
  })

  it("examples/compose/jaeger.yaml (durable Badger storage) passes `jaeger validate`", async () => {
    const config = fileURLToPath(new URL("../../examples/compose/jaeger.yaml", import.meta.url))
    expect(await runCommand(jaegerBinary, ["validate", `--config=${config}`])).toMatchObject({ code: 0 })
  })

  it("tail sampling keeps errors, and traces slow once complete, whole; drops the rest at 0 %; span metrics count all", async () => {
    const collector = await startPipelineCollector("collector", {
      jaegerEndpoint: inject("otlpEndpoint"),
      env: {
        TAIL_SAMPLING_PERCENTAGE: "0",
        TAIL_SAMPLING_LATENCY_THRESHOLD_MS: "300",
        TAIL_SAMPLING_DECISION_WAIT: "4s",
        TAIL_SAMPLING_DECISION_WAIT_AFTER_ROOT: "1s",
        OTELCOL_SPAN_METRICS_FLUSH_INTERVAL: "200ms"
      }
    })
    collectors.push(collector)
    const service = `pipeline-${Date.now()}`
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": service }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: collector.otlpEndpoint }))]
    })
    const tracer = provider.getTracer("pipeline-test")
    /** A trace of one span lasting `ms`, its id. */
    const oneSpan = (name: string, ms: number, error = false) => {
      const now = Date.now()
      const span = tracer.startSpan(name, { startTime: now - ms })
      if (error) span.setStatus({ code: SpanStatusCode.ERROR })
      span.end(now)
      return span.spanContext().traceId
    }
    // A trace whose quick child arrives 1.5 s before its root: only the whole trace is slow, and it is kept whole.
    const root = tracer.startSpan("root")
    tracer.startSpan("quick child", {}, trace.setSpan(context.active(), root)).end()
    await provider.forceFlush()
    await new Promise((resolve) => setTimeout(resolve, 1_500))
    root.end()
    const late = root.spanContext().traceId
    const slow = oneSpan("slow", 400)
    const error = oneSpan("failed", 5, true)
    const fast = Array.from({ length: 20 }, (_, i) => oneSpan(`fast ${i}`, 5))
    await provider.shutdown()

    const sampled = (decision: string) =>
      metric(collector.telemetryTarget, "otelcol_processor_tail_sampling_global_count_traces_sampled", { decision })
    await eventually("every trace decided", async () => (await sampled("not_sampled")) === 20 ? true : undefined, 15_000)
    expect(await sampled("sampled")).toBe(3)
    expect(await names(late, 2)).toEqual(["quick child", "root"])
    expect(await names(slow, 1)).toEqual(["slow"])
    expect(await names(error, 1)).toEqual(["failed"])
    const dropped = await Promise.all(fast.map((traceId) => Effect.runPromise(traceStatus(traceId))))
    expect(dropped).toEqual(fast.map(() => 404))

    // Span metrics: before sampling, every span, by name and status.
    const calls = (labels: Record<string, string>) =>
      metric(collector.spanMetricsTarget!, "traces_span_metrics_calls_total", { service_name: service, ...labels })
    await eventually("the span metrics", async () => (await calls({})) === 24 ? true : undefined)
    expect(await calls({ status_code: "STATUS_CODE_ERROR" })).toBe(1)
    expect(await calls({ span_name: "fast 7" })).toBe(1)
  })
})
