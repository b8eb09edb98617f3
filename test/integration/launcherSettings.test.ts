/**
 * `npm start`'s settings and servers: a node that cannot start stops the
 * network with a line naming it, its exit code and its error (a bind naming
 * its variable and address); the FerretDB data survives a restart unless
 * `--fresh`; without provisioned servers the network still runs and says in
 * one line how to get them.
 */
import { dirname } from "node:path"
import { afterAll, assert, beforeAll, describe, inject, it } from "vitest"
import {
  alive,
  descendants,
  type Launcher,
  loopbackBinds,
  networkUp,
  startLauncher,
  surroundings
} from "./Launcher.ts"

let around: Awaited<ReturnType<typeof surroundings>>

beforeAll(async () => {
  around = await surroundings()
})

afterAll(() => around.close())

const exitOf = async (launcher: Launcher, ms = 60_000) => {
  const timer = setTimeout(() => launcher.child.kill("SIGKILL"), ms)
  const exit = await launcher.exited
  clearTimeout(timer)
  return exit
}

/** Stops a running network with SIGTERM and checks it ended well, leaving nothing. */
const stop = async (launcher: Launcher) => {
  const started = descendants(launcher.child.pid!)
  launcher.child.kill("SIGTERM")
  assert.deepStrictEqual(await exitOf(launcher), { code: 0, signal: null }, launcher.output.join("\n"))
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.deepStrictEqual(alive(started), [])
}

const submit = async (base: string) => {
  const response = await fetch(`${base}/tx`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ from: "alice", to: "bob", amount: 5, region: "eu-central" })
  })
  assert.strictEqual(response.status, 201)
  return (await response.json() as { readonly id: string }).id
}

const common = () => ({ ...loopbackBinds, OTEL_EXPORTER_OTLP_ENDPOINT: inject("otlpEndpoint") })

describe("npm start's settings", () => {
  it.each([
    ["POH_METRICS_BIND", "poh-1", "/metrics"],
    ["SENDING_DAG_BIND", "sending-dag", "HTTP"],
    ["POH_GRPC_BIND", "poh-1", "PoH gRPC"],
    ["PRESENCE_GRPC_BIND", "presence", "Presence gRPC"]
  ] as const)("%s taken: the launcher names %s, its exit code and its one-line error, stops the rest, exits 1", async (
    variable,
    node,
    server
  ) => {
    const launcher = startLauncher("node", { ...common(), DAG_NETWORK_DATA: around.tempDir(), [variable]: around.takenBind })
    const exit = await exitOf(launcher)
    const output = launcher.output.join("\n")
    assert.deepStrictEqual(exit, { code: 1, signal: null }, output)
    const line = launcher.output.find((printed) => printed.includes(`${node} exited with code 1:`))
    assert.isDefined(line, output)
    assert.include(line, `ListenError: cannot serve ${server} on ${around.takenBind} (${variable}): `)
    assert.match(line!, /EADDRINUSE|address already in use/)
    assert.include(output, "the DAG network stopped")
    if (node === "sending-dag") assert.include(output, "poh-1 stopped: exit code 0")
  }, 90_000)

  it("acknowledged transactions are read back after a restart; --fresh starts empty", async () => {
    const data = around.tempDir()
    const first = startLauncher("node", { ...common(), DAG_NETWORK_DATA: data })
    const id = await submit(await networkUp(first))
    await stop(first)

    const again = startLauncher("node", { ...common(), DAG_NETWORK_DATA: data })
    const base = await networkUp(again)
    const read = await fetch(`${base}/tx/${id}`)
    assert.strictEqual(read.status, 200, again.output.join("\n"))
    assert.strictEqual((await read.json() as { readonly id: string }).id, id)
    await stop(again)

    const fresh = startLauncher("node", { ...common(), DAG_NETWORK_DATA: data }, ["--fresh"])
    assert.strictEqual((await fetch(`${await networkUp(fresh)}/tx/${id}`)).status, 404)
    await stop(fresh)
  }, 120_000)

  it("without provisioned servers it still runs, saying in one line how to get them", async () => {
    const launcher = startLauncher("node", {
      ...loopbackBinds,
      DAG_OBS_CACHE: around.tempDir(),
      DAG_NETWORK_DATA: around.tempDir(),
      PATH: dirname(process.execPath)
    })
    const base = await networkUp(launcher)
    await submit(base)
    const output = launcher.output.join("\n")
    assert.match(output, /storage\s+in memory \(run `npm run provision` for a local FerretDB\)/)
    assert.match(output, /traces\s+OTLP gRPC to http:\/\/localhost:4317 \(run `npm run provision` for a local Jaeger/)
    assert.match(output, /Prometheus\s+not started \(run `npm run provision` to install it\)/)
    await stop(launcher)
  }, 90_000)
})
