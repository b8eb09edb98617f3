/**
 * Starts the real servers of the integration tests on 127.0.0.1: FerretDB
 * (MongoDB wire protocol, SQLite backend), Jaeger v2 (OTLP gRPC in, HTTP query
 * API out, memory storage), Prometheus, Alertmanager (servers/Alertmanager.ts)
 * and an OpenTelemetry Collector (servers/Collector.ts); Sloth generates SLO
 * rules (servers/Sloth.ts). Each takes a free port and a temp dir; every process
 * still running is killed when the test process exits (servers/Process.ts).
 */
import { existsSync } from "node:fs"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { MongoClient } from "mongodb"
import { cacheDir, ferretdbBinary, ferretdbVersion, jaegerBinary, jaegerVersion } from "./Cache.ts"
import {
  type CommandResult,
  freePort,
  httpOk,
  makeTempDir,
  removeTempDir,
  requireOnPath,
  restartable,
  runCommand,
  startInTempDir,
  tcpOpen
} from "./Process.ts"

export { freePort, preferredPort } from "./Process.ts"
export {
  type Alertmanager,
  alertmanagerInstalled,
  type AlertmanagerOptions,
  amtool,
  startAlertmanager
} from "./Alertmanager.ts"
export { slothBinary, slothVersion } from "./Cache.ts"
export { slothGenerate, type SlothWindows } from "./Sloth.ts"
export {
  type Collector,
  collectorConfig,
  type CollectorConfigOptions,
  type CollectorLogRecord,
  type CollectorOptions,
  type CollectorSpan,
  collectorVersion,
  startCollector,
  validateCollectorConfig
} from "./Collector.ts"

/** A FerretDB server; `stop()` keeps its port and data so that `start()` brings the same database back. */
export interface FerretDB {
  /** `mongodb://127.0.0.1:<port>/` */
  readonly uri: string
  /** The FerretDB release, e.g. "v1.24.2". */
  readonly version: string
  /** Stops the process (SIGTERM, twice if clients are connected: within ~0.1 s); the data dir and port are kept. */
  stop(): Promise<void>
  /** Starts the process again on the same port and data dir; resolves once it answers a ping. */
  start(): Promise<void>
  /** `stop()` then `start()`. */
  restart(): Promise<void>
  /** Stops the process for good and deletes the data dir. */
  dispose(): Promise<void>
}

/** A Jaeger v2 server; `stop()` keeps its ports so that `start()` brings it back at the same addresses. */
export interface Jaeger {
  /** OTLP gRPC endpoint, `http://127.0.0.1:<port>`, as `@opentelemetry/exporter-trace-otlp-grpc` takes it. */
  readonly otlpEndpoint: string
  /** Base URL of the HTTP query API (`/api/services`, `/api/traces/<id>`, ...), `http://127.0.0.1:<port>`. */
  readonly queryUrl: string
  /** The Jaeger module version, e.g. "v1.76.0". */
  readonly version: string
  /** Stops the process (its traces, kept in memory, are gone); the ports are kept. */
  stop(): Promise<void>
  /** Starts the process again on the same ports; resolves once both answer. */
  start(): Promise<void>
}

/** What a Prometheus started by `startPrometheus` scrapes and evaluates. */
export interface PrometheusOptions {
  /** `host:port` targets scraped at `/metrics` every second (ignored when `config` is given). */
  readonly scrapeTargets?: ReadonlyArray<string>
  /** Absolute paths of rule files, evaluated every second (ignored when `config` is given). */
  readonly ruleFiles?: ReadonlyArray<string>
  /** A whole prometheus.yml, as an object, instead of the one made of `scrapeTargets` and `ruleFiles`. */
  readonly config?: object
  /** The loopback port to listen on; a free one when absent. */
  readonly port?: number
  /** More `prometheus` command-line flags. */
  readonly extraArgs?: ReadonlyArray<string>
}

/** A Prometheus server. */
export interface Prometheus {
  /** Base URL, `http://127.0.0.1:<port>` (`/api/v1/query`, `/-/reload`, ...). */
  readonly url: string
  /** The Prometheus version reported by `/api/v1/status/buildinfo`, e.g. "2.42.0+ds". */
  readonly version: string
  /** The generated prometheus.yml (rewrite it, then POST `/-/reload`). */
  readonly configFile: string
  /** Stops the process and deletes its temp dir. */
  stop(): Promise<void>
}

/** Exit code and output of a `promtool` run. */
export type PromtoolResult = CommandResult

/** Options of {@link startFerretDB}. */
export interface FerretDBOptions {
  /** Keep the data here, across runs (`dispose()` leaves it), instead of in a fresh temporary directory. */
  readonly dataDir?: string
}

/**
 * Starts FerretDB with a SQLite data dir (fresh and temporary unless `options.dataDir` names one to keep) on a free
 * loopback port; telemetry and debug listener off.
 */
export async function startFerretDB(options: FerretDBOptions = {}): Promise<FerretDB> {
  requireFile(ferretdbBinary, "FerretDB", "MONGODB_URI")
  const port = await freePort()
  const kept = options.dataDir
  if (kept !== undefined) await mkdir(kept, { recursive: true })
  const dir = kept ?? await makeTempDir("ferretdb")
  const removeData = () => kept === undefined ? removeTempDir(dir) : Promise.resolve()
  const uri = `mongodb://127.0.0.1:${port}/`
  const args = [
    `--listen-addr=127.0.0.1:${port}`,
    "--handler=sqlite",
    `--sqlite-url=file:${dir}/`,
    `--state-dir=${dir}`,
    "--telemetry=disable",
    "--debug-addr=-"
  ]
  const { start, stop } = restartable({
    name: "FerretDB",
    binary: ferretdbBinary,
    args,
    env: { DO_NOT_TRACK: "1" },
    ready: async () => (await tcpOpen(port)) && (await mongoPing(uri)),
    // FerretDB waits 3 s for open client connections unless sent a second SIGTERM.
    repeatTermAfterMs: 100
  })
  try {
    await start()
  } catch (error) {
    await removeData()
    throw error
  }
  return {
    uri,
    version: ferretdbVersion,
    stop,
    start,
    restart: async () => {
      await stop()
      await start()
    },
    dispose: async () => {
      await stop()
      await removeData()
    }
  }
}

/** Options of {@link startJaeger}: the loopback ports to use, free ones where absent. */
export interface JaegerOptions {
  readonly otlpPort?: number
  readonly queryPort?: number
}

/** Starts Jaeger v2 with servers/jaeger/config.yaml: OTLP gRPC receiver, memory storage, HTTP query API. */
export async function startJaeger(options: JaegerOptions = {}): Promise<Jaeger> {
  requireFile(jaegerBinary, "Jaeger", "OTEL_EXPORTER_OTLP_ENDPOINT+JAEGER_QUERY_URL")
  const [otlpPort, queryPort] = await Promise.all([options.otlpPort ?? freePort(), options.queryPort ?? freePort()])
  const queryUrl = `http://127.0.0.1:${queryPort}`
  const config = fileURLToPath(new URL("./jaeger/config.yaml", import.meta.url))
  const { start, stop } = restartable({
    name: "Jaeger",
    binary: jaegerBinary,
    args: [`--config=${config}`],
    env: { JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${otlpPort}`, JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${queryPort}` },
    ready: async () => (await httpOk(`${queryUrl}/api/services`)) && (await tcpOpen(otlpPort))
  })
  await start()
  return {
    otlpEndpoint: `http://127.0.0.1:${otlpPort}`,
    queryUrl,
    version: jaegerVersion,
    stop,
    start
  }
}

/** Starts Prometheus scraping `scrapeTargets` every second, with exemplar storage and the lifecycle API on. */
export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const binary = requireOnPath("prometheus")
  const port = options.port ?? await freePort()
  const url = `http://127.0.0.1:${port}`
  // JSON is YAML, so no YAML library is needed.
  const config = options.config ?? {
    global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [{ job_name: "test", static_configs: [{ targets: options.scrapeTargets ?? [] }] }]
  }
  return startInTempDir("Prometheus", async (dir) => {
    await writeFile(join(dir, "prometheus.yml"), JSON.stringify(config, null, 2))
    return {
      binary,
      args: [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        "--enable-feature=exemplar-storage",
        "--web.enable-lifecycle",
        ...(options.extraArgs ?? [])
      ],
      readyUrl: `${url}/-/ready`
    }
  }, async (dir) => {
    const buildInfo = (await (await fetch(`${url}/api/v1/status/buildinfo`)).json()) as { data: { version: string } }
    return { url, version: buildInfo.data.version, configFile: join(dir, "prometheus.yml") }
  })
}

/** Runs `promtool <args>` with `input` on stdin (e.g. `promtool(["check", "metrics"], text)`). */
export function promtool(args: ReadonlyArray<string>, input = ""): Promise<PromtoolResult> {
  return runCommand(requireOnPath("promtool"), args, input)
}

async function mongoPing(uri: string): Promise<boolean> {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000, connectTimeoutMS: 2_000 })
  try {
    const reply = await client.db("admin").command({ ping: 1 })
    return reply.ok === 1
  } finally {
    await client.close()
  }
}

function requireFile(binary: string, name: string, ownServerEnv: string): void {
  if (existsSync(binary)) return
  throw new Error(
    `${name} binary ${binary} not found: run "bash scripts/provision.sh" (builds FerretDB ${ferretdbVersion} / ` +
      `Jaeger ${jaegerVersion} into ${cacheDir}) or set ${ownServerEnv} to your own server`
  )
}

