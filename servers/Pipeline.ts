/**
 * The telemetry pipeline's collectors, each a role made of the config files
 * of servers/otelcol/configs merged in order (the collector's own merge of
 * several `--config` files; each file's settings are `${env:…}` variables with
 * defaults): the same files run in the tests, under `npm start` and in
 * examples/compose. {@link startPipelineCollector} starts one role on free
 * loopback ports.
 */
import { fileURLToPath } from "node:url"
import { type Collector, startCollector } from "./Collector.ts"
import { freePort } from "./Process.ts"

/**
 * Each role's config files (servers/otelcol/configs/<name>.yaml), merged in order:
 * - `collector`: one tier. Span metrics of everything received, tail sampling to Jaeger, logs to a file.
 * - `gateway`: the first of two tiers. Span metrics of everything received, traces on to the samplers routed by trace
 *   id (`OTELCOL_SAMPLERS`), logs to a file.
 * - `sampler`: the second tier. Tail sampling to Jaeger (`OTELCOL_TRACES_ENDPOINT`).
 * - `agent`: one per host, in front of the gateway (`OTELCOL_GATEWAY_ENDPOINT`): traces and logs forwarded.
 */
export const roles = {
  collector: ["base", "span-metrics", "tail-sampling", "logs"],
  gateway: ["base", "span-metrics", "load-balancing", "logs"],
  sampler: ["base", "tail-sampling"],
  agent: ["base", "forward"]
} as const satisfies Record<string, ReadonlyArray<string>>

/** A role of {@link roles}. */
export type Role = keyof typeof roles

/** The absolute paths of `role`'s config files, in merge order. */
export const roleFiles = (role: Role): ReadonlyArray<string> =>
  roles[role].map((name) => fileURLToPath(new URL(`./otelcol/configs/${name}.yaml`, import.meta.url)))

/** The roles whose files include the span metrics (and so serve them for Prometheus). */
const withSpanMetrics = (role: Role) => (roles[role] as ReadonlyArray<string>).includes("span-metrics")

/** Options of {@link startPipelineCollector}. */
export interface PipelineOptions {
  /** Jaeger's OTLP gRPC endpoint, `http://127.0.0.1:<port>`: where a `collector` or `sampler` sends what it keeps. */
  readonly jaegerEndpoint?: string | undefined
  /** A `gateway`'s samplers, their OTLP endpoints (`http://127.0.0.1:<port>`). */
  readonly samplers?: ReadonlyArray<string> | undefined
  /** An `agent`'s gateway, its OTLP endpoint. */
  readonly gatewayEndpoint?: string | undefined
  /** Where the log records go (a `collector` or `gateway`); the collector's temp dir by default. */
  readonly logsFile?: string | undefined
  /** Every span received also written to {@link Collector.tracesFile} (read by {@link Collector.spans}): for tests. */
  readonly recordReceived?: boolean | undefined
  /** More of the files' `${env:…}` settings (`TAIL_SAMPLING_PERCENTAGE`, …). */
  readonly env?: Readonly<Record<string, string>> | undefined
  /** The loopback ports of its own metrics and of the span metrics; free ones when absent. */
  readonly telemetryPort?: number | undefined
  readonly spanMetricsPort?: number | undefined
}

/** A collector of the pipeline, with where it serves its metrics. */
export interface PipelineCollector extends Collector {
  readonly role: Role
  /** `host:port` of the collector's own metrics (`otelcol_*`) at `/metrics`. */
  readonly telemetryTarget: string
  /** `host:port` of the span metrics at `/metrics`, for the roles that make them. */
  readonly spanMetricsTarget: string | undefined
}

const hostPort = (endpoint: string) => endpoint.replace(/^https?:\/\//, "")

/** Every span the receiver takes, as it came, to the file {@link Collector.spans} reads. */
const recordReceived = (dir: string) => ({
  exporters: { "file/received": { path: `${dir}/traces.jsonl`, flush_interval: "100ms", append: true } },
  service: { pipelines: { "traces/received": { receivers: ["otlp"], exporters: ["file/received"] } } }
})

/** Starts `role` on free loopback ports: OTLP gRPC in, its own metrics and (gateway, collector) span metrics out. */
export async function startPipelineCollector(role: Role, options: PipelineOptions = {}): Promise<PipelineCollector> {
  const telemetryPort = options.telemetryPort ?? await freePort()
  const spanMetricsTarget = withSpanMetrics(role) ? `127.0.0.1:${options.spanMetricsPort ?? await freePort()}` : undefined
  const env = {
    OTELCOL_TELEMETRY_PORT: String(telemetryPort),
    ...(spanMetricsTarget === undefined ? {} : { OTELCOL_SPAN_METRICS_ENDPOINT: spanMetricsTarget }),
    ...(options.samplers === undefined ? {} : { OTELCOL_SAMPLERS: `[${options.samplers.map(hostPort).join(", ")}]` }),
    ...(options.gatewayEndpoint === undefined ? {} : { OTELCOL_GATEWAY_ENDPOINT: hostPort(options.gatewayEndpoint) }),
    ...(options.logsFile === undefined ? {} : { OTELCOL_LOGS_FILE: options.logsFile }),
    ...options.env
  }
  const collector = await startCollector({
    files: roleFiles(role),
    env,
    jaegerEndpoint: options.jaegerEndpoint,
    ...(options.recordReceived === true ? { config: ({ dir }) => recordReceived(dir) } : {})
  })
  return { ...collector, role, telemetryTarget: `127.0.0.1:${telemetryPort}`, spanMetricsTarget }
}
