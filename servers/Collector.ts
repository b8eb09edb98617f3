/**
 * An OpenTelemetry Collector for the integration tests and the example
 * network: the binary built from servers/otelcol by scripts/provision.sh (or
 * $OTELCOL_BINARY), run with a config written per start (an OTLP gRPC
 * receiver on a free loopback port, memory_limiter and batch, traces forwarded
 * to Jaeger over OTLP gRPC when asked, and traces and logs written as OTLP/JSON
 * lines that a test reads back: {@link Collector.spans},
 * {@link Collector.logRecords}), or with config files of the repository
 * merged in order, their `${env:…}` settings given in `env` (servers/Pipeline.ts).
 */
import { existsSync } from "node:fs"
import { readFile, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { cacheDir, otelcolBinary, otelcolVersion } from "./Cache.ts"
import { type CommandResult, freePort, makeTempDir, removeTempDir, restartable, runCommand, tcpOpen } from "./Process.ts"

/** What {@link collectorConfig} builds a config from. */
export interface CollectorConfigOptions {
  /** The OTLP gRPC receiver listens on 127.0.0.1:`otlpPort`. */
  readonly otlpPort: number
  /** Where the file exporters write `traces.jsonl` and `logs.jsonl`. */
  readonly dir: string
  /** An OTLP gRPC endpoint (`http://127.0.0.1:<port>`, Jaeger's) that traces are forwarded to; none when absent. */
  readonly jaegerEndpoint?: string | undefined
}

/** Options of {@link startCollector}. */
export interface CollectorOptions {
  /** Jaeger's OTLP gRPC endpoint, `http://127.0.0.1:<port>`: traces go there as well as to the file. */
  readonly jaegerEndpoint?: string | undefined
  /** The loopback port of the OTLP gRPC receiver; a free one when absent. */
  readonly otlpPort?: number | undefined
  /**
   * A whole config instead of {@link collectorConfig}'s (tail sampling, span metrics, load balancing, …), made from
   * the receiver's port and the collector's temp dir; it must receive OTLP gRPC on 127.0.0.1:`otlpPort`, which is
   * how the collector is seen ready.
   */
  readonly config?: ((options: CollectorConfigOptions) => object) | undefined
  /**
   * Config files merged in order before the written one (which is then `config`'s, or empty): the collector's own
   * merge, as `otelcol --config=a --config=b`. Their receiver must listen on `${env:OTELCOL_OTLP_ENDPOINT}`.
   */
  readonly files?: ReadonlyArray<string> | undefined
  /**
   * The collector's environment over ours, for the files' `${env:…}` settings. Set already:
   * `OTELCOL_OTLP_ENDPOINT` (127.0.0.1:`otlpPort`), `OTELCOL_LOGS_FILE` ({@link Collector.logsFile}) and, with
   * `jaegerEndpoint`, `OTELCOL_TRACES_ENDPOINT`.
   */
  readonly env?: Readonly<Record<string, string>> | undefined
}

/** A span as the file exporter wrote it, with its resource's `service.name`. */
export interface CollectorSpan {
  readonly service: string | undefined
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  /** `1` internal, `2` server, `3` client, … (OTLP's `SpanKind`). */
  readonly kind?: number
  /** Nanoseconds since the epoch, as a decimal string. */
  readonly startTimeUnixNano?: string
  readonly endTimeUnixNano?: string
  /** `code` 2 is ERROR, 1 OK, absent unset. */
  readonly status?: { readonly code?: number; readonly message?: string }
  readonly attributes?: ReadonlyArray<KeyValue>
}

/** A log record as the file exporter wrote it, with its resource's `service.name`. */
export interface CollectorLogRecord {
  readonly service: string | undefined
  readonly traceId?: string
  readonly spanId?: string
  readonly flags?: number
  readonly severityText?: string
  readonly body?: { readonly stringValue?: string }
  readonly attributes?: ReadonlyArray<KeyValue>
}

/** An OTLP/JSON attribute. */
export interface KeyValue {
  readonly key: string
  readonly value: { readonly stringValue?: string; readonly intValue?: string; readonly boolValue?: boolean }
}

/** A running OpenTelemetry Collector; `stop()` keeps its port and files so that `start()` brings it back. */
export interface Collector {
  /** The OTLP gRPC endpoint, `http://127.0.0.1:<port>`, as the OTLP exporters take it. */
  readonly otlpEndpoint: string
  /** What the binary says its version is (`0.161.0` for ours). */
  readonly version: string
  /** The config written for this start (JSON, which is YAML), merged after `files`. */
  readonly configFile: string
  /** Every config file it runs with, in merge order; validated with `otelcol validate` before the start. */
  readonly configFiles: ReadonlyArray<string>
  /** The environment its config files' `${env:…}` settings are read from (over ours). */
  readonly env: Readonly<Record<string, string>>
  /** Its temp dir, removed by `dispose()`. */
  readonly dir: string
  /** OTLP/JSON lines of the traces it received (`ExportTraceServiceRequest` per line), with the default config. */
  readonly tracesFile: string
  /** OTLP/JSON lines of the logs it received (`ExportLogsServiceRequest` per line), with the default config. */
  readonly logsFile: string
  /** The last lines it printed. */
  readonly output: () => ReadonlyArray<string>
  /** Every span in {@link tracesFile} so far (written within ~100 ms of the batch leaving the batch processor). */
  spans(): Promise<ReadonlyArray<CollectorSpan>>
  /** Every log record in {@link logsFile} so far. */
  logRecords(): Promise<ReadonlyArray<CollectorLogRecord>>
  /** Stops the process (SIGTERM: it flushes its pipelines); port, config and files are kept. */
  stop(): Promise<void>
  /** Starts it again with the same config; files are appended to. */
  start(): Promise<void>
  /** Stops it for good and removes its temp dir. */
  dispose(): Promise<void>
}


/**
 * The default config: OTLP gRPC in; memory_limiter and batch; traces to
 * `dir/traces.jsonl` (and to `jaegerEndpoint` when given), logs to
 * `dir/logs.jsonl`; no listener of the collector's own (its metrics are off).
 */
export const collectorConfig = ({ otlpPort, dir, jaegerEndpoint }: CollectorConfigOptions): object => {
  const file = (name: string) => ({ path: join(dir, name), flush_interval: "100ms", append: true })
  const traceExporters = ["file/traces", ...(jaegerEndpoint === undefined ? [] : ["otlp_grpc/jaeger"])]
  const processors = ["memory_limiter", "batch"]
  return {
    receivers: { otlp: { protocols: { grpc: { endpoint: `127.0.0.1:${otlpPort}` } } } },
    processors: {
      memory_limiter: { check_interval: "1s", limit_mib: 512, spike_limit_mib: 128 },
      batch: { timeout: "100ms" }
    },
    exporters: {
      "file/traces": file("traces.jsonl"),
      "file/logs": file("logs.jsonl"),
      ...(jaegerEndpoint === undefined ? {} : {
        "otlp_grpc/jaeger": { endpoint: jaegerEndpoint.replace(/^https?:\/\//, ""), tls: { insecure: true } }
      })
    },
    service: {
      telemetry: { metrics: { level: "none" }, logs: { level: "info" } },
      pipelines: {
        traces: { receivers: ["otlp"], processors, exporters: traceExporters },
        logs: { receivers: ["otlp"], processors, exporters: ["file/logs"] }
      }
    }
  }
}

const requireCollector = (): void => {
  if (existsSync(otelcolBinary)) return
  throw new Error(
    `OpenTelemetry Collector binary ${otelcolBinary} not found: run "bash scripts/provision.sh" (builds the collector ` +
      `${otelcolVersion} of servers/otelcol into ${cacheDir}) or set OTELCOL_BINARY to a collector of your own`
  )
}

const run = (args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}): Promise<CommandResult> =>
  runCommand(otelcolBinary, args, "", env)

const configArgs = (files: ReadonlyArray<string>) => files.map((file) => `--config=${file}`)

/**
 * Runs `otelcol validate` on a config file, on config files merged in order, or on `config` written to a temp
 * file, with `env` over our environment for their `${env:…}` settings.
 */
export async function validateCollectorConfig(
  config: string | ReadonlyArray<string> | object,
  env: Readonly<Record<string, string>> = {}
): Promise<CommandResult> {
  requireCollector()
  if (typeof config === "string") return run(["validate", ...configArgs([config])], env)
  if (Array.isArray(config)) return run(["validate", ...configArgs(config)], env)
  const dir = await makeTempDir("otelcol-validate")
  try {
    await writeFile(join(dir, "config.yaml"), JSON.stringify(config, null, 2))
    return await run(["validate", `--config=${join(dir, "config.yaml")}`], env)
  } finally {
    await removeTempDir(dir)
  }
}

/** The version the collector binary prints (`otelcol version 0.161.0` → `0.161.0`). */
export async function collectorVersion(): Promise<string> {
  requireCollector()
  const { stdout } = await run(["--version"])
  return stdout.trim().split(/\s+/).at(-1) ?? ""
}

type Resource = { readonly attributes?: ReadonlyArray<KeyValue> } | undefined

const serviceName = (resource: Resource) =>
  resource?.attributes?.find((attribute) => attribute.key === "service.name")?.value.stringValue

/** The JSON lines of `file`, none while it does not exist. */
const jsonLines = async (file: string): Promise<ReadonlyArray<Json>> => {
  const text = await readFile(file, "utf8").catch(() => "")
  return text.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line))
}

type Json = Readonly<Record<string, unknown>>

const list = (value: unknown): ReadonlyArray<Json> => (Array.isArray(value) ? value : [])

/** The items of every batch of `file` (`resourceSpans[].scopeSpans[].spans[]`, …), with their `service.name`. */
const items = async <I>(file: string, resources: string, scopes: string, kind: string) =>
  (await jsonLines(file)).flatMap((line) =>
    list(line[resources]).flatMap((resource) =>
      list(resource[scopes]).flatMap((scope) =>
        list(scope[kind]).map((item) => ({ ...(item as I), service: serviceName(resource.resource as Resource) }))
      )
    )
  )

/**
 * Starts a collector with {@link collectorConfig} (or `options.config`, or
 * `options.files`) on a free loopback port, once `otelcol validate` accepts
 * the config; resolves when its OTLP receiver accepts connections.
 */
export async function startCollector(options: CollectorOptions = {}): Promise<Collector> {
  requireCollector()
  const otlpPort = options.otlpPort ?? await freePort()
  const dir = await makeTempDir("otelcol")
  const configFile = join(dir, "config.yaml")
  const tracesFile = join(dir, "traces.jsonl")
  const logsFile = join(dir, "logs.jsonl")
  const configOptions = { otlpPort, dir, jaegerEndpoint: options.jaegerEndpoint }
  const files = options.files ?? []
  const configFiles = [...files, configFile]
  const env = {
    OTELCOL_OTLP_ENDPOINT: `127.0.0.1:${otlpPort}`,
    OTELCOL_LOGS_FILE: logsFile,
    ...(options.jaegerEndpoint === undefined ? {} : {
      OTELCOL_TRACES_ENDPOINT: options.jaegerEndpoint.replace(/^https?:\/\//, "")
    }),
    ...options.env
  }
  const collector = restartable({
    name: "OpenTelemetry Collector",
    binary: otelcolBinary,
    args: configArgs(configFiles),
    env,
    ready: () => tcpOpen(otlpPort)
  })
  const { start, stop } = collector
  try {
    const written = options.config?.(configOptions) ?? (files.length === 0 ? collectorConfig(configOptions) : {})
    await writeFile(configFile, JSON.stringify(written, null, 2))
    const validated = await validateCollectorConfig(configFiles, env)
    if (validated.code !== 0) throw new Error(`collector config ${configFiles.join(" + ")} is invalid:\n${validated.stderr}`)
    const version = await collectorVersion()
    await start()
    return {
      otlpEndpoint: `http://127.0.0.1:${otlpPort}`,
      version,
      configFile,
      configFiles,
      env,
      dir,
      tracesFile,
      logsFile,
      output: collector.output,
      spans: () => items<Omit<CollectorSpan, "service">>(tracesFile, "resourceSpans", "scopeSpans", "spans"),
      logRecords: () => items<Omit<CollectorLogRecord, "service">>(logsFile, "resourceLogs", "scopeLogs", "logRecords"),
      stop,
      start,
      dispose: async () => {
        await stop()
        await removeTempDir(dir)
      }
    }
  } catch (error) {
    await stop()
    await removeTempDir(dir)
    throw error
  }
}
