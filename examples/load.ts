/**
 * Load generator: POSTs transactions to the sending DAG at a steady rate for a
 * given time, printing each second the rate achieved, the answers by status and
 * the client-side latency, then a summary.
 *
 *   npm run load                     # 50 tx/s for 30 s against http://127.0.0.1:8081
 *   LOAD_RATE=200 LOAD_DURATION=10 npm run load
 *
 * Environment: `LOAD_TARGET` (base URL), `LOAD_RATE` (requests per second),
 * `LOAD_DURATION` (seconds), `DAG_REGIONS` (regions to spread requests over).
 */
import { Clock, Effect, Fiber } from "effect"
import { Main, Settings } from "../src/index.ts"
import { DagMetrics } from "../src/dag/index.ts"

const settings = Settings.read({
  target: Settings.setting("LOAD_TARGET", "http://127.0.0.1:8081", {
    expected: "an http(s) URL",
    parse: (text) => URL.canParse(text) ? text.replace(/\/$/, "") : undefined
  }),
  rate: Settings.setting("LOAD_RATE", 50, { ...Settings.positive, expected: "requests per second above 0" }),
  seconds: Settings.setting("LOAD_DURATION", 30, { ...Settings.positive, expected: "seconds above 0" }),
  regions: DagMetrics.regions
})

/** Answers by status (`error` when no answer came) and their latencies in ms. */
interface Tally {
  readonly statuses: Map<string, number>
  readonly latencies: Array<number>
}

const quantile = (sorted: ReadonlyArray<number>, q: number) =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!

const describe = (tally: Tally, elapsedSeconds: number) => {
  const sorted = tally.latencies.toSorted((a, b) => a - b)
  const statuses = [...tally.statuses].map(([status, count]) => `${status}:${count}`).join(" ")
  return `${(sorted.length / elapsedSeconds).toFixed(1)} req/s  ${statuses}  ` +
    `p50 ${quantile(sorted, 0.5).toFixed(1)} ms  p90 ${quantile(sorted, 0.9).toFixed(1)} ms  ` +
    `p99 ${quantile(sorted, 0.99).toFixed(1)} ms`
}

const send = (target: string, region: string, n: number, record: (status: string, ms: number) => void) =>
  Effect.gen(function*() {
    const started = yield* Clock.currentTimeMillis
    const status = yield* Effect.tryPromise(async () => {
      const response = await fetch(`${target}/tx`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ from: `wallet-${n % 97}`, to: `wallet-${(n * 7) % 97}`, amount: 1 + (n % 100), region })
      })
      await response.arrayBuffer()
      return String(response.status)
    }).pipe(Effect.orElseSucceed(() => "error"))
    record(status, (yield* Clock.currentTimeMillis) - started)
  })

const emptyTally = (): Tally => ({ statuses: new Map(), latencies: [] })

const program = Effect.gen(function*() {
  const { target, rate, seconds, regions } = yield* settings
  const total = Math.max(1, Math.round(rate * seconds))
  yield* Effect.log(`load: ${total} transactions at ${rate}/s to ${target}/tx`)
  const all = emptyTally()
  let second = emptyTally()
  const record = (status: string, ms: number) => {
    for (const tally of [all, second]) {
      tally.latencies.push(ms)
      tally.statuses.set(status, (tally.statuses.get(status) ?? 0) + 1)
    }
  }
  yield* Effect.forkScoped(
    Effect.suspend(() => {
      const line = describe(second, 1)
      second = emptyTally()
      return Effect.log(`load: ${line}`)
    }).pipe(Effect.delay("1 second"), Effect.forever)
  )
  const started = yield* Clock.currentTimeMillis
  const fibers: Array<Fiber.Fiber<void>> = []
  for (let i = 0; i < total; i++) {
    fibers.push(yield* Effect.forkChild(send(target, regions[i % regions.length]!, i, record)))
    yield* Effect.sleep(1000 / rate)
  }
  yield* Fiber.awaitAll(fibers)
  const elapsed = ((yield* Clock.currentTimeMillis) - started) / 1000
  yield* Effect.log(`load: done in ${elapsed.toFixed(1)} s: ${describe(all, elapsed)}`)
}).pipe(Effect.scoped)

program.pipe(Main.runMain)
