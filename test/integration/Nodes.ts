/**
 * The example network of issue 14 for the integration tests: a Presence
 * service, PoH nodes announcing themselves to it and a sending DAG asking it,
 * each a child process on free loopback ports (test/integration/Network.ts),
 * with the addresses each printed.
 */
import { Effect } from "effect"
import { freePorts, logged, type Node, pinging, spawnNode, whileRunning } from "./Network.ts"

/** A started Presence service: its process, gRPC address, `/metrics` URL, and the environment to start it again. */
export interface PresenceProcess {
  readonly node: Node
  readonly address: string
  readonly metrics: string
  readonly env: Record<string, string>
}

/** The Presence service on free ports, once it listens; `env` over its defaults. */
export const startPresence = (env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const [grpcPort, metricsPort] = yield* freePorts(2)
    const started = {
      PRESENCE_GRPC_BIND: `127.0.0.1:${grpcPort}`,
      PRESENCE_METRICS_BIND: `127.0.0.1:${metricsPort}`,
      ...env
    }
    const node = yield* spawnNode("presence", "presence.ts", started)
    yield* whileRunning("Presence listened", logged(node, /presence: gRPC on (\S+),/), [node])
    return {
      node,
      address: `127.0.0.1:${grpcPort}`,
      metrics: `http://127.0.0.1:${metricsPort}/metrics`,
      env: started
    } satisfies PresenceProcess
  })

/** A started PoH node: its process, id, gRPC address, `/metrics` URL and the environment to start it again. */
export interface PohProcess {
  readonly node: Node
  readonly id: string
  readonly address: string
  readonly metrics: string
  readonly env: Record<string, string>
}

/** The PoH node `id` of `region` on free ports announcing itself to `presence`, once it listens. */
export const startPohNode = (id: string, region: string, presence: string, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const [grpcPort, metricsPort] = yield* freePorts(2)
    const started = {
      POH_GRPC_BIND: `127.0.0.1:${grpcPort}`,
      POH_METRICS_BIND: `127.0.0.1:${metricsPort}`,
      POH_NODE_NAME: id,
      POH_NODE_REGION: region,
      PRESENCE_ADDRESS: presence,
      ...env
    }
    const node = yield* spawnNode(id, "poh-node.ts", started)
    yield* whileRunning(`${id} listened`, logged(node, /gRPC on (\S+);/), [node])
    return {
      node,
      id,
      address: `127.0.0.1:${grpcPort}`,
      metrics: `http://127.0.0.1:${metricsPort}/metrics`,
      env: started
    } satisfies PohProcess
  })

/**
 * The sending DAG with `workers` processes asking `presence`, once it answers `GET /ping`: its URL and each worker's
 * `/metrics` URL, read from what it printed.
 */
export const startSendingDag = (presence: string, workers: number, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const [httpPort, metricsPort] = yield* freePorts(2)
    const dag = yield* spawnNode("sending-dag", "sending-dag.ts", {
      SENDING_DAG_BIND: `127.0.0.1:${httpPort}`,
      SENDING_DAG_METRICS_BIND: `127.0.0.1:${metricsPort}`,
      SENDING_DAG_WORKERS: String(workers),
      PRESENCE_ADDRESS: presence,
      ...env
    })
    const url = `http://127.0.0.1:${httpPort}`
    yield* pinging(url, [dag])
    const metrics = workers === 1
      ? [`http://127.0.0.1:${metricsPort}/metrics`]
      : (yield* whileRunning("the workers said where they serve /metrics", logged(dag, /workers on \S+; metrics at (.+)$/), [dag]))[1]!
        .split(", ")
    return { dag, url, metrics }
  })

/** `host:port` of a `/metrics` URL: a Prometheus target. */
export const scrapeTarget = (metricsUrl: string) => new URL(metricsUrl).host
