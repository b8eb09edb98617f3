/**
 * Two contenders compared in two phases, for the benchmarks whose spans leave the process over OTLP (bench/real.ts,
 * bench/collector.ts):
 *
 * 1. saturation: req/s of `POST /tx` under autocannon (CONNECTIONS connections);
 * 2. latency below saturation: p50 and p99 at a constant RATE (bench/rate.ts; by default half the lower of the two
 *    saturation medians, so that both contenders run well below their saturation).
 *
 * Each phase runs ROUNDS rounds; a round opens every contender afresh (the next one first), warms it up for WARMUP
 * seconds with the phase's load, measures DURATION seconds, has it verify the work its 2xx answers left, and closes
 * it. Also recorded per measurement: each process's CPU time per 2xx answer and each core's busy share.
 */
import { execFileSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import { setPriority } from "node:os"
import { setTimeout as sleep } from "node:timers/promises"
import { all2xx, type Answers, cpuTimes, paced, saturate, type Target } from "./load.ts"
import { machine, median } from "./support.ts"

/** A contender's processes, started for one measurement. */
export interface Session {
  /** Where to send the load. */
  readonly target: Target
  /** CPU µs each of its processes has used so far, by process. */
  readonly cpu: () => Promise<Readonly<Record<string, number>>>
  /**
   * Throws unless the `answered` 2xx answers left their work, allowing for up to `slack` requests the server served
   * after the load generator stopped counting; says what it verified.
   */
  readonly verify: (answered: number, slack: number) => Promise<string>
  readonly stop: () => Promise<void>
}

export interface Contender {
  readonly key: string
  readonly name: string
  /** Starts the contender's processes; `label` names the round, for a fresh database. */
  readonly open: (label: string) => Promise<Session>
}

/** Rounds, seconds and load, from ROUNDS, DURATION, WARMUP, CONNECTIONS and RATE. */
export const settings = {
  rounds: Number(process.env["ROUNDS"] ?? 5),
  duration: Number(process.env["DURATION"] ?? 10),
  warmup: Number(process.env["WARMUP"] ?? 3),
  connections: Number(process.env["CONNECTIONS"] ?? 20),
  rate: process.env["RATE"] === undefined ? undefined : Number(process.env["RATE"])
}

/**
 * Pins this process and every process it starts from now on to core 1, where the load generator runs: on 2 cores,
 * the collector, the database and the PoH node go there, and core 0 is the sending DAG's alone. Returns the machine
 * line, taken before: `nproc` counts the cores a process may run on.
 */
export const pinToCore1 = (): string => {
  const line = machine()
  execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" })
  return line
}

/**
 * Runs `start` with this thread at the lowest CPU priority (nice 19), which the processes it spawns keep: a collector
 * started so takes only the CPU time the processes under test and the load generator leave, as if it ran elsewhere.
 * Nothing else may start processes meanwhile.
 */
export const atLowestPriority = async <A>(start: () => Promise<A>): Promise<A> => {
  setPriority(19)
  try {
    return await start()
  } finally {
    setPriority(0)
  }
}

/** Retries `check` (the problems it finds) every half second until it finds none; throws those left at `timeoutMs`. */
export const eventually = async (what: string, check: () => Promise<ReadonlyArray<string>>, timeoutMs = 15_000) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const problems = await check()
    if (problems.length === 0) return
    if (Date.now() > deadline) throw new Error(`${what}: ${problems.join(", ")}`)
    await sleep(500)
  }
}

/**
 * Spans one request leaves in the Jaeger at `queryUrl`, by service: sends one `POST` to `target` with a new sampled
 * `traceparent`, then reads its trace back until two reads 1.5 s apart (longer than the batch processors' 1 s delay)
 * find the same spans.
 */
export const spansPerRequest = async (target: Target, queryUrl: string): Promise<Record<string, number>> => {
  const traceId = randomBytes(16).toString("hex")
  const response = await fetch(target.url, {
    method: "POST",
    headers: { "content-type": "application/json", traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01` },
    body: target.body
  })
  if (response.status !== 201) throw new Error(`probe request answered ${response.status}`)
  let counts: Record<string, number> = {}
  await eventually(`trace ${traceId} in Jaeger`, async () => {
    const previous = JSON.stringify(counts)
    const trace = await fetch(`${queryUrl}/api/traces/${traceId}`).then((answer) => answer.json()) as {
      readonly data?: ReadonlyArray<{
        readonly spans: ReadonlyArray<{ readonly processID: string }>
        readonly processes: Readonly<Record<string, { readonly serviceName: string }>>
      }>
    }
    counts = {}
    for (const { spans, processes } of trace.data ?? []) {
      for (const span of spans) {
        const service = processes[span.processID]?.serviceName ?? "unknown"
        counts[service] = (counts[service] ?? 0) + 1
      }
    }
    await sleep(1_000)
    return Object.keys(counts).length > 0 && JSON.stringify(counts) === previous ? [] : ["not all spans stored yet"]
  })
  return counts
}

/** What one measurement cost: µs of CPU per 2xx answer by process, and each core's busy share in %. */
interface Costs {
  readonly cpu: Readonly<Record<string, number>>
  readonly cores: ReadonlyArray<number>
}

/** What {@link compare} measured for one contender, round by round. */
export interface Results {
  readonly contender: Contender
  readonly saturation: Array<Costs & { readonly rps: number }>
  /** Latencies in ms; `rate` is the rate bench/rate.ts achieved. */
  readonly paced: Array<Costs & { readonly p50: number; readonly p99: number; readonly rate: number }>
  /** What the last verification said. */
  verified: string
}

/** Opens `contender`, warms it up, measures with `load`, verifies, closes; the load's result and its costs. */
const measure = async <A extends Answers>(
  result: Results,
  label: string,
  load: (target: Target, seconds: number) => Promise<A>,
  slackPerRun: number
): Promise<Costs & { readonly measured: A }> => {
  const { contender } = result
  const session = await contender.open(label)
  try {
    const warm = all2xx(contender.name, await load(session.target, settings.warmup))
    const [cpuBefore, coresBefore] = [await session.cpu(), cpuTimes()]
    const measured = await load(session.target, settings.duration)
    const cores = cpuTimes().map((core, i) => {
      const before = coresBefore[i]!
      return (100 * (core.busy - before.busy)) / (core.total - before.total)
    })
    const cpuAfter = await session.cpu()
    const count = all2xx(contender.name, measured)
    result.verified = await session.verify(warm + count, 2 * slackPerRun)
    const cpu = Object.fromEntries(
      Object.entries(cpuAfter).map(([process, micros]) => [process, (micros - cpuBefore[process]!) / count])
    )
    return { measured, cpu, cores }
  } finally {
    await session.stop()
  }
}

/** ROUNDS rounds of {@link measure}, each starting with the next contender; `record` keeps a result, says what. */
const phase = async <A extends Answers>(
  results: ReadonlyArray<Results>,
  name: string,
  load: (target: Target, seconds: number) => Promise<A>,
  slackPerRun: number,
  record: (result: Results, measured: Costs & { readonly measured: A }) => string
) => {
  for (let round = 0; round < settings.rounds; round++) {
    for (let i = 0; i < results.length; i++) {
      const result = results[(round + i) % results.length]!
      const measured = await measure(result, `${name}_${round}_${result.contender.key}`, load, slackPerRun)
      console.error(`${name} round ${round + 1}: ${result.contender.key} ${record(result, measured)}`)
    }
  }
}

/** Runs both phases over `contenders`, alternating; what each measured, and the constant rate of the second phase. */
export const compare = async (
  contenders: ReadonlyArray<Contender>
): Promise<{ readonly results: ReadonlyArray<Results>; readonly rate: number }> => {
  const results = contenders.map((contender): Results => ({ contender, saturation: [], paced: [], verified: "" }))
  const { connections } = settings
  await phase(
    results,
    "saturation",
    (target, seconds) => saturate(target, seconds, connections),
    connections,
    (result, { measured, ...costs }) => {
      result.saturation.push({ rps: measured.requests.average, ...costs })
      return `${measured.requests.average.toFixed(0)} req/s`
    }
  )
  const rate = settings.rate ?? Math.round(Math.min(...results.map((result) => medians(result).rps)) / 2)
  await phase(
    results,
    `rate_${rate}`,
    (target, seconds) => paced(target, seconds, rate, connections),
    0,
    (result, { measured, ...costs }) => {
      result.paced.push({ p50: measured.latency.p50, p99: measured.latency.p99, rate: measured.rate, ...costs })
      return `p50 ${measured.latency.p50} ms, p99 ${measured.latency.p99} ms`
    }
  )
  return { results, rate }
}

/** The medians of a contender's rounds. */
const medians = (result: Results) => ({
  rps: median(result.saturation.map(({ rps }) => rps)),
  p50: median(result.paced.map(({ p50 }) => p50)),
  p99: median(result.paced.map(({ p99 }) => p99)),
  rate: median(result.paced.map(({ rate }) => rate))
})

/** Median CPU µs per request of each process, and median busy share of each core, over `rounds`. */
const costs = (rounds: ReadonlyArray<Costs>) => {
  const cpu = Object.keys(rounds[0]!.cpu).map((process) =>
    `${process} ${median(rounds.map((round) => round.cpu[process]!)).toFixed(0)} µs`
  )
  const cores = rounds[0]!.cores.map((_, i) =>
    `core ${i} ${median(rounds.map((round) => round.cores[i]!)).toFixed(0)}%`
  )
  return `${cpu.join(", ")}; ${cores.join(", ")}`
}

const list = (values: ReadonlyArray<number>, digits: number) => values.map((value) => value.toFixed(digits)).join(", ")

/** A goal's line: `name = value×` and whether it is met. */
export const goal = (name: string, value: number, met: boolean, wanted: string): string =>
  `${name} = ${value.toFixed(2)}× (goal ${wanted}): ${met ? "met" : "not met"}`

/** Latency `y` against `x`: `1.34× (+1.00 ms)`. */
const against = (x: number, y: number) =>
  `${(y / x).toFixed(2)}× (${y >= x ? "+" : "−"}${Math.abs(y - x).toFixed(2)} ms)`

/** `b` against `a` at the constant rate: `p50 1.34× (+1.00 ms), p99 0.96× (−0.12 ms)`. */
export const latencies = (
  a: { readonly p50: number; readonly p99: number },
  b: { readonly p50: number; readonly p99: number }
): string => `p50 ${against(a.p50, b.p50)}, p99 ${against(a.p99, b.p99)}`

/** Prints what was verified and the tables of both phases; returns the medians of the first (`a`) and second (`b`). */
export const printResults = (results: ReadonlyArray<Results>) => {
  const [a, b] = results.map(medians)
  for (const result of results) console.log(`verified ${result.contender.key}: ${result.verified}`)
  console.log()
  console.log(`| contender | req/s (median) | rounds | vs ${results[0]!.contender.key} | CPU per request; cores busy |`)
  console.log("|---|---|---|---|---|")
  for (const result of results) {
    const { rps } = medians(result)
    console.log(
      `| ${result.contender.name} | ${rps.toFixed(0)} | ${list(result.saturation.map((round) => round.rps), 0)} | ` +
        `${(rps / a!.rps).toFixed(2)}× | ${costs(result.saturation)} |`
    )
  }
  console.log()
  console.log(
    "| contender | rate (req/s) | p50 ms (median) | p99 ms (median) | p50 rounds | p99 rounds | " +
      "CPU per request; cores busy |"
  )
  console.log("|---|---|---|---|---|---|---|")
  for (const result of results) {
    const { p50, p99, rate } = medians(result)
    console.log(
      `| ${result.contender.name} | ${rate} | ${p50.toFixed(2)} | ${p99.toFixed(2)} | ` +
        `${list(result.paced.map((round) => round.p50), 2)} | ${list(result.paced.map((round) => round.p99), 2)} | ` +
        `${costs(result.paced)} |`
    )
  }
  console.log()
  return { a: a!, b: b! }
}
