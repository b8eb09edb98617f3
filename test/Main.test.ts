/**
 * The example program (`npm start`) run as a child process: with no collector
 * it still works, and its shutdown — natural or by signal — ends in bounded
 * time with exit code 0 instead of crashing on the failed flush.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { once } from "node:events"
import { createServer, type Server } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Main } from "../src/index.ts"

interface Run {
  readonly child: ChildProcess
  readonly output: () => string
  /** Resolves with the exit code, or rejects when the process outlives `limitMs`. */
  readonly exited: (limitMs: number) => Promise<number | null>
  readonly printed: (text: string) => Promise<void>
}

const start = (env: Record<string, string>, options: { readonly ipc?: boolean } = {}): Run => {
  const child = spawn(process.execPath, ["examples/main.ts"], {
    env: { PATH: process.env.PATH ?? "", PROMETHEUS_BIND: "127.0.0.1:0", ...env },
    stdio: ["ignore", "pipe", "pipe", ...(options.ipc === true ? ["ipc" as const] : [])]
  })
  let output = ""
  const waiting = new Set<() => void>()
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    for (const check of waiting) check()
  }
  child.stdout!.on("data", collect)
  child.stderr!.on("data", collect)
  const exit = once(child, "exit").then(([code]) => code as number | null)
  return {
    child,
    output: () => output,
    exited: (limitMs) =>
      Promise.race([
        exit,
        new Promise<never>((_, reject) =>
          setTimeout(() => {
            child.kill("SIGKILL")
            reject(new Error(`still running after ${limitMs} ms:\n${output}`))
          }, limitMs).unref()
        )
      ]),
    printed: (text) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (output.includes(text)) {
            waiting.delete(check)
            resolve()
          }
        }
        waiting.add(check)
        check()
        void exit.then(() => reject(new Error(`exited before printing "${text}":\n${output}`)))
      })
  }
}

/** A TCP port that accepts connections and never answers: a collector that hangs. */
let blackHole: Server
let blackHolePort = 0

beforeAll(async () => {
  blackHole = createServer(() => undefined)
  blackHole.listen(0, "127.0.0.1")
  await once(blackHole, "listening")
  blackHolePort = (blackHole.address() as { port: number }).port
})

afterAll(() => {
  blackHole.close()
})

/** A loopback port with nothing listening on it. */
const closedPort = async () => {
  const server = createServer().listen(0, "127.0.0.1")
  await once(server, "listening")
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, "close")
  return port
}

describe("the example program without a collector", () => {
  it("commits its transactions and exits 0 when nothing listens on the OTLP port", async () => {
    const run = start({
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}`,
      DAG_EXAMPLE_COUNT: "5",
      DAG_EXAMPLE_RATE: "50"
    })
    expect(await run.exited(20_000)).toBe(0)
    expect(run.output()).toContain("committed 5 transactions")
    expect(run.output()).not.toMatch(/Unhandled|ERROR/)
    // Off a terminal, every line is a JSON log line of the program.
    for (const line of run.output().trim().split("\n")) {
      expect(JSON.parse(line)).toMatchObject({ level: "INFO", "service.name": "dag-example" })
    }
  })

  it("exits 0 on SIGTERM within its shutdown timeout when the collector hangs", async () => {
    const run = start({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackHolePort}` })
    await run.printed("metrics at http://127.0.0.1:")
    run.child.kill("SIGTERM")
    expect(await run.exited(15_000)).toBe(0)
    expect(run.output()).not.toMatch(/Unhandled|ERROR/)
  })

  it("a second signal forces the exit while the flush still hangs", async () => {
    const run = start({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackHolePort}` })
    await run.printed("metrics at http://127.0.0.1:")
    run.child.kill("SIGTERM")
    await new Promise((resolve) => setTimeout(resolve, Main.repeatWindowMillis + 300))
    run.child.kill("SIGTERM")
    expect(await run.exited(2_500)).toBe(130)
  })

  it("signals within the repeat window are one stop request (a terminal's Ctrl-C forwarded again by npm)", async () => {
    const run = start({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackHolePort}` })
    await run.printed("metrics at http://127.0.0.1:")
    run.child.kill("SIGINT")
    run.child.kill("SIGINT")
    await new Promise((resolve) => setTimeout(resolve, Main.repeatWindowMillis / 5))
    run.child.kill("SIGTERM")
    // Not 130: the shutdown ran to its end (the hung collector's flush given up after its timeout).
    expect(await run.exited(15_000)).toBe(0)
  })

  it("started over an IPC channel, it stops when the channel closes, and a close while stopping forces the exit", async () => {
    const run = start({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${await closedPort()}` }, { ipc: true })
    await run.printed("metrics at http://127.0.0.1:")
    run.child.disconnect()
    expect(await run.exited(15_000)).toBe(0)
    expect(run.output()).not.toMatch(/Unhandled|ERROR/)

    const hung = start({ OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${blackHolePort}` }, { ipc: true })
    await hung.printed("metrics at http://127.0.0.1:")
    hung.child.kill("SIGTERM")
    await new Promise((resolve) => setTimeout(resolve, 200))
    hung.child.disconnect()
    expect(await hung.exited(2_500)).toBe(130)
  })

  it("a bad setting stops it at start with one line naming the variable, and exit code 1: JSON off a terminal", async () => {
    const run = start({ PROMETHEUS_BIND: "nowhere" })
    expect(await run.exited(15_000)).toBe(1)
    const lines = run.output().trim().split("\n")
    expect(lines).toHaveLength(1)
    const line = JSON.parse(lines[0]!) as Record<string, string>
    expect(line).toMatchObject({ level: "ERROR", "error.type": "InvalidConfig" })
    expect(line["message"]).toMatch(
      /^InvalidConfig: PROMETHEUS_BIND="nowhere" is not valid: expected host:port with a port from 0 to 65535/
    )
  })

  it("with LOG_FORMAT=pretty the same failure is Effect's pretty line, still one", async () => {
    const run = start({ PROMETHEUS_BIND: "nowhere", LOG_FORMAT: "pretty" })
    expect(await run.exited(15_000)).toBe(1)
    const lines = run.output().trim().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^\[[\d:.]+\] ERROR \(#\d+\): InvalidConfig: PROMETHEUS_BIND="nowhere" is not valid: /)
  })
})
