/**
 * The OpenTelemetry Collector of servers/Collector.ts: the binary built from
 * servers/otelcol, its config checked by `otelcol validate`, OTLP gRPC in,
 * traces and logs out to JSON lines, traces on to Jaeger.
 */
import { context, trace } from "@opentelemetry/api"
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-grpc"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { LoggerProvider, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs"
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { otelcolVersion } from "../../servers/Cache.ts"
import {
  type Collector,
  collectorConfig,
  collectorVersion,
  startCollector,
  validateCollectorConfig
} from "../../servers/Servers.ts"
import { eventually } from "../support/Eventually.ts"


/** Sends one span named `name` and one log record inside it, both over OTLP gRPC to `endpoint`; its trace id. */
const sendSpanAndLog = async (endpoint: string, service: string, name: string): Promise<string> => {
  const resource = resourceFromAttributes({ "service.name": service })
  const tracer = new BasicTracerProvider({
    resource,
    spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: endpoint }))]
  })
  const logs = new LoggerProvider({
    resource,
    processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: endpoint }) })]
  })
  const span = tracer.getTracer("collector-test").startSpan(name)
  logs.getLogger("collector-test").emit({
    body: `inside ${name}`,
    severityText: "INFO",
    context: trace.setSpan(context.active(), span)
  })
  span.end()
  await Promise.all([tracer.shutdown(), logs.shutdown()])
  return span.spanContext().traceId
}

/** Every component servers/otelcol/builder-config.yaml lists, in one config (for the scale work of issue 16). */
const everyComponent = (dir: string) => ({
  receivers: { otlp: { protocols: { grpc: { endpoint: "127.0.0.1:0" } } } },
  processors: {
    batch: {},
    memory_limiter: { check_interval: "1s", limit_mib: 256 },
    tail_sampling: { decision_wait: "1s", policies: [{ name: "errors", type: "status_code", status_code: { status_codes: ["ERROR"] } }] }
  },
  exporters: {
    debug: {},
    "file/out": { path: `${dir}/out.jsonl` },
    otlp_grpc: { endpoint: "127.0.0.1:4317", tls: { insecure: true } },
    load_balancing: { protocol: { otlp: { tls: { insecure: true } } }, resolver: { static: { hostnames: ["127.0.0.1:4317"] } } },
    prometheus: { endpoint: "127.0.0.1:0" }
  },
  connectors: { span_metrics: {} },
  service: {
    telemetry: { metrics: { level: "none" } },
    pipelines: {
      "traces/in": { receivers: ["otlp"], processors: ["memory_limiter", "batch"], exporters: ["span_metrics", "load_balancing"] },
      "traces/sampled": { receivers: ["otlp"], processors: ["tail_sampling"], exporters: ["otlp_grpc", "file/out"] },
      metrics: { receivers: ["span_metrics"], exporters: ["debug", "prometheus"] }
    }
  }
})

describe("OpenTelemetry Collector", () => {
  let collector: Collector
  beforeAll(async () => {
    collector = await startCollector({ jaegerEndpoint: inject("otlpEndpoint") })
  })
  afterAll(() => collector?.dispose())

  it("prints the pinned version; `otelcol validate` accepts its configs and rejects a broken one", async () => {
    // A collector of one's own (OTELCOL_BINARY) prints its own version.
    const pinned = process.env.OTELCOL_BINARY === undefined ? otelcolVersion.slice(1) : collector.version
    expect(await collectorVersion()).toBe(pinned)
    expect(collector.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(await validateCollectorConfig(collector.configFile)).toMatchObject({ code: 0 })
    expect(await validateCollectorConfig(collectorConfig({ otlpPort: 4317, dir: collector.dir }))).toMatchObject({ code: 0 })
    expect(await validateCollectorConfig(everyComponent(collector.dir))).toMatchObject({ code: 0 })
    const broken = await validateCollectorConfig({ ...collectorConfig({ otlpPort: 4317, dir: "/tmp" }), exporters: { nope: {} } })
    expect(broken.code).not.toBe(0)
    expect(broken.stderr).toContain(`unknown type: "nope"`)
  })

  it("receives OTLP traces and logs, writes both as JSON lines and forwards the traces to Jaeger", async () => {
    const service = `collector-smoke-${Date.now()}`
    const traceId = await sendSpanAndLog(collector.otlpEndpoint, service, "through-the-collector")

    const span = await eventually("the span in the traces file", async () =>
      (await collector.spans()).find((candidate) => candidate.traceId === traceId))
    expect(span).toMatchObject({ service, name: "through-the-collector" })
    const record = await eventually("the log record in the logs file", async () =>
      (await collector.logRecords()).find((candidate) => candidate.traceId === traceId))
    expect(record).toMatchObject({ service, spanId: span.spanId, body: { stringValue: "inside through-the-collector" } })

    const names = await eventually("the trace in Jaeger", async () => {
      const response = await fetch(`${inject("jaegerQueryUrl")}/api/traces/${traceId}`)
      if (response.status !== 200) return undefined
      const body = (await response.json()) as { data: Array<{ spans: Array<{ operationName: string }> }> }
      return body.data[0]?.spans.map((candidate) => candidate.operationName)
    })
    expect(names).toEqual(["through-the-collector"])
  })

  it("stop() and start() keep its port and its files", async () => {
    const before = await sendSpanAndLog(collector.otlpEndpoint, "collector-restart", "before-restart")
    await eventually("the first span", async () =>
      (await collector.spans()).find((span) => span.traceId === before))
    await collector.stop()
    await collector.start()
    const after = await sendSpanAndLog(collector.otlpEndpoint, "collector-restart", "after-restart")
    await eventually("the second span", async () =>
      (await collector.spans()).find((span) => span.traceId === after))
    const traceIds = new Set((await collector.spans()).map((span) => span.traceId))
    expect(traceIds.has(before) && traceIds.has(after)).toBe(true)
  })
})
