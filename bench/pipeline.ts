/**
 * What the telemetry pipeline's collectors cost (issue 16, item 7): CPU and memory per 1 000 spans/s, and spans kept
 * against spans received under the default tail-sampling policy, for one tier (`collector`: span metrics + tail
 * sampling) and two tiers (`gateway` with span metrics and load balancing by trace id, two `sampler`s), the configs
 * of servers/otelcol/configs as the tests and `npm start` run them, sending to a Jaeger started here.
 *
 * Traces are made here with OpenTelemetry's SDK in the shape of the example network's: 10 spans of 3 services
 * (sending-dag 7, presence 1, poh-node 2), a few ms each, all OK and fast, so the default policy keeps 10 % of them.
 * This process (the load generator) and Jaeger run on core 1; the collectors on core 0, alone.
 * For each topology and rate: 3 s of warm-up, then `DURATION` s (default 15) measured: the collectors' CPU time
 * (utime + stime of /proc/<pid>/stat) and resident memory (VmRSS at the end, VmHWM the peak), and the spans they
 * accepted and sent on (their own metrics, `otelcol_receiver_accepted_spans`, `otelcol_exporter_sent_spans`).
 *
 * Run: `npm run bench:pipeline` (RATES, spans per second, default `1000,2000,4000`; DURATION).
 */
import { execFileSync } from "node:child_process"
import { readdirSync, readFileSync } from "node:fs"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { context, trace, type Tracer } from "@opentelemetry/api"
import { type PipelineCollector, startPipelineCollector } from "../servers/Pipeline.ts"
import { startJaeger } from "../servers/Servers.ts"
import { pinToCore1 } from "./compare.ts"
import { childCpu } from "./load.ts"

const rates = (process.env["RATES"] ?? "1000,2000,4000").split(",").map(Number)
const seconds = Number(process.env["DURATION"] ?? 15)
const spansPerTrace = 10

/** The pids of this process's children named `otelcol`. */
const collectorPids = () =>
  readdirSync("/proc").filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      const parent = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]
      return stat.includes("(otelcol)") && Number(parent) === process.pid
    } catch {
      return false
    }
  })

/** `VmRSS` and `VmHWM` in MiB, summed over the collectors. */
const kib = (status: string, field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0)

const memory = () => {
  const statuses = collectorPids().map((pid) => readFileSync(`/proc/${pid}/status`, "utf8"))
  const sum = (field: string) => statuses.reduce((total, status) => total + kib(status, field), 0) / 1024
  return { rss: sum("VmRSS"), peak: sum("VmHWM") }
}

/** A collector's own counter `name` (summed over its series). */
const counter = async (collector: PipelineCollector, name: string, match = "") => {
  const text = await (await fetch(`http://${collector.telemetryTarget}/metrics`)).text()
  return text.split("\n").filter((line) => line.startsWith(name) && line.includes(match))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0)
}

/** A span of `tracer` under `parent`, lasting `ms`, ended at `end`. */
const span = (tracer: Tracer, name: string, parent: ReturnType<typeof context.active>, end: number, ms: number) => {
  const started = tracer.startSpan(name, { startTime: end - ms }, parent)
  started.end(end)
  return trace.setSpan(parent, started)
}

/** Three services' tracers exporting to `endpoint`, and a function making one trace of the network's shape. */
const generator = (endpoint: string) => {
  const providers = ["sending-dag", "presence", "poh-node"].map((service) =>
    new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": service }),
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), {
        maxQueueSize: 100_000,
        maxExportBatchSize: 1_000,
        scheduledDelayMillis: 200
      })]
    }))
  const [dag, presence, poh] = providers.map((provider) => provider.getTracer("bench"))
  const oneTrace = () => {
    const now = Date.now()
    const root = dag!.startSpan("POST /tx", { startTime: now - 20 })
    const inRoot = trace.setSpan(context.active(), root)
    const lookup = span(dag!, "presence.PresenceService/OnlineNodes", span(dag!, "Presence.onlineNodes", inRoot, now - 15, 4), now - 15, 3)
    span(presence!, "presence.PresenceService/OnlineNodes", lookup, now - 16, 1)
    const call = span(dag!, "poh.PohService/Request", span(dag!, "Poh.request", inRoot, now - 4, 10), now - 5, 8)
    span(poh!, "Poh.sequence", span(poh!, "poh.PohService/Request", call, now - 6, 5), now - 7, 1)
    span(dag!, "insert dag.transactions", span(dag!, "Storage.persist", inRoot, now - 1, 3), now - 1, 2)
    root.end(now)
  }
  return { oneTrace, flush: () => Promise.all(providers.map((provider) => provider.shutdown())) }
}

/** Sends `rate` spans/s (whole traces, every 10 ms) for `ms`. */
const drive = async (oneTrace: () => void, rate: number, ms: number) => {
  const perTick = rate / spansPerTrace / 100
  let owed = 0
  const end = Date.now() + ms
  while (Date.now() < end) {
    owed += perTick
    for (; owed >= 1; owed--) oneTrace()
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Starts a topology's collectors (pinned to core 0) and says which one receives and which send to Jaeger. */
const topologies = {
  "one tier": async (jaegerEndpoint: string) => {
    const collector = await startPipelineCollector("collector", { jaegerEndpoint })
    return { all: [collector], entry: collector, samplers: [collector], tiers: 1 }
  },
  "two tiers": async (jaegerEndpoint: string) => {
    const samplers = [
      await startPipelineCollector("sampler", { jaegerEndpoint }),
      await startPipelineCollector("sampler", { jaegerEndpoint })
    ]
    const gateway = await startPipelineCollector("gateway", { samplers: samplers.map((s) => s.otlpEndpoint) })
    return { all: [gateway, ...samplers], entry: gateway, samplers, tiers: 2 }
  }
}

console.log(pinToCore1())
const jaeger = await startJaeger()
/** The sum over `collectors` of their counter `name` (series matching `match`). */
const summed = async (collectors: ReadonlyArray<PipelineCollector>, name: string, match = "") =>
  (await Promise.all(collectors.map((c) => counter(c, name, match)))).reduce((a, b) => a + b, 0)
const sentToJaeger = (samplers: ReadonlyArray<PipelineCollector>) =>
  summed(samplers, "otelcol_exporter_sent_spans", "otlp_grpc/traces")
const settle = () => new Promise((resolve) => setTimeout(resolve, 12_000)) // decision_wait is 10 s

console.log(
  "| topology | spans/s sent | accepted | at the samplers | kept (sent to Jaeger) | CPU % of a core per 1 000 spans/s | " +
    "RSS MiB at the end (peak) |"
)
console.log("|---|---|---|---|---|---|---|")
for (const [name, start] of Object.entries(topologies)) {
  for (const rate of rates) {
    const { all, entry, samplers, tiers } = await start(jaeger.otlpEndpoint)
    const atSamplers = () => summed(samplers, "otelcol_receiver_accepted_spans")
    for (const pid of collectorPids()) execFileSync("taskset", ["-a", "-p", "-c", "0", pid], { stdio: "ignore" })
    const { oneTrace, flush } = generator(entry.otlpEndpoint)
    await drive(oneTrace, rate, 3_000)
    await settle()
    const before = {
      cpu: childCpu(["otelcol"])["otelcol"]!,
      accepted: await counter(entry, "otelcol_receiver_accepted_spans"),
      atSamplers: await atSamplers(),
      kept: await sentToJaeger(samplers)
    }
    await drive(oneTrace, rate, seconds * 1000)
    const { rss, peak } = memory()
    await settle()
    // Every span accepted in the measured seconds has been decided and sent by now: the CPU time since is its cost.
    const cpuSeconds = (childCpu(["otelcol"])["otelcol"]! - before.cpu) / 1e6
    const accepted = await counter(entry, "otelcol_receiver_accepted_spans") - before.accepted
    const kept = await sentToJaeger(samplers) - before.kept
    const sampled = tiers === 1 ? "(the same)" : String(await atSamplers() - before.atSamplers)
    console.log(
      `| ${name} | ${rate} | ${(accepted / seconds).toFixed(0)}/s | ${sampled} | ${kept} of ${accepted} (${(100 * kept / accepted).toFixed(1)} %) | ` +
        `${(100 * 1000 * cpuSeconds / accepted).toFixed(1)} % | ${rss.toFixed(0)} (${peak.toFixed(0)}) |`
    )
    await flush()
    await Promise.all(all.map((collector) => collector.dispose()))
  }
}
await jaeger.stop()
