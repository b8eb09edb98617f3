/**
 * Starts the real servers of the integration tests on 127.0.0.1: FerretDB
 * (MongoDB wire protocol, SQLite backend), Jaeger v2 (OTLP gRPC in, HTTP query
 * API out, memory storage) and Prometheus. Each takes a free port and a temp
 * dir; every process still running is killed when the test process exits.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises"
import { connect, createServer } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { MongoClient } from "mongodb"
import { cacheDir, ferretdbBinary, ferretdbVersion, jaegerBinary, jaegerVersion } from "./Cache.ts"

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
export interface PromtoolResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

const readyTimeoutMs = 30_000
const running = new Set<ChildProcess>()
const tempDirs = new Set<string>()

process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

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
  let server: Server | undefined
  const start = async (): Promise<void> => {
    if (server !== undefined) return
    server = launch("FerretDB", ferretdbBinary, args, { DO_NOT_TRACK: "1" })
    try {
      await waitReady(server, async () => (await tcpOpen(port)) && (await mongoPing(uri)))
    } catch (error) {
      server = undefined
      throw error
    }
  }
  const stop = async (): Promise<void> => {
    const stopping = server
    server = undefined
    // FerretDB waits 3 s for open client connections unless sent a second SIGTERM.
    if (stopping !== undefined) await terminate(stopping, 100)
  }
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
  let server: Server | undefined
  const start = async (): Promise<void> => {
    if (server !== undefined) return
    server = launch("Jaeger", jaegerBinary, [`--config=${config}`], {
      JAEGER_OTLP_GRPC_ENDPOINT: `127.0.0.1:${otlpPort}`,
      JAEGER_QUERY_HTTP_ENDPOINT: `127.0.0.1:${queryPort}`
    })
    try {
      await waitReady(server, async () => (await httpOk(`${queryUrl}/api/services`)) && (await tcpOpen(otlpPort)))
    } catch (error) {
      server = undefined
      throw error
    }
  }
  await start()
  return {
    otlpEndpoint: `http://127.0.0.1:${otlpPort}`,
    queryUrl,
    version: jaegerVersion,
    stop: async () => {
      const stopping = server
      server = undefined
      if (stopping !== undefined) await terminate(stopping)
    },
    start
  }
}

/** Starts Prometheus scraping `scrapeTargets` every second, with exemplar storage and the lifecycle API on. */
export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  const binary = requireOnPath("prometheus")
  const port = options.port ?? await freePort()
  const dir = await makeTempDir("prometheus")
  const url = `http://127.0.0.1:${port}`
  const configFile = join(dir, "prometheus.yml")
  // JSON is YAML, so no YAML library is needed.
  const config = options.config ?? {
    global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [{ job_name: "test", static_configs: [{ targets: options.scrapeTargets ?? [] }] }]
  }
  let server: Server | undefined
  try {
    await writeFile(configFile, JSON.stringify(config, null, 2))
    server = launch("Prometheus", binary, [
      `--config.file=${configFile}`,
      `--web.listen-address=127.0.0.1:${port}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      "--enable-feature=exemplar-storage",
      "--web.enable-lifecycle",
      ...(options.extraArgs ?? [])
    ])
    await waitReady(server, () => httpOk(`${url}/-/ready`))
    const buildInfo = (await (await fetch(`${url}/api/v1/status/buildinfo`)).json()) as { data: { version: string } }
    const started = server
    return {
      url,
      version: buildInfo.data.version,
      configFile,
      stop: async () => {
        await terminate(started)
        await removeTempDir(dir)
      }
    }
  } catch (error) {
    if (server !== undefined) await terminate(server)
    await removeTempDir(dir)
    throw error
  }
}

/** Runs `promtool <args>` with `input` on stdin (e.g. `promtool(["check", "metrics"], text)`). */
export function promtool(args: ReadonlyArray<string>, input = ""): Promise<PromtoolResult> {
  const binary = requireOnPath("promtool")
  return new Promise((resolve, reject) => {
    const child = execFile(binary, [...args], (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : undefined
      if (code === undefined) reject(error)
      else resolve({ code, stdout, stderr })
    })
    child.stdin?.end(input)
  })
}

/** A spawned server process and the last lines it printed. */
interface Server {
  readonly name: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
  readonly output: ReadonlyArray<string>
}

/**
 * Starts a server in a process group of its own: a terminal's Ctrl-C, which
 * reaches every process of the foreground group, must not stop it before the
 * programs using it have finished; its owner stops it.
 */
function launch(name: string, binary: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Server {
  const child = spawn(binary, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
    detached: true
  })
  running.add(child)
  const output: string[] = []
  const keep = (chunk: Buffer): void => {
    output.push(
      ...chunk
        .toString("utf8")
        .split("\n")
        .filter((line) => line.trim() !== "")
    )
    output.splice(0, output.length - 40)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  child.on("error", (error) => output.push(String(error)))
  const exited = new Promise<void>((resolve) =>
    child.once("close", () => {
      running.delete(child)
      resolve()
    })
  )
  return { name, child, exited, output }
}

function hasExited(server: Server): boolean {
  return server.child.exitCode !== null || server.child.signalCode !== null
}

async function waitReady(server: Server, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + readyTimeoutMs
  while (Date.now() < deadline) {
    if (hasExited(server)) {
      const status = server.child.exitCode ?? server.child.signalCode
      throw new Error(
        `${server.name} exited (${status}) before it was ready. Last output:\n${server.output.join("\n")}`
      )
    }
    if (await ready().catch(() => false)) return
    await sleep(100)
  }
  await terminate(server)
  throw new Error(`${server.name} was not ready within ${readyTimeoutMs} ms. Last output:\n${server.output.join("\n")}`)
}

/** SIGTERM; again after `repeatAfterMs` if given and still running; SIGKILL after 5 s. */
async function terminate(server: Server, repeatAfterMs?: number): Promise<void> {
  const signal = (name: NodeJS.Signals): void => {
    if (!hasExited(server)) server.child.kill(name)
  }
  signal("SIGTERM")
  const timers = [setTimeout(() => signal("SIGKILL"), 5_000)]
  if (repeatAfterMs !== undefined) timers.push(setTimeout(() => signal("SIGTERM"), repeatAfterMs))
  await server.exited
  for (const timer of timers) clearTimeout(timer)
}

/** A port of 127.0.0.1 that was free a moment ago: bound, then closed. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once("error", reject)
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })
}

/** `port` when nothing listens on it on 127.0.0.1, else a free one. */
export function preferredPort(port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once("error", () => resolve(freePort()))
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(port)))
  })
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })
}

async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
  await response.body?.cancel()
  return response.ok
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

async function makeTempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dag-obs-${name}-`))
  tempDirs.add(dir)
  return dir
}

async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

function requireFile(binary: string, name: string, ownServerEnv: string): void {
  if (existsSync(binary)) return
  throw new Error(
    `${name} binary ${binary} not found: run "bash scripts/provision.sh" (builds FerretDB ${ferretdbVersion} / ` +
      `Jaeger ${jaegerVersion} into ${cacheDir}) or set ${ownServerEnv} to your own server`
  )
}

function requireOnPath(command: string): string {
  const found = (process.env.PATH ?? "")
    .split(delimiter)
    .filter((dir) => dir !== "")
    .map((dir) => join(dir, command))
    .find((path) => existsSync(path))
  if (found === undefined) {
    throw new Error(
      `${command} not found on PATH: run "bash scripts/provision.sh" (installs Debian's prometheus and promtool)`
    )
  }
  return found
}
