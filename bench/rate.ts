/**
 * A constant-rate load generator, for latency below saturation (autocannon's `-R` sends each connection's share of a
 * second in one burst, then waits for the next second: not a constant rate). Issues `POST` requests with a JSON body
 * at evenly spaced times, `rate` a second for `seconds`, whatever the answers take (open loop), over at most
 * `connections` keep-alive connections: a request that finds them all busy waits for one, and the wait counts in its
 * latency, which runs from the request's issue to the end of its response. A timer that fires late issues every
 * request then due at once, so the rate holds over the run.
 *
 * Run: `node bench/rate.ts <url> <rate> <seconds> <connections> <body>`; prints one JSON line when every request is
 * answered: `{"2xx","non2xx","errors","timeouts","rate","latency":{"p50","p90","p99","max"}}`, latencies of 2xx
 * answers in ms.
 */
import { Agent, request } from "node:http"

const [url, rateArgument, secondsArgument, connectionsArgument, body] = process.argv.slice(2)
const rate = Number(rateArgument)
const seconds = Number(secondsArgument)
const connections = Number(connectionsArgument)
if (url === undefined || body === undefined || !(rate > 0 && seconds > 0 && connections > 0)) {
  throw new Error("usage: rate.ts <url> <rate> <seconds> <connections> <body>")
}

const agent = new Agent({ keepAlive: true, maxSockets: connections })
const headers = { "content-type": "application/json", "content-length": Buffer.byteLength(body) }
const count = Math.round(rate * seconds)
const interval = 1000 / rate
const latencies: Array<number> = []
let non2xx = 0
let errors = 0
let timeouts = 0
let issued = 0
let lastIssued = 0
let done = 0
const started = performance.now()

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)]!

const round = (ms: number) => Math.round(ms * 1000) / 1000

const finish = () => {
  if (++done < count) return
  agent.destroy()
  const sorted = latencies.toSorted((a, b) => a - b)
  console.log(JSON.stringify({
    "2xx": sorted.length,
    non2xx,
    errors,
    timeouts,
    // Requests issued per second between the first and the last.
    rate: Math.round((count - 1) / ((lastIssued - started) / 1000)),
    latency: {
      p50: round(percentile(sorted, 0.5)),
      p90: round(percentile(sorted, 0.9)),
      p99: round(percentile(sorted, 0.99)),
      max: round(sorted.at(-1) ?? 0)
    }
  }))
}

const send = () => {
  const at = performance.now()
  let settled = false
  /** Counts the request's outcome once, however many events report it. */
  const settle = (outcome: "ok" | "non2xx" | "error" | "timeout") => {
    if (settled) return
    settled = true
    if (outcome === "ok") latencies.push(performance.now() - at)
    else if (outcome === "non2xx") non2xx += 1
    else if (outcome === "error") errors += 1
    else timeouts += 1
    finish()
  }
  const outgoing = request(url, { method: "POST", agent, headers, timeout: 10_000 }, (response) => {
    const status = response.statusCode ?? 0
    response.resume()
    response.on("end", () => settle(status >= 200 && status < 300 ? "ok" : "non2xx"))
    response.on("error", () => settle("error"))
  })
  outgoing.on("timeout", () => {
    settle("timeout")
    outgoing.destroy()
  })
  outgoing.on("error", () => settle("error"))
  outgoing.end(body)
}

const tick = () => {
  const due = Math.min(count, Math.floor((performance.now() - started) / interval) + 1)
  while (issued < due) {
    issued += 1
    lastIssued = performance.now()
    send()
  }
  if (issued < count) setTimeout(tick, Math.max(0, started + issued * interval - performance.now()))
}
tick()
