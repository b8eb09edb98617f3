/**
 * The launcher's telemetry pipeline past the nodes (examples/network.ts): a
 * Jaeger with an OpenTelemetry Collector in front of it ({@link traces}: the
 * nodes' spans and logs → span metrics and tail sampling → Jaeger, logs → a
 * file), the file_sd file that lists every node and worker for Prometheus
 * ({@link discovery}), and a second Prometheus that receives the recorded
 * series by remote write, standing in for a long-term store
 * ({@link longTermStore}). Configuration and launch only: the collector and
 * Prometheus do the work.
 */
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { Effect, Option } from "effect"
import { fileSdGroups, type Target } from "../dashboards/src/scrape.ts"
import { jaegerBinary, otelcolBinary } from "../servers/Cache.ts"
import { defaultQueryUrl } from "../scripts/trace.ts"
import { startPipelineCollector } from "../servers/Pipeline.ts"
import { type Prometheus, preferredPort, startJaeger, startPrometheus } from "../servers/Servers.ts"

/**
 * The share of ordinary traces the launcher's collector keeps: all of them unless `TAIL_SAMPLING_PERCENTAGE` says
 * otherwise. On one machine every trace fits, and a newcomer who posts a transaction and asks for its trace (or
 * follows an exemplar) finds it; the config files' own default, 10 %, is for a network that cannot keep them all.
 */
const percentage = () => process.env["TAIL_SAMPLING_PERCENTAGE"] ?? "100"

/** The collector's settings a user may change, shown with their values. */
const sampling = () => {
  const threshold = process.env["TAIL_SAMPLING_LATENCY_THRESHOLD_MS"] ?? "500"
  return `errors, traces over ${threshold} ms and ${percentage()} % of the rest kept (TAIL_SAMPLING_*; ` +
    "TAIL_SAMPLING_PERCENTAGE=10 keeps a tenth of the rest, as the shipped configs do)"
}

/**
 * The collector between the nodes and Jaeger (role `collector` of servers/Pipeline.ts), when it is built: the
 * nodes' OTLP spans and logs go to it; it makes span metrics of every span (for Prometheus, on 127.0.0.1:8889 when
 * free), keeps the traces its tail sampling keeps and sends them to `jaegerEndpoint`, and writes the log records to
 * `dataDir/collector/logs.jsonl`. Its own metrics are on 127.0.0.1:8888 when free. Stopped with the scope.
 */
const collector = (jaegerEndpoint: string, dataDir: string) =>
  Effect.gen(function*() {
    if (!existsSync(otelcolBinary)) {
      return { env: {}, targets: [], description: ["not started (run `npm run provision`): spans straight to Jaeger"] }
    }
    const logsFile = join(dataDir, "collector", "logs.jsonl")
    mkdirSync(dirname(logsFile), { recursive: true })
    const [telemetryPort, spanMetricsPort] = yield* Effect.promise(() =>
      Promise.all([preferredPort(8888), preferredPort(8889)])
    )
    const started = yield* Effect.acquireRelease(
      Effect.promise(() =>
        startPipelineCollector("collector", {
          jaegerEndpoint,
          logsFile,
          telemetryPort,
          spanMetricsPort,
          env: { TAIL_SAMPLING_PERCENTAGE: percentage() }
        })
      ),
      (server) => Effect.promise(() => server.dispose())
    )
    return {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: started.otlpEndpoint, OTEL_LOGS_EXPORTER: "otlp" },
      targets: [started.telemetryTarget, started.spanMetricsTarget!],
      description: [
        `OpenTelemetry Collector ${started.version}: OTLP gRPC ${started.otlpEndpoint}; ${sampling()}, to Jaeger`,
        `             span metrics http://${started.spanMetricsTarget}/metrics, its own http://${started.telemetryTarget}/metrics`,
        `             logs ${logsFile}`
      ]
    }
  })

/**
 * Where the nodes' spans (and logs) go: the endpoint named, else a local Jaeger when one is built, through a local
 * collector when one is built, else the default.
 */
export const traces = (named: Option.Option<string>, dataDir: string) =>
  Effect.gen(function*() {
    if (Option.isSome(named)) return { env: {}, collectors: [], description: [`OTLP gRPC to ${named.value}`] }
    if (!existsSync(jaegerBinary)) {
      return {
        env: {},
        collectors: [],
        description: ["OTLP gRPC to http://localhost:4317 (run `npm run provision` for a local Jaeger and Prometheus)"]
      }
    }
    const wanted = Number(new URL(defaultQueryUrl).port)
    const queryPort = yield* Effect.promise(() => preferredPort(wanted))
    const jaeger = yield* Effect.acquireRelease(
      Effect.promise(() => startJaeger({ queryPort })),
      (server) => Effect.promise(() => server.stop())
    )
    const trace = queryPort === wanted ? "npm run trace" : `JAEGER_QUERY_URL=${jaeger.queryUrl} npm run trace`
    const through = yield* collector(jaeger.otlpEndpoint, dataDir)
    return {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint, ...through.env },
      collectors: through.targets,
      description: [
        `Jaeger ${jaeger.version}: OTLP gRPC ${jaeger.otlpEndpoint}, query API ${jaeger.queryUrl}`,
        `             read one: ${trace} -- <trace id>  (every answer's traceresponse header names its trace)`,
        ...through.description.map((line, i) => i === 0 ? `  collector    ${line}` : line)
      ]
    }
  })

/** Writes `targets` to the file_sd `file` at once: a temp file renamed over it, so Prometheus never reads half. */
const writeTargets = (file: string, targets: ReadonlyArray<Target>) => {
  writeFileSync(`${file}.tmp`, `${JSON.stringify(fileSdGroups(targets), null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
}

/** The file_sd file of the network and how to change it. */
export interface Discovery {
  /** Its path. */
  readonly file: string
  /** Lists `target` (replacing the node's earlier address, if any: a PoH node started again may bind another port). */
  readonly set: (target: Target) => Effect.Effect<void>
}

/**
 * The Prometheus file_sd `file` listing every node and worker with its `node`, `region` and `role` labels: empty at
 * first, a node added as it is ready (and kept while it is down, so that its `up` is 0), emptied when the scope
 * closes, the network being stopped on purpose.
 */
export const discovery = (file: string) =>
  Effect.acquireRelease(
    Effect.sync((): Discovery => {
      mkdirSync(dirname(file), { recursive: true })
      const targets = new Map<string, Target>()
      writeTargets(file, [])
      return {
        file,
        set: (target) =>
          Effect.sync(() => {
            targets.set(target.node, target)
            writeTargets(file, [...targets.values()])
          })
      }
    }),
    (listed) => Effect.sync(() => writeTargets(listed.file, []))
  )

/**
 * A Prometheus with its remote-write receiver on (a free loopback port), standing in for a long-term store (Mimir,
 * Thanos, VictoriaMetrics): the network's Prometheus writes its recorded series there. Stopped with the scope.
 */
export const longTermStore = Effect.acquireRelease(
  Effect.promise(() => startPrometheus({ config: { scrape_configs: [] }, extraArgs: ["--web.enable-remote-write-receiver"] })),
  (server: Prometheus) => Effect.promise(() => server.stop())
)
