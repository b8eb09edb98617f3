/**
 * The per-request Effect-level cost of `POST /tx`, in process, without sockets: the sending DAG's routes behind
 * `HttpRouter.toWebHandler`, bare (tracer off) and with this library (`Http.middleware` + `Tracing.layerProvider`),
 * alternating in one process, in CPU time (so that other processes on the machine disturb it less). For A/B-testing a change to the tracing path quickly and for `node --cpu-prof`;
 * `npm run bench:http` is the benchmark of record.
 *
 * Run: `npx node bench/profile-http.ts` (REQUESTS per round, ROUNDS; ONLY=bare|middleware|native|ours to run one side for a profile).
 */
import { Layer, References } from "effect"
import { HttpMiddleware, HttpRouter } from "effect/http"
import * as SendingDagApi from "../examples/SendingDagApi.ts"
import { Http, Metrics } from "../src/index.ts"
import { tracing, workflowsLayer } from "./commit.ts"
import { tracerOff } from "./http/child.ts"
import { countingProcessor, makeTally, median } from "./support.ts"

const requests = Number(process.env["REQUESTS"] ?? 5_000)
const rounds = Number(process.env["ROUNDS"] ?? 5)
const only = process.env["ONLY"]
const body = JSON.stringify({ from: "alice", to: "bob", amount: 5, region: "eu-central" })

// The API's per-transaction log line is not what this measures (bench:http's `ours-log` does): warnings only.
const workflows = workflowsLayer({ metrics: Metrics.layer }).pipe(
  Layer.provideMerge(Layer.succeed(References.MinimumLogLevel)("Warn"))
)

/** The routes with this library's HTTP middleware (Effect's own HTTP span off), as `Http.serve` serves them. */
const instrumented = Layer.merge(SendingDagApi.Routes, Http.middleware).pipe(
  Layer.provideMerge(workflows),
  Layer.provideMerge(Layer.succeed(HttpMiddleware.TracerDisabledWhen)(() => true))
)

const tally = makeTally()
const handlers = {
  bare: HttpRouter.toWebHandler(
    SendingDagApi.Routes.pipe(Layer.provideMerge(workflows), Layer.provideMerge(tracerOff().layer)),
    { disableLogger: true }
  ),
  middleware: HttpRouter.toWebHandler(instrumented.pipe(Layer.provideMerge(tracerOff().layer)), {
    disableLogger: true
  }),
  native: HttpRouter.toWebHandler(instrumented, { disableLogger: true }),
  ours: HttpRouter.toWebHandler(
    instrumented.pipe(Layer.provideMerge(tracing(countingProcessor(tally)))),
    { disableLogger: true }
  )
}
type Side = keyof typeof handlers

const run = async (handler: (request: Request) => Promise<Response>) => {
  const start = process.cpuUsage()
  for (let i = 0; i < requests; i++) {
    const response = await handler(
      new Request("http://localhost/tx", { method: "POST", headers: { "content-type": "application/json" }, body })
    )
    if (response.status !== 201) throw new Error(`status ${response.status}: ${await response.text()}`)
    await response.arrayBuffer()
  }
  const used = process.cpuUsage(start)
  return (used.user + used.system) / requests
}

const results: Record<Side, Array<number>> = { bare: [], middleware: [], native: [], ours: [] }
const sides = only === undefined ? (Object.keys(handlers) as Array<Side>) : [only as Side]
for (let round = 0; round <= rounds; round++) {
  for (let i = 0; i < sides.length; i++) {
    const side = sides[(round + i) % sides.length]!
    const micros = await run(handlers[side].handler)
    if (round > 0) results[side].push(micros)
  }
}
for (const side of sides) {
  const each = results[side].map((micros) => micros.toFixed(1)).join(", ")
  console.log(`${side}: ${median(results[side]).toFixed(1)} CPU µs/request (${each})`)
}
if (only === undefined) {
  const over = (side: Side) => (median(results[side]) - median(results.bare)).toFixed(1)
  console.log(`over bare: middleware ${over("middleware")}, native ${over("native")}, ours ${over("ours")} CPU µs/request`)
}
await Promise.all(Object.values(handlers).map((handler) => handler.dispose()))
console.log(`${tally.total} spans`)
