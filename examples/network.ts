/**
 * `npm start`: the example DAG network on this machine, each node its own
 * process (examples/NodeProcess.ts): the Presence service (gRPC
 * `PRESENCE_GRPC_BIND`, metrics `PRESENCE_METRICS_BIND`), `POH_NODES` PoH
 * nodes (default 3) named `poh-1`, `poh-2`, … in the regions of
 * `POH_REGIONS` in turn (default `eu-central,us-east`), node `i` on the ports
 * of `POH_GRPC_BIND` and `POH_METRICS_BIND` plus `i - 1`, each announcing
 * itself to Presence; and the sending DAG (HTTP `SENDING_DAG_BIND`, metrics
 * `SENDING_DAG_METRICS_BIND`, `SENDING_DAG_WORKERS` processes), each given
 * its own addresses so that nothing inherited makes them collide. Beside them, when `npm run provision`
 * has built them: a FerretDB whose data is kept under the cache between runs
 * (`npm start -- --fresh` starts empty), unless `MONGODB_URI` names a server;
 * a Jaeger the nodes export their spans to (read a trace with
 * `npm run trace -- <trace id>`), unless an OTLP endpoint is named; and a
 * Prometheus scraping both nodes with the shipped rules and alerts.
 *
 * Stopping (Ctrl-C, SIGTERM to the launcher or to its process group) stops
 * the sending DAG, then the PoH nodes, then Presence — each finishes its
 * requests in flight, flushes its spans and exits 0 — then the servers, and
 * exits 0. A second
 * Ctrl-C forces the exit. A node that dies stops the network with a line
 * naming it, its exit code and its last error, and exit code 1.
 */
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Deferred, Effect, Fiber, Option } from "effect"
import { type Job, prometheusConfig } from "../dashboards/src/scrape.ts"
import { cacheDir, ferretdbBinary, jaegerBinary } from "../servers/Cache.ts"
import { defaultQueryUrl } from "../scripts/trace.ts"
import { preferredPort, startFerretDB, startJaeger, startPrometheus } from "../servers/Servers.ts"
import { Main, Settings } from "../src/index.ts"
import { type Endpoints, launch, type NodeExited, reachable } from "./NodeProcess.ts"

/** A `host:port` setting kept as the text given, after checking it parses. */
const address = (example: string): Settings.Parser<string> => ({
  expected: Settings.bind(example).expected,
  parse: (text) => Settings.parseBind(text) === undefined ? undefined : text
})

/** `bind` with its port moved up by `by`; port 0 (a free port) stays 0. */
const shifted = (bind: string, by: number) => {
  const { host, port } = Settings.parseBind(bind)!
  return Settings.formatAddress(host, port === 0 ? 0 : port + by)
}

const regionList: Settings.Parser<ReadonlyArray<string>> = {
  expected: "a comma-separated list of region names (letters, digits, '-')",
  parse: (text) => {
    const names = text.split(",").map((name) => name.trim())
    return names.every((name) => /^[a-z0-9][a-z0-9-]{0,31}$/.test(name)) ? names : undefined
  }
}

const settings = Settings.read({
  sendingDag: Settings.setting("SENDING_DAG_BIND", "0.0.0.0:8081", address("0.0.0.0:8081")),
  sendingDagMetrics: Settings.setting("SENDING_DAG_METRICS_BIND", "0.0.0.0:8000", address("0.0.0.0:8000")),
  poh: Settings.setting("POH_GRPC_BIND", "0.0.0.0:50051", address("0.0.0.0:50051")),
  pohMetrics: Settings.setting("POH_METRICS_BIND", "0.0.0.0:8001", address("0.0.0.0:8001")),
  pohNodes: Settings.setting("POH_NODES", 3, {
    expected: "a whole number of PoH nodes from 1 to 9",
    parse: (text) => /^[1-9]$/.test(text) ? Number(text) : undefined
  }),
  pohRegions: Settings.setting("POH_REGIONS", ["eu-central", "us-east"], regionList),
  presence: Settings.setting("PRESENCE_GRPC_BIND", "0.0.0.0:50050", address("0.0.0.0:50050")),
  presenceMetrics: Settings.setting("PRESENCE_METRICS_BIND", "0.0.0.0:8010", address("0.0.0.0:8010")),
  dagNodes: Settings.optional("DAG_NODES", { expected: "node ids", parse: (text) => text }),
  dataDir: Settings.setting("DAG_NETWORK_DATA", join(cacheDir, "network"), {
    expected: "a directory",
    parse: (text) => text
  }),
  fresh: Settings.setting("DAG_NETWORK_FRESH", process.argv.includes("--fresh"), Settings.boolean),
  mongodbUri: Settings.mongodbUri,
  otlpEndpoint: Settings.namedOtlpEndpoint,
  inheritedMetricsBind: Settings.optional("PROMETHEUS_BIND", address("0.0.0.0:8000"))
})

/** Storage for the sending DAG: the configured URI, else a local FerretDB keeping its data, else memory. */
const storage = (dataDir: string, fresh: boolean, configured: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isSome(configured)) return { env: {}, description: "MongoDB at MONGODB_URI" }
    if (!existsSync(ferretdbBinary)) {
      return { env: {}, description: "in memory (run `npm run provision` for a local FerretDB)" }
    }
    const data = join(dataDir, "ferretdb")
    if (fresh) rmSync(data, { recursive: true, force: true })
    const ferretdb = yield* Effect.acquireRelease(
      Effect.promise(() => startFerretDB({ dataDir: data })),
      (server) => Effect.promise(() => server.dispose())
    )
    const uri = `${ferretdb.uri}dag`
    return {
      env: { MONGODB_URI: uri },
      description: `FerretDB ${ferretdb.version} at ${uri}, data kept in ${data} (\`npm start -- --fresh\` starts empty)`
    }
  })

/** Where the nodes' spans go: the endpoint named, else a local Jaeger when one is built, else the default. */
const traces = (named: Option.Option<string>) =>
  Effect.gen(function*() {
    if (Option.isSome(named)) return { env: {}, description: [`OTLP gRPC to ${named.value}`] }
    if (!existsSync(jaegerBinary)) {
      return {
        env: {},
        description: ["OTLP gRPC to http://localhost:4317 (run `npm run provision` for a local Jaeger and Prometheus)"]
      }
    }
    const wanted = Number(new URL(defaultQueryUrl).port)
    const queryPort = yield* Effect.promise(() => preferredPort(wanted))
    const jaeger = yield* Effect.acquireRelease(
      Effect.promise(() => startJaeger({ queryPort })),
      (server) => Effect.promise(() => server.stop())
    )
    const trace = queryPort === wanted ? "npm run trace" : `JAEGER_QUERY_URL=${jaeger.queryUrl} npm run trace`
    return {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: jaeger.otlpEndpoint },
      description: [
        `Jaeger ${jaeger.version}: OTLP gRPC ${jaeger.otlpEndpoint}, query API ${jaeger.queryUrl}`,
        `             read one: ${trace} -- <trace id>  (every answer's traceresponse header names its trace)`
      ]
    }
  })

/** A Prometheus scraping every node with the shipped rules, when one is installed. */
const prometheus = (targets: Readonly<Record<Job, ReadonlyArray<string>>>) =>
  Effect.gen(function*() {
    if (!commandExists("prometheus")) return "not started (run `npm run provision` to install it)"
    const rules = fileURLToPath(new URL("../dashboards/prometheus/rules.yml", import.meta.url))
    const port = yield* Effect.promise(() => preferredPort(9090))
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startPrometheus({ port, config: prometheusConfig({ targets, ruleFiles: [rules], interval: "5s" }) })),
      (started) => Effect.promise(() => started.stop())
    )
    return `${server.url} scraping every node every 5 s, rules and alerts of dashboards/prometheus/rules.yml loaded`
  })

const commandExists = (name: string) =>
  (process.env["PATH"] ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, name)))

/** The `host:port` of a node's metrics URL. */
const hostOf = (url: string) => new URL(url).host

/** How long after a PoH node died the launcher starts it again. */
const restartDelay = "5 seconds"

/**
 * A PoH node the launcher starts again `restartDelay` after it dies (a node killed to watch failover comes back);
 * one that dies before it is ready, first time or again, stops the network.
 */
const restarted = (name: string, script: string, env: Readonly<Record<string, string>>) =>
  Effect.gen(function*() {
    const first = yield* Deferred.make<Endpoints, NodeExited>()
    let current: number | undefined
    const incarnation = (n: number) =>
      Effect.gen(function*() {
        const node = yield* launch(name, script, env)
        current = node.child.pid
        const at = yield* node.ready
        if (n === 0) yield* Deferred.succeed(first, at)
        return yield* Effect.flip(node.exited)
      }).pipe(Effect.scoped)
    const loop = Effect.gen(function*() {
      for (let n = 0;; n++) {
        const ended = yield* incarnation(n)
        yield* Effect.logWarning(`${ended.message}: starting it again in ${restartDelay}`)
        yield* Effect.sleep(restartDelay)
      }
    }).pipe(Effect.tapError((error) => Deferred.fail(first, error)))
    const fiber = yield* Effect.forkScoped(loop)
    return { ready: Deferred.await(first), exited: Fiber.join(fiber), pid: () => current }
  })

const program = Effect.gen(function*() {
  yield* Effect.addFinalizer(() => Effect.log("the DAG network stopped"))
  const config = yield* settings
  if (Option.isSome(config.inheritedMetricsBind)) {
    yield* Effect.log("PROMETHEUS_BIND is not used by the network: each node has its own (see README)")
  }
  const store = yield* storage(config.dataDir, config.fresh, config.mongodbUri)
  const exporting = yield* traces(config.otlpEndpoint)
  const presence = yield* launch("presence", "examples/presence.ts", {
    ...exporting.env,
    PRESENCE_GRPC_BIND: config.presence,
    PRESENCE_METRICS_BIND: config.presenceMetrics
  })
  const presenceAt: Endpoints = yield* presence.ready
  const pohNodes = Array.from({ length: config.pohNodes }, (_, i) => ({
    name: `poh-${i + 1}`,
    region: config.pohRegions[i % config.pohRegions.length]!,
    grpc: shifted(config.poh, i),
    metrics: shifted(config.pohMetrics, i)
  }))
  const pohs = yield* Effect.forEach(pohNodes, (node) =>
    restarted(node.name, "examples/poh-node.ts", {
      ...exporting.env,
      POH_GRPC_BIND: node.grpc,
      POH_METRICS_BIND: node.metrics,
      POH_NODE_NAME: node.name,
      POH_NODE_REGION: node.region,
      PRESENCE_ADDRESS: reachable(presenceAt["grpc"]!)
    }))
  const pohAt: ReadonlyArray<Endpoints> = yield* Effect.forEach(pohs, (node) => node.ready, { concurrency: "unbounded" })
  const dag = yield* launch("sending-dag", "examples/sending-dag.ts", {
    ...exporting.env,
    ...store.env,
    SENDING_DAG_BIND: config.sendingDag,
    SENDING_DAG_METRICS_BIND: config.sendingDagMetrics,
    PRESENCE_ADDRESS: reachable(presenceAt["grpc"]!),
    DAG_NODES: Option.getOrElse(config.dagNodes, () => pohNodes.map((node) => node.name).join(","))
  })
  const dagAt: Endpoints = yield* dag.ready
  const dagMetrics = Object.entries(dagAt).filter(([name]) => name.startsWith("metrics")).map(([, url]) => url)
  const scraping = yield* prometheus({
    "sending-dag": dagMetrics.map((url) => reachable(hostOf(url))),
    "poh-node": pohAt.map((at) => reachable(hostOf(at["metrics"]!))),
    "presence": [reachable(hostOf(presenceAt["metrics"]!))]
  })
  const base = dagAt["http"]!
  yield* Effect.log([
    "the DAG network is up:",
    `  sending DAG  ${base}  (GET /ping, POST /tx, POST /poh, GET /tx/:id), ${dagMetrics.length} worker(s)`,
    `  Presence     grpc ${presenceAt["grpc"]}`,
    ...pohNodes.map((node, i) =>
      `  PoH node     ${node.name} (${node.region}) grpc ${pohAt[i]!["grpc"]}, pid ${pohs[i]!.pid()}`
    ),
    `  metrics      ${dagMetrics.join(", ")} (sending DAG), ${pohAt.map((at) => at["metrics"]).join(", ")} ` +
    `(PoH nodes), ${presenceAt["metrics"]} (Presence)`,
    `  storage      ${store.description}`,
    ...exporting.description.map((line, i) => i === 0 ? `  traces       ${line}` : line),
    `  Prometheus   ${scraping}`,
    `try: curl -i -X POST ${base}/tx -H 'content-type: application/json' \\`,
    "       -d '{\"from\":\"alice\",\"to\":\"bob\",\"amount\":5,\"region\":\"eu-central\"}'",
    `failover: kill -KILL <pid of a PoH node> under load; it is started again ${restartDelay} later`,
    "load: npm run load    stop: Ctrl-C (twice to force)"
  ].join("\n"))
  return yield* Effect.raceAll([presence.exited, ...pohs.map((node) => node.exited), dag.exited])
}).pipe(Effect.scoped)

program.pipe(Main.runMain)
