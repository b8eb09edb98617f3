/**
 * What the HTTP benchmarks share to drive their servers: a server child pinned to a core that speaks JSON lines
 * ({@link startChild}), `POST` load at saturation (autocannon, {@link saturate}) or at a constant rate
 * (bench/rate.ts, {@link paced}), both pinned to core 1, each core's busy time ({@link cpuTimes}) and the CPU time
 * of the servers a benchmark started ({@link childCpu}).
 */
import { spawn } from "node:child_process"
import { once } from "node:events"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { autocannon, type Load } from "./support.ts"

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const rateScript = here("./rate.ts")

/** A running server child. */
export interface Child<Ready, Report> {
  /** The first JSON line it printed: where it listens. */
  readonly ready: Ready
  /** Asks for what it recorded so far: writes `report` to its stdin, resolves with the JSON line it answers. */
  readonly report: () => Promise<Report>
  /** Closes its stdin, on which it exits; resolves once it has. */
  readonly stop: () => Promise<void>
}

/**
 * `node --cpu-prof` flags writing the profiles of the child `name` under `$PROFILE/<name>/` when the environment sets
 * `PROFILE` (one profile per process, written when it exits), else none; for `bench/profile-top.ts`.
 */
export const profiling = (name: string): ReadonlyArray<string> => {
  const dir = process.env["PROFILE"]
  return dir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${join(dir, name)}`]
}

/**
 * The environment of a server child: this process's without its OpenTelemetry, metrics endpoint, MongoDB and PoH
 * settings (a server chooses its store and PoH by them), every request sampled, `/metrics` on a free loopback port,
 * then `env`.
 */
export const childEnv = (env: Readonly<Record<string, string>>): NodeJS.ProcessEnv => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(OTEL_|OTLP_|PROMETHEUS_|MONGODB_URI$|POH_)/.test(name))
  ),
  OTEL_TRACES_SAMPLER: "parentbased_always_on",
  PROMETHEUS_BIND: "127.0.0.1:0",
  // The API logs each transaction it commits: benchmarks measure the path without that line unless they ask for it.
  LOG_LEVEL: "warn",
  ...env
})

/**
 * Starts `command` pinned to `cpus` (`taskset -c`), its stdout read as JSON lines (its JSON log lines aside);
 * resolves once it has printed the first one.
 */
export const startChild = async <Ready, Report>(
  name: string,
  cpus: string,
  command: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv = process.env
): Promise<Child<Ready, Report>> => {
  const child = spawn("taskset", ["-c", cpus, ...command], { stdio: ["pipe", "pipe", "inherit"], env })
  const lines = createInterface({ input: child.stdout })
  const json: Array<(value: unknown) => void> = []
  lines.on("line", (line) => {
    if (!line.startsWith("{")) return
    const value = JSON.parse(line) as Record<string, unknown>
    // The library's JSON log lines (`ObservabilityLive` off a terminal) are not answers of the protocol.
    if (!("level" in value && "timestamp" in value)) json.shift()?.(value)
  })
  const next = <A>() => new Promise<A>((resolve) => json.push(resolve as (value: unknown) => void))
  const exited = once(child, "exit")
  const ready = await Promise.race([
    next<Ready>(),
    exited.then(() => Promise.reject(new Error(`${name} exited before listening`)))
  ])
  return {
    ready,
    report: () => {
      const reported = next<Report>()
      child.stdin.write("report\n")
      return reported
    },
    stop: async () => {
      child.stdin.end()
      await exited
    }
  }
}

/** What every load run answers. */
export type Answers = Pick<Load, "2xx" | "non2xx" | "errors" | "timeouts">

/** The body every HTTP benchmark posts to `/tx`: a 60-byte JSON transaction. */
export const transaction = JSON.stringify({ from: "alice", to: "bob", amount: 5, region: "eu-central" })

/** What to send: `POST` of a JSON `body` to `url`. */
export interface Target {
  readonly url: string
  readonly body: string
}

/** autocannon with `connections` connections against `target` for `seconds`, as fast as the server answers. */
export const saturate = (target: Target, seconds: number, connections: number): Promise<Load> =>
  autocannon([
    "-c",
    String(connections),
    "-d",
    String(seconds),
    "-m",
    "POST",
    "-H",
    "content-type=application/json",
    "-b",
    target.body,
    target.url
  ])

/** A bench/rate.ts run: latencies of 2xx answers in ms. */
export interface Paced extends Answers {
  /** Requests issued per second, as achieved. */
  readonly rate: number
  readonly latency: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
}

/**
 * bench/rate.ts pinned to core 1: `rate` requests a second against `target` for `seconds`, evenly spaced, over at
 * most `connections` connections.
 */
export const paced = async (target: Target, seconds: number, rate: number, connections: number): Promise<Paced> => {
  const args = [rateScript, target.url, String(rate), String(seconds), String(connections), target.body]
  const child = spawn("taskset", ["-c", "1", process.execPath, ...args], { stdio: ["ignore", "pipe", "inherit"] })
  let out = ""
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
  const [code] = await once(child, "exit")
  if (code !== 0) throw new Error(`bench/rate.ts exited ${code}`)
  return JSON.parse(out) as Paced
}

/** The 2xx count of `load`; throws unless every request was answered 2xx. */
export const all2xx = (name: string, load: Answers): number => {
  if (load.non2xx + load.errors + load.timeouts > 0) {
    throw new Error(`${name}: ${load.non2xx} non-2xx, ${load.errors} errors, ${load.timeouts} timeouts`)
  }
  return load["2xx"]
}

/** Busy and total time of each core so far (`/proc/stat`, in clock ticks). */
export const cpuTimes = (): ReadonlyArray<{ readonly busy: number; readonly total: number }> =>
  readFileSync("/proc/stat", "utf8").split("\n").filter((line) => /^cpu\d/.test(line)).map((line) => {
    const ticks = line.split(/\s+/).slice(1).map(Number)
    const total = ticks.reduce((sum, value) => sum + value, 0)
    // idle and iowait
    return { busy: total - ticks[3]! - ticks[4]!, total }
  })

/**
 * CPU µs each of this process's children named in `names` has used so far (`/proc/<pid>/stat`, at the kernel's
 * 100 ticks a second), by name.
 */
export const childCpu = (names: ReadonlyArray<string>): Record<string, number> => {
  const used: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]))
  for (const pid of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    let stat: string
    try {
      stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    } catch {
      continue // it has exited since
    }
    const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"))
    // After the name: state, ppid, …, utime and stime 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    if (Number(fields[1]) !== process.pid || !(name in used)) continue
    used[name]! += (Number(fields[11]) + Number(fields[12])) * 10_000
  }
  return used
}
