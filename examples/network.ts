/**
 * `npm start`: the example DAG network on this machine, each node its own
 * process: the PoH node (gRPC :50051, metrics :8001) and the sending DAG (HTTP
 * :8081, metrics :8000). Storage is `MONGODB_URI` if set, else a FerretDB
 * started here when `npm run provision` has built one, else memory (the sending
 * DAG says so). Spans go to the OTLP collector the environment names
 * (`http://localhost:4317` by default); with none listening everything still
 * runs. Ctrl-C stops the nodes (each flushes and exits 0), then FerretDB.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { existsSync } from "node:fs"
import { Effect, Option, Schedule } from "effect"
import { ferretdbBinary } from "../servers/Cache.ts"
import { startFerretDB } from "../servers/Servers.ts"
import { Main, Settings } from "../src/index.ts"

const sendingDag = "http://127.0.0.1:8081"

/** Writes a child's output to ours, each line prefixed with `[name]`. */
const prefixed = (name: string) => (chunk: Buffer) => {
  for (const line of chunk.toString().trimEnd().split("\n")) process.stdout.write(`[${name}] ${line}\n`)
}

/** Runs `script` as a node of the network, its output prefixed with `name`; release sends SIGTERM and waits. */
const node = (name: string, script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, [script], {
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      child.stdout!.on("data", prefixed(name))
      child.stderr!.on("data", prefixed(name))
      return child
    }),
    (child) => Effect.promise(() => stop(child))
  )

const stop = async (child: ChildProcess) => {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, "exit")
  child.kill("SIGTERM")
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000)
  await exited
  clearTimeout(timer)
}

/** Fails when `child` exits on its own, so the whole network stops with it. */
const watch = (name: string, child: ChildProcess) =>
  Effect.promise(() => once(child, "exit")).pipe(
    Effect.andThen(([code]) => Effect.fail(`${name} exited with code ${code}`))
  )

/** Storage for the sending DAG: the configured URI, else a local FerretDB when one is built. */
const storage = Effect.gen(function*() {
  const configured = yield* Settings.read(Settings.mongodbUri)
  if (Option.isSome(configured)) return { env: {}, description: "MongoDB at MONGODB_URI" }
  if (!existsSync(ferretdbBinary)) {
    return { env: {}, description: "in memory (run `npm run provision` for a local FerretDB)" }
  }
  const ferretdb = yield* Effect.acquireRelease(
    Effect.promise(() => startFerretDB()),
    (server) => Effect.promise(() => server.dispose())
  )
  const uri = `${ferretdb.uri}dag`
  return { env: { MONGODB_URI: uri }, description: `FerretDB ${ferretdb.version} at ${uri} (data removed at exit)` }
})

const ready = Effect.tryPromise(() => fetch(`${sendingDag}/ping`)).pipe(
  Effect.filterOrFail((response) => response.ok),
  Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 150 })
)

const program = Effect.gen(function*() {
  yield* Effect.addFinalizer(() => Effect.log("the DAG network stopped"))
  const store = yield* storage
  const poh = yield* node("poh-node", "examples/poh-node.ts", {})
  const dag = yield* node("sending-dag", "examples/sending-dag.ts", store.env)
  yield* ready
  const otlp = yield* Settings.read(Settings.otlpEndpoint)
  yield* Effect.log([
    "the DAG network is up:",
    `  sending DAG  ${sendingDag}  (GET /ping, POST /tx, POST /poh, GET /tx/:id)`,
    "  PoH node     grpc 127.0.0.1:50051",
    "  metrics      http://127.0.0.1:8000/metrics (sending DAG), http://127.0.0.1:8001/metrics (PoH node)",
    `  storage      ${store.description}`,
    `  traces       OTLP gRPC to ${otlp}`,
    `try: curl -X POST ${sendingDag}/tx -H 'content-type: application/json' \\`,
    "       -d '{\"from\":\"alice\",\"to\":\"bob\",\"amount\":5,\"region\":\"eu-central\"}'",
    "load: npm run load    stop: Ctrl-C"
  ].join("\n"))
  return yield* Effect.raceFirst(watch("poh-node", poh), watch("sending-dag", dag))
}).pipe(Effect.scoped)

program.pipe(Main.runMain)
