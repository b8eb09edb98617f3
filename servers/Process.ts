/**
 * How servers/ runs a server: a process in a group of its own, its last lines
 * of output kept for errors, readiness polled, SIGTERM then SIGKILL; free
 * loopback ports; temporary directories. Every process still running is
 * killed, and every temporary directory removed, when the test process exits.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process"
import { existsSync, readFileSync, rmSync } from "node:fs"
import { mkdtemp, rm } from "node:fs/promises"
import { connect, createServer } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import { setTimeout as sleep } from "node:timers/promises"

const readyTimeoutMs = 30_000
const running = new Set<ChildProcess>()
const tempDirs = new Set<string>()

process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

/** A spawned server process and the last lines it printed. */
export interface Server {
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
export function launch(name: string, binary: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Server {
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

/** Whether the process has exited (or was killed by a signal). */
export function hasExited(server: Server): boolean {
  return server.child.exitCode !== null || server.child.signalCode !== null
}

/** Polls `ready` every 100 ms until it answers true; fails with the last output if the process exits or 30 s pass. */
export async function waitReady(server: Server, ready: () => Promise<boolean>): Promise<void> {
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
export async function terminate(server: Server, repeatAfterMs?: number): Promise<void> {
  const signal = (name: NodeJS.Signals): void => {
    if (!hasExited(server)) server.child.kill(name)
  }
  signal("SIGTERM")
  const timers = [setTimeout(() => signal("SIGKILL"), 5_000)]
  if (repeatAfterMs !== undefined) timers.push(setTimeout(() => signal("SIGTERM"), repeatAfterMs))
  await server.exited
  for (const timer of timers) clearTimeout(timer)
}

/** A server process that can be stopped and started again with the same command line. */
export interface Restartable {
  /** Launches the process unless it runs; resolves once `ready` answers true. */
  start(): Promise<void>
  /** Stops the process if it runs (see {@link terminate}). */
  stop(): Promise<void>
  /** The last lines the latest process printed. */
  output(): ReadonlyArray<string>
}

/** What {@link restartable} launches and how it knows the process is ready. */
export interface RestartableOptions {
  readonly name: string
  readonly binary: string
  readonly args: ReadonlyArray<string>
  readonly env?: Record<string, string>
  readonly ready: () => Promise<boolean>
  /** SIGTERM again after this many ms on stop (FerretDB waits for its clients after the first one). */
  readonly repeatTermAfterMs?: number
}

/** A {@link Restartable} of `options`; nothing is launched before `start()`. */
export function restartable(options: RestartableOptions): Restartable {
  let server: Server | undefined
  let last: Server | undefined
  return {
    start: async () => {
      if (server !== undefined) return
      server = last = launch(options.name, options.binary, options.args, options.env)
      try {
        await waitReady(server, options.ready)
      } catch (error) {
        server = undefined
        throw error
      }
    },
    stop: async () => {
      const stopping = server
      server = undefined
      if (stopping !== undefined) await terminate(stopping, options.repeatTermAfterMs)
    },
    output: () => last?.output ?? []
  }
}

/** Exit code and output of a command. */
export interface CommandResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `binary args` with `input` on stdin and `env` over our environment; resolves with its exit code and output. */
export function runCommand(
  binary: string,
  args: ReadonlyArray<string>,
  input = "",
  env: Readonly<Record<string, string>> = {}
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(binary, [...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : undefined
      if (code === undefined) reject(error)
      else resolve({ code, stdout, stderr })
    })
    child.stdin?.end(input)
  })
}

/**
 * The ports the kernel hands to outgoing connections and to `listen(0)`
 * (`net.ipv4.ip_local_port_range`): a port chosen there can be taken by any
 * connection between the moment it is chosen and the moment a server binds it.
 */
const ephemeralLow = ((): number => {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > 12_000 ? low : 32_768
  } catch {
    return 32_768
  }
})()
const handedOut = new Set<number>()

/** Whether `port` of 127.0.0.1 can be bound now (bound, then closed). */
const bindable = (port: number): Promise<number | undefined> =>
  new Promise((resolve) => {
    const probe = createServer()
    probe.once("error", () => resolve(undefined))
    probe.listen(port, "127.0.0.1", () => {
      const address = probe.address()
      probe.close(() => resolve(typeof address === "object" && address !== null ? address.port : undefined))
    })
  })

/**
 * A port of 127.0.0.1 that was free a moment ago, for a server started next:
 * chosen at random below the ephemeral range, so no outgoing connection takes
 * it before the server binds it, and never twice in one process.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const candidate = 10_000 + Math.floor(Math.random() * (ephemeralLow - 10_000))
    if (handedOut.has(candidate)) continue
    if (await bindable(candidate) === candidate) {
      handedOut.add(candidate)
      return candidate
    }
  }
  const port = await bindable(0)
  if (port === undefined) throw new Error("no free port on 127.0.0.1")
  return port
}

/** `count` distinct ports of {@link freePort}. */
export async function freePorts(count: number): Promise<ReadonlyArray<number>> {
  const ports: number[] = []
  while (ports.length < count) ports.push(await freePort())
  return ports
}

/** `port` when nothing listens on it on 127.0.0.1, else a free one. */
export function preferredPort(port: number): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer()
    probe.once("error", () => resolve(freePort()))
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve(port)))
  })
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })
}

/** Whether `GET url` answers 2xx within 2 s. */
export async function httpOk(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
  await response.body?.cancel()
  return response.ok
}

/** A fresh directory under the system temp dir, removed at exit unless {@link removeTempDir} removed it first. */
export async function makeTempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `dag-obs-${name}-`))
  tempDirs.add(dir)
  return dir
}

/** Removes a directory made by {@link makeTempDir}. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

/** The absolute path of `command` on PATH; throws, naming `scripts/provision.sh`, when it is not there. */
export function requireOnPath(command: string): string {
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

/** How {@link startInTempDir} launches a server once its directory is ready. */
export interface TempDirLaunch {
  readonly binary: string
  readonly args: ReadonlyArray<string>
  /** A URL that answers 2xx once the server is ready. */
  readonly readyUrl: string
}

/**
 * Starts the server `name` with a fresh temporary directory: `prepare` writes what it needs there and says how to
 * launch it; once ready, `describe` says what the caller gets back, with `stop()` added (terminates the process,
 * removes the directory). On any failure the process is terminated and the directory removed.
 */
export async function startInTempDir<A extends object>(
  name: string,
  prepare: (dir: string) => Promise<TempDirLaunch>,
  describe: (dir: string) => Promise<A>
): Promise<A & { readonly stop: () => Promise<void> }> {
  const dir = await makeTempDir(name.toLowerCase())
  let server: Server | undefined
  try {
    const { binary, args, readyUrl } = await prepare(dir)
    server = launch(name, binary, args)
    await waitReady(server, () => httpOk(readyUrl))
    const started = server
    return {
      ...await describe(dir),
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
