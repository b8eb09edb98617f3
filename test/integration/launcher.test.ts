/**
 * Stopping `npm start` (its defaults: Presence, three PoH nodes in two
 * regions, the sending DAG on every core) the three ways a person or a
 * supervisor does it, under load: Ctrl-C in a terminal (SIGINT to the whole
 * process group, npm included), `kill -TERM -- -PGID`, and SIGTERM to the
 * launcher alone. Each time: the sending DAG stops first (each of its workers
 * exits 0), then the PoH nodes, then Presence, each after finishing its
 * requests; every acknowledged transaction's whole trace, across the three
 * services, is in Jaeger, and no process the launcher started is left. An inherited `PROMETHEUS_BIND`
 * (set to a port that is taken) is used by neither node.
 */
import { availableParallelism } from "node:os"
import { Effect } from "effect"
import { afterAll, assert, beforeAll, describe, inject, it } from "vitest"
import { fetchTraces } from "./Jaeger.ts"
import {
  alive,
  descendants,
  type Launcher,
  load,
  loopbackBinds,
  networkUp,
  startLauncher,
  surroundings
} from "./Launcher.ts"

/** The spans of one committed transaction across the three services, by name. */
const wholeTrace = [
  "POST /tx",
  "Presence.onlineNodes",
  "presence.PresenceService/OnlineNodes",
  "presence.PresenceService/OnlineNodes",
  "Poh.request",
  "poh.PohService/Request",
  "poh.PohService/Request",
  "Poh.sequence",
  "Storage.persist",
  "insert dag.transactions"
].toSorted()

let around: Awaited<ReturnType<typeof surroundings>>

beforeAll(async () => {
  around = await surroundings()
})

afterAll(() => around.close())

const within = <A>(promise: Promise<A>, ms: number, what: string, launcher: Launcher) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what} after ${ms} ms:\n${launcher.output.join("\n")}`)), ms).unref()
    )
  ])

type Way = "Ctrl-C to the terminal's group" | "SIGTERM to the group" | "SIGTERM to the launcher alone"

/** Starts the network, loads it, stops it the `way` given, and asserts what the file's header says. */
const stopUnderLoad = async (way: Way) => {
  const launcher = startLauncher(way === "Ctrl-C to the terminal's group" ? "npm" : "node", {
    ...loopbackBinds,
    OTEL_EXPORTER_OTLP_ENDPOINT: inject("otlpEndpoint"),
    DAG_NETWORK_DATA: around.tempDir(),
    PROMETHEUS_BIND: around.takenBind
  })
  const base = await within(networkUp(launcher), 60_000, "not up", launcher)
  const group = launcher.child.pid!
  const started = [group, ...descendants(group)]
  // The launcher, Presence, 3 PoH nodes, the sending DAG and its workers (one per core), FerretDB.
  assert.isAtLeast(started.length, 7 + availableParallelism(), "every node and FerretDB")

  const traffic = load(base)
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  if (way === "Ctrl-C to the terminal's group") process.kill(-group, "SIGINT")
  else if (way === "SIGTERM to the group") process.kill(-group, "SIGTERM")
  else process.kill(group, "SIGTERM")
  const exit = await within(launcher.exited, 60_000, "still running", launcher)
  await traffic.stop()

  const output = launcher.output.join("\n")
  if (way !== "Ctrl-C to the terminal's group") assert.deepStrictEqual(exit, { code: 0, signal: null }, output)
  assert.include(output, "the DAG network stopped")
  const stopped = (name: string) => launcher.output.findIndex((line) => line.includes(`${name} stopped: exit code 0`))
  const order = ["sending-dag", "poh-1", "poh-2", "poh-3", "presence"].map(stopped)
  assert.isTrue(
    order.every((at) => at !== -1) && order[0]! < Math.min(...order.slice(1, 4)) && Math.max(...order.slice(1, 4)) < order[4]!,
    `the sending DAG stops, then the PoH nodes, then Presence:\n${output}`
  )
  for (let worker = 1; worker <= availableParallelism(); worker++) {
    assert.include(output, `worker ${worker} stopped: exit code 0`)
  }
  assert.notMatch(output, /ERROR|exited with code|killed by/)

  const acknowledged = traffic.answers.filter((answer) => answer.status === 201)
  assert.isAtLeast(acknowledged.length, 20, output)
  assert.deepStrictEqual(traffic.answers.filter((answer) => answer.status !== 201), [], "no answer but 201")
  for (const { traceId } of acknowledged) {
    assert.match(traceId ?? "", /^[0-9a-f]{32}$/, "each answer names its trace")
    const [trace] = await Effect.runPromise(fetchTraces(traceId!, wholeTrace.length))
    assert.deepStrictEqual(trace!.spans.map((span) => span.operationName).toSorted(), wholeTrace, traceId)
  }

  for (let waited = 0; alive(started).length > 0 && waited < 5_000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.deepStrictEqual(alive(started), [], "no process of the network is left")
  return { acknowledged: acknowledged.length, refused: traffic.refused() }
}

describe("stopping npm start under load", () => {
  it.each<Way>(["Ctrl-C to the terminal's group", "SIGTERM to the group", "SIGTERM to the launcher alone"])(
    "%s: nodes drain in order and exit 0, every acknowledged trace is whole in Jaeger, nothing left",
    async (way) => {
      const { acknowledged, refused } = await stopUnderLoad(way)
      console.log(`${way}: ${acknowledged} transactions acknowledged, traced whole; ${refused} refused after the stop`)
      assert.isAtLeast(acknowledged, 20)
    },
    150_000
  )
})
