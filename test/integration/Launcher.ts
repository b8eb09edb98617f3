/**
 * `npm start` (examples/network.ts) run as a terminal or a supervisor runs
 * it: in a process group of its own, so that a signal can be sent to the whole
 * group as a terminal's Ctrl-C does. Reads the URLs the launcher prints,
 * drives load that keeps each acknowledged transaction's trace id (from the
 * `traceresponse` header), and lists every process the launcher started, to
 * prove none is left once it has stopped.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../../", import.meta.url))

/** A started launcher. */
export interface Launcher {
  readonly child: ChildProcess
  /** Everything it printed so far, a line each. */
  readonly output: Array<string>
  /** Its exit: code or signal. */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
}

/** Where the example network listens when every address is asked for port 0 (the default for tests). */
export const loopbackBinds = {
  SENDING_DAG_BIND: "127.0.0.1:0",
  SENDING_DAG_METRICS_BIND: "127.0.0.1:0",
  POH_GRPC_BIND: "127.0.0.1:0",
  POH_METRICS_BIND: "127.0.0.1:0",
  PRESENCE_GRPC_BIND: "127.0.0.1:0",
  PRESENCE_METRICS_BIND: "127.0.0.1:0"
}

/**
 * Starts `command` (`npm start` or `node examples/network.ts`, with `args`) in
 * a new process group, with our environment but `env` over it and no OTLP or
 * MongoDB setting inherited.
 */
export const startLauncher = (
  command: "npm" | "node",
  env: Readonly<Record<string, string>>,
  args: ReadonlyArray<string> = []
): Launcher => {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([name]) =>
      !/^(OTEL_|OTLP_|MONGODB_URI$|PROMETHEUS_|npm_|POH_|PRESENCE_|SENDING_DAG_|DAG_)/.test(name)
    )
  )
  const child = spawn(
    command === "npm" ? "npm" : process.execPath,
    command === "npm" ? ["start", "--silent", "--", ...args] : ["examples/network.ts", ...args],
    { cwd: repo, env: { ...inherited, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true }
  )
  const output: Array<string> = []
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.on("data", (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter((line) => line !== "")))
  }
  const exited = once(child, "exit").then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null
  }))
  return { child, output, exited }
}

/** The first match of `pattern`'s group 1 in what `launcher` printed, waiting up to `timeoutMs`. */
export const printed = async (launcher: Launcher, pattern: RegExp, timeoutMs = 60_000): Promise<string> => {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    for (const line of launcher.output) {
      const found = pattern.exec(line)?.[1]
      if (found !== undefined) return found
    }
    if (launcher.child.exitCode !== null || launcher.child.signalCode !== null) break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`nothing printed matches ${pattern}:\n${launcher.output.join("\n")}`)
}

/** The sending DAG's URL, once the launcher says the network is up. */
export const networkUp = async (launcher: Launcher): Promise<string> => {
  await printed(launcher, /(the DAG network is up)/)
  return printed(launcher, /sending DAG\s+(http:\/\/\S+)/)
}

/** Every process below `pid` (children, their children, …), read from /proc. */
export const descendants = (pid: number): ReadonlyArray<number> => {
  const parents = new Map<number, number>()
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8")
      // The command name (field 2) may hold spaces; the parent is the second field after it.
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]))
    } catch {
      // It ended while we looked.
    }
  }
  const below = (parent: number): ReadonlyArray<number> =>
    [...parents].filter(([, of]) => of === parent).flatMap(([child]) => [child, ...below(child)])
  return below(pid)
}

/** Those of `pids` still running (zombies count as ended). */
export const alive = (pids: ReadonlyArray<number>): ReadonlyArray<number> =>
  pids.filter((pid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
    } catch {
      return false
    }
  })

/** One transaction's answer: its status and, from `traceresponse`, its trace id. */
export interface Answer {
  readonly status: number
  readonly traceId: string | undefined
}

/** POSTs transactions to `base` one after another, `concurrency` at a time, until `stop()`; every answer kept. */
export const load = (base: string, concurrency = 4) => {
  const answers: Array<Answer> = []
  let refused = 0
  const state = { running: true }
  const worker = async (n: number) => {
    for (let i = 0; state.running; i++) {
      try {
        const response = await fetch(`${base}/tx`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ from: `w${n}`, to: `w${i}`, amount: 1 + i, region: "eu-central" }),
          signal: AbortSignal.timeout(10_000)
        })
        await response.arrayBuffer()
        const traceId = /^00-([0-9a-f]{32})-/.exec(response.headers.get("traceresponse") ?? "")?.[1]
        answers.push({ status: response.status, traceId })
      } catch {
        refused += 1
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
    }
  }
  const workers = Promise.all(Array.from({ length: concurrency }, (_, n) => worker(n)))
  return {
    answers,
    refused: () => refused,
    stop: async () => {
      state.running = false
      await workers
    }
  }
}

/**
 * What a launcher test needs around it: a `host:port` that is taken (by a
 * listener of its own) and temporary directories, all released by `close`.
 */
export const surroundings = async () => {
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, "127.0.0.1", resolve))
  const dirs: Array<string> = []
  return {
    takenBind: `127.0.0.1:${(taken.address() as { port: number }).port}`,
    tempDir: () => {
      const dir = mkdtempSync(join(tmpdir(), "dag-network-"))
      dirs.push(dir)
      return dir
    },
    close: () => {
      taken.close()
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    }
  }
}
