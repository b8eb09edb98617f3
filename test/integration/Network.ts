/**
 * The example network's processes for the integration tests: {@link spawnNode}
 * runs `examples/<script>` as a child (an Effect resource stopped with the
 * scope), plus free ports, readiness polling, HTTP and `/metrics` reading,
 * W3C trace headers and a per-test MongoDB database.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { assert } from "@effect/vitest"
import { Cause, Effect, Schedule } from "effect"
import { type Document, type Filter, MongoClient } from "mongodb"
import { inject } from "vitest"
import { freePorts as freePortsOf } from "../../servers/Process.ts"

/** How long a child may take to be ready, and to exit after SIGTERM. */
export const readyTimeoutMs = 30_000
export const exitTimeoutMs = 15_000

/** A child process of the test, with what it has printed. */
export interface Node {
  readonly name: string
  readonly child: ChildProcess
  readonly output: Array<string>
  /** Resolves once the process has exited and its output is read: exit code, or the signal that ended it. */
  readonly closed: Promise<Exit>
  /** Its exit, once it has exited. */
  exit: Exit | undefined
}

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** The children this file has started. */
const nodes: Array<Node> = []

/** Every child's output, for failure messages. */
const outputs = () =>
  nodes.map((node) =>
    `\n--- ${node.name} (${node.exit === undefined ? "running" : JSON.stringify(node.exit)}) ---\n` +
    node.output.join("\n")
  ).join("")

/** Adds the children's output to the message of `self`'s failure. */
export const withOutputs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.tapCause(self, (cause) =>
    Effect.sync(() => {
      const error = Cause.squash(cause)
      if (error instanceof Error) error.message += outputs()
      else console.error(`${String(error)}${outputs()}`)
    }))

/** The environment of a child: ours without the settings the test sets or relies on the defaults of; one worker. */
const childEnv = (env: Record<string, string>) => ({
  ...Object.fromEntries(
    Object.entries(process.env).filter(([name]) =>
      !/^(OTEL_|OTLP_|DAG_REGIONS$|DAG_NODES$|MONGODB_URI$|PRESENCE_|POH_|SENDING_DAG_)/.test(name)
    )
  ),
  SENDING_DAG_WORKERS: "1",
  OTEL_EXPORTER_OTLP_ENDPOINT: inject("otlpEndpoint"),
  ...env
})

/** SIGTERM, then waits for the exit up to `exitTimeoutMs`; SIGKILL after that. A stopped child is continued first. */
export const terminate = (node: Node) =>
  Effect.promise(async () => {
    if (node.exit !== undefined) return node.exit
    node.child.kill("SIGCONT")
    node.child.kill("SIGTERM")
    const killer = setTimeout(() => node.child.kill("SIGKILL"), exitTimeoutMs)
    const exit = await node.closed
    clearTimeout(killer)
    return exit
  })

/** Runs `examples/<script>` with `node` (this Node.js) as a resource: release stops it if it is still running. */
export const spawnNode = (name: string, script: string, env: Record<string, string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const path = fileURLToPath(new URL(`../../examples/${script}`, import.meta.url))
      const child = spawn(process.execPath, [path], {
        cwd: fileURLToPath(new URL("../..", import.meta.url)),
        env: childEnv(env),
        stdio: ["ignore", "pipe", "pipe"]
      })
      const output: Array<string> = []
      const keep = (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter((line) => line.trim() !== ""))
      child.stdout!.on("data", keep)
      child.stderr!.on("data", keep)
      child.on("error", (error) => output.push(String(error)))
      const node: Node = {
        name,
        child,
        output,
        exit: undefined,
        closed: new Promise((resolve) =>
          child.once("close", (code, signal) => {
            node.exit = { code, signal }
            resolve(node.exit)
          })
        )
      }
      nodes.push(node)
      return node
    }),
    terminate
  )

/** `count` distinct free loopback ports (see servers/Process.ts `freePort`). */
export const freePorts = (count: number) => Effect.promise(() => freePortsOf(count))

/**
 * Retries `check` every 200 ms while the `watched` children run, for `timeoutMs` (`readyTimeoutMs` by default);
 * dies at once if one exits.
 */
export const whileRunning = <A>(
  what: string,
  check: Effect.Effect<A, unknown>,
  watched: ReadonlyArray<Node>,
  timeoutMs = readyTimeoutMs
) => {
  let last: unknown
  return Effect.suspend(() => {
    const exited = watched.find((node) => node.exit !== undefined)
    return exited === undefined ? check : Effect.die(new Error(`${exited.name} exited before ${what}`))
  }).pipe(
    Effect.tapError((error) => Effect.sync(() => (last = error))),
    Effect.retry({ schedule: Schedule.spaced("200 millis") }),
    Effect.timeout(timeoutMs),
    Effect.mapError(() => new Error(`not ${what} within ${timeoutMs} ms: ${String(last)}`))
  )
}

/** A line `node` printed that matches `pattern`, once it has. */
export const logged = (node: Node, pattern: RegExp) =>
  Effect.suspend(() => {
    const match = node.output.map((line) => pattern.exec(line)).find((found) => found !== null)
    return match === undefined ? Effect.fail(`${node.name} printed no ${pattern}`) : Effect.succeed(match)
  })

/** An HTTP exchange of at most 10 s: status, content type and the JSON body. */
export const http = (url: string, init: RequestInit = {}) =>
  Effect.tryPromise(async (interrupted) => {
    const response = await fetch(url, { ...init, signal: AbortSignal.any([interrupted, AbortSignal.timeout(10_000)]) })
    return {
      status: response.status,
      contentType: response.headers.get("content-type") ?? "",
      body: await response.json() as unknown
    }
  })

/** Waits until the sending DAG at `url` answers `GET /ping` with 200 while `watched` run. */
export const pinging = (url: string, watched: ReadonlyArray<Node>) =>
  whileRunning(
    `${url} answered GET /ping`,
    Effect.filterOrFail(http(`${url}/ping`), (answer) => answer.status === 200),
    watched
  )

/** Every sample of a Prometheus text exposition at `url` (`/metrics`): `name{labels}` as printed → value. */
export const scrape = (url: string) =>
  Effect.tryPromise(async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(10_000) })
    const text = await response.text()
    return new Map(text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).map((line) => {
      const space = line.lastIndexOf(" ")
      return [line.slice(0, space), Number(line.slice(space + 1))] as const
    }))
  })

/** The sum of the samples of `name` whose labels include every one of `labels` (0 when there is none). */
export const sample = (
  samples: ReadonlyMap<string, number>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number => {
  let sum = 0
  for (const [series, value] of samples) {
    const brace = series.indexOf("{")
    if ((brace === -1 ? series : series.slice(0, brace)) !== name) continue
    if (Object.entries(labels).every(([label, wanted]) => series.includes(`${label}="${wanted}"`))) sum += value
  }
  return sum
}

/** A W3C `traceparent` of a new random trace, sampled. */
export const newTraceparent = () => {
  const traceId = randomBytes(16).toString("hex")
  const spanId = randomBytes(8).toString("hex")
  return { traceId, spanId, header: `00-${traceId}-${spanId}-01` }
}

/** `uri` naming `name` as its database. */
export const withDatabase = (uri: string, name: string) => {
  const [, base, options] = /^(mongodb(?:\+srv)?:\/\/[^/?]*)(?:\/[^?]*)?(\?.*)?$/.exec(uri) ?? []
  assert.isDefined(base, `a MongoDB URI: ${uri}`)
  return `${base}/${name}${options ?? ""}`
}

/** Host and port of the (first) server of `uri`. */
export const mongoServer = (uri: string) => {
  const [, address, port] = /^mongodb:\/\/(?:[^@/]*@)?\[?([^\]:/,?]+)\]?(?::(\d+))?/.exec(uri) ?? []
  return { address, port: Number(port ?? 27017) }
}

/** Drops the test's database when the scope closes. */
export const dropDatabaseAtEnd = (uri: string) =>
  Effect.addFinalizer(() =>
    Effect.promise(async () => {
      const client = new MongoClient(uri, { serverSelectionTimeoutMS: 2_000 })
      try {
        await client.db().dropDatabase()
      } finally {
        await client.close()
      }
    }).pipe(Effect.ignore)
  )

/** The `transactions` of the database of `uri` matching `filter`, read with a client of its own. */
export const storedTransactions = (uri: string, filter: Filter<Document> = {}) =>
  Effect.promise(async () => {
    const client = new MongoClient(uri, { serverSelectionTimeoutMS: 5_000 })
    try {
      return await client.db().collection("transactions").find(filter).toArray()
    } finally {
      await client.close()
    }
  })

/** Options of {@link startNetwork}: the environment of each node beyond its ports. */
export interface NetworkOptions {
  readonly poh?: Record<string, string>
  readonly dag?: Record<string, string>
}

/**
 * The PoH node and the sending DAG on free ports of 127.0.0.1, once the node has said where it listens and the DAG
 * answers `GET /ping`; both stopped with the scope. `pohEnv` starts the node again on the same port.
 */
export const startNetwork = (options: NetworkOptions = {}) =>
  Effect.gen(function*() {
    const [grpcPort, httpPort, dagMetricsPort, pohMetricsPort] = yield* freePorts(4)
    const pohEnv = {
      POH_GRPC_BIND: `127.0.0.1:${grpcPort}`,
      POH_METRICS_BIND: `127.0.0.1:${pohMetricsPort}`,
      ...options.poh
    }
    const poh = yield* spawnNode("poh-node", "poh-node.ts", pohEnv)
    const dagUrl = `http://127.0.0.1:${httpPort}`
    const dag = yield* spawnNode("sending-dag", "sending-dag.ts", {
      SENDING_DAG_BIND: `127.0.0.1:${httpPort}`,
      POH_ADDRESS: `127.0.0.1:${grpcPort}`,
      SENDING_DAG_METRICS_BIND: `127.0.0.1:${dagMetricsPort}`,
      ...options.dag
    })
    yield* whileRunning("the PoH node listened", logged(poh, /gRPC on (\S+);/), [poh, dag])
    yield* pinging(dagUrl, [poh, dag])
    return {
      poh,
      dag,
      pohEnv,
      grpcPort,
      dagUrl,
      dagMetrics: `http://127.0.0.1:${dagMetricsPort}/metrics`,
      pohMetrics: `http://127.0.0.1:${pohMetricsPort}/metrics`
    }
  })
