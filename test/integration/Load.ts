/**
 * Steady load on the sending DAG for the fault tests: `POST /tx` at a fixed
 * rate, each with its own `traceparent`, every answer kept with the phase it
 * was sent in, its latency and what came back (a status, or how the
 * connection failed).
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import { newTraceparent } from "./Network.ts"

/** An HTTP status, or how the exchange failed without one. */
export type Outcome = number | "refused" | "reset" | "timeout" | "malformed" | "error"

/** One request's answer. */
export interface Answer {
  readonly phase: string
  /** When it was sent, `Date.now()`. */
  readonly sentAt: number
  readonly ms: number
  readonly outcome: Outcome
  /** The parsed JSON body, when there was one. */
  readonly body: unknown
  readonly traceId: string
  /** The request's `from`, unique to it: how its transaction is found in the store. */
  readonly from: string
  /** The error of a failed exchange. */
  readonly detail: string
}

/** A running load. */
export interface Load {
  /** The phase requests sent from now on belong to. */
  phase: string
  /** Answers received so far, in arrival order. */
  readonly answers: ReadonlyArray<Answer>
  /** Sends one request now, outside the steady rate, in the current phase. */
  send(): Promise<Answer>
  /** Stops sending and resolves once every request sent has its answer. */
  pause(): Promise<void>
  /** Sends at the steady rate again. */
  resume(): void
}

const regions = ["eu-central", "us-east"] as const

const classify = (error: unknown): Outcome => {
  const cause = (error as { cause?: { code?: string; name?: string } }).cause
  const name = (error as { name?: string }).name
  if (name === "TimeoutError" || cause?.name === "TimeoutError") return "timeout"
  if (cause?.code === "ECONNREFUSED") return "refused"
  if (cause?.code === "ECONNRESET" || cause?.code === "UND_ERR_SOCKET" || cause?.code === "EPIPE") return "reset"
  return "error"
}

/** Starts `rate` requests per second to `url`/tx; the scope's end pauses it and waits for the last answers. */
export const steadyLoad = (url: string, rate: number, phase: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const answers: Array<Answer> = []
      const pending = new Set<Promise<Answer>>()
      const run = randomBytes(3).toString("hex")
      let n = 0
      let timer: ReturnType<typeof setInterval> | undefined
      const load: Load = {
        phase,
        answers,
        send: () => {
          const i = n++
          const sent = { phase: load.phase, sentAt: Date.now(), traceparent: newTraceparent(), from: `load-${run}-${i}` }
          const started = performance.now()
          const answer = (outcome: Outcome, body: unknown, detail = ""): Answer => ({
            phase: sent.phase,
            sentAt: sent.sentAt,
            ms: performance.now() - started,
            outcome,
            body,
            traceId: sent.traceparent.traceId,
            from: sent.from,
            detail
          })
          const exchange = (async (): Promise<Answer> => {
            try {
              const response = await fetch(`${url}/tx`, {
                method: "POST",
                headers: { "content-type": "application/json", traceparent: sent.traceparent.header },
                body: JSON.stringify({
                  from: sent.from,
                  to: "sink",
                  amount: 1 + (i % 50),
                  region: regions[i % 2]
                }),
                signal: AbortSignal.timeout(20_000)
              })
              const text = await response.text()
              try {
                return answer(response.status, JSON.parse(text))
              } catch {
                return answer("malformed", text, `HTTP ${response.status}: ${text.slice(0, 200)}`)
              }
            } catch (error) {
              const cause = (error as { cause?: unknown }).cause
              return answer(classify(error), undefined, `${String(error)} ${String(cause)}`)
            }
          })()
          pending.add(exchange)
          void exchange.then((done) => {
            pending.delete(exchange)
            answers.push(done)
          })
          return exchange
        },
        pause: async () => {
          clearInterval(timer)
          timer = undefined
          while (pending.size > 0) await Promise.all(pending)
        },
        resume: () => {
          timer ??= setInterval(() => void load.send(), 1000 / rate)
        }
      }
      load.resume()
      return load
    }),
    (load) => Effect.promise(() => load.pause())
  )

/** The answers sent in `phase`. */
export const inPhase = (load: Load, phase: string) => load.answers.filter((answer) => answer.phase === phase)

/** The `q` quantile of the answers' latencies in ms (0 when there are none). */
export const quantile = (answers: ReadonlyArray<Answer>, q: number): number => {
  const sorted = answers.map((answer) => answer.ms).toSorted((a, b) => a - b)
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
}

/** How many answers had each outcome, e.g. `{ "201": 80, "503": 12 }`. */
export const outcomes = (answers: ReadonlyArray<Answer>): Record<string, number> => {
  const counts: Record<string, number> = {}
  for (const answer of answers) counts[String(answer.outcome)] = (counts[String(answer.outcome)] ?? 0) + 1
  return counts
}

/** One line of the phase's numbers for the log: count, outcomes and latency quantiles. */
export const summary = (answers: ReadonlyArray<Answer>): string =>
  `${answers.length} requests ${JSON.stringify(outcomes(answers))} p50 ${quantile(answers, 0.5).toFixed(1)} ms ` +
  `p99 ${quantile(answers, 0.99).toFixed(1)} ms max ${quantile(answers, 1).toFixed(1)} ms`
