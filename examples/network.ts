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
 * `npm run trace -- <trace id>`), unless an OTLP endpoint is named, with an
 * OpenTelemetry Collector between the nodes and it (span metrics, tail
 * sampling, logs: examples/Telemetry.ts); and a Prometheus scraping every node
 * and worker that the launcher lists in a file_sd file as they come up, with
 * the shipped rules and alerts, writing the recorded series to a second
 * Prometheus (a long-term stand-in). SIGUSR2 to the launcher starts one more
 * PoH node (the next name, region and ports), which Prometheus discovers.
 *
 * Stopping (Ctrl-C, SIGTERM to the launcher or to its process group) stops
 * the sending DAG, then the PoH nodes, then Presence — each finishes its
 * requests in flight, flushes its spans and exits 0 — then the servers, and
 * exits 0. A second
 * Ctrl-C forces the exit. A node that dies stops the network with a line
 * naming it, its exit code and its last error, and exit code 1.
 */
import { existsSync, rmSync } from "node:fs"
import { join, relative } from "node:path"
import { Deferred, Duration, Effect, Fiber, Option, Queue, Stream } from "effect"
import { prometheusConfig, type Target } from "../dashboards/src/scrape.ts"
import { cacheDir, ferretdbBinary } from "../servers/Cache.ts"
import { preferredPort, startFerretDB, startPrometheus } from "../servers/Servers.ts"
import { Main, Settings } from "../src/index.ts"
import { type Endpoints, launch, type NodeExited, reachable } from "./NodeProcess.ts"
import { alerting } from "./Alerting.ts"
import { discovery, longTermStore, traces } from "./Telemetry.ts"

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

/**
 * A Prometheus scraping every node and worker that the file_sd file `fileSd` lists, and the `collectors`, with the
 * shipped rules, when one is installed; it writes the recorded series to a long-term stand-in (examples/Telemetry.ts).
 */
const prometheus = (fileSd: string, collectors: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    if (!commandExists("prometheus")) return "not started (run `npm run provision` to install it)"
    const alerts = yield* alerting
    const longTerm = yield* longTermStore
    const port = yield* Effect.promise(() => preferredPort(9090))
    const remoteWrite = `${longTerm.url}/api/v1/write`
    const { rules, interval } = alerts
    const config = alerts.configure(
      prometheusConfig({ fileSd: [fileSd], collectors, ruleFiles: rules, remoteWrite, interval })
    )
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startPrometheus({ port, config })),
      (started) => Effect.promise(() => started.stop())
    )
    return `${server.url} scraping every ${interval} the nodes and workers of ${fileSd} (file_sd) and the ` +
      `collector, rules and alerts of ${rules.map((file) => relative(process.cwd(), file)).join(", ")} loaded\n` +
      `  long-term    ${longTerm.url} (a Prometheus receiving the recorded series by remote write)\n` +
      `  alerts       ${alerts.description}`
  })

const commandExists = (name: string) =>
  (process.env["PATH"] ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, name)))

/** The `host:port` of a node's metrics URL. */
const hostOf = (url: string) => new URL(url).host

/** `POH_RESTART_DELAY`: how long after a PoH node died the launcher starts it again (5 s; the pipeline test 15 s, the alerting test 20 s). */
const restartDelay = Settings.read(Settings.setting("POH_RESTART_DELAY", Duration.seconds(5), Settings.duration))

/**
 * A PoH node the launcher starts again `restartDelay` after it dies (a node killed to watch failover comes back);
 * one that dies before it is ready, first time or again, stops the network. `onReady` is told where each start
 * listens.
 */
const restarted = (
  name: string,
  script: string,
  env: Readonly<Record<string, string>>,
  onReady: (at: Endpoints) => Effect.Effect<void>
) =>
  Effect.gen(function*() {
    const delay = yield* restartDelay
    const first = yield* Deferred.make<Endpoints, NodeExited>()
    let current: number | undefined
    const incarnation = (n: number) =>
      Effect.gen(function*() {
        const node = yield* launch(name, script, env)
        current = node.child.pid
        const at = yield* node.ready
        yield* onReady(at)
        if (n === 0) yield* Deferred.succeed(first, at)
        return yield* Effect.flip(node.exited)
      }).pipe(Effect.scoped)
    const loop = Effect.gen(function*() {
      for (let n = 0;; n++) {
        const ended = yield* incarnation(n)
        yield* Effect.logWarning(`${ended.message}: starting it again in ${Duration.format(delay)}`)
        yield* Effect.sleep(delay)
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
  const exporting = yield* traces(config.otlpEndpoint, config.dataDir)
  const targets = yield* discovery(join(config.dataDir, "prometheus", "targets.json"))
  const scraping = yield* prometheus(targets.file, exporting.collectors)
  /** Lists a node (or worker) in the file_sd file as `role`, at the `host:port` of its metrics URL. */
  const listed = (node: string, region: string, role: Target["role"], metrics: string) =>
    targets.set({ address: reachable(hostOf(metrics)), node, region, role })
  const presence = yield* launch("presence", "examples/presence.ts", {
    ...exporting.env,
    PRESENCE_GRPC_BIND: config.presence,
    PRESENCE_METRICS_BIND: config.presenceMetrics
  })
  const presenceAt: Endpoints = yield* presence.ready
  yield* listed("presence", "global", "presence", presenceAt["metrics"]!)
  const pohNode = (i: number) => ({
    name: `poh-${i + 1}`,
    region: config.pohRegions[i % config.pohRegions.length]!,
    grpc: shifted(config.poh, i),
    metrics: shifted(config.pohMetrics, i)
  })
  const pohNodes = Array.from({ length: config.pohNodes }, (_, i) => pohNode(i))
  const startPoh = (node: ReturnType<typeof pohNode>) =>
    restarted(node.name, "examples/poh-node.ts", {
      ...exporting.env,
      POH_GRPC_BIND: node.grpc,
      POH_METRICS_BIND: node.metrics,
      POH_NODE_NAME: node.name,
      POH_NODE_REGION: node.region,
      PRESENCE_ADDRESS: reachable(presenceAt["grpc"]!)
    }, (at) => listed(node.name, node.region, "poh-node", at["metrics"]!))
  const pohs = yield* Effect.forEach(pohNodes, startPoh)
  let pohCount = pohNodes.length
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
  yield* Effect.forEach(dagMetrics, (url, i) => listed(`sending-dag-${i + 1}`, "global", "sending-dag", url))
  // SIGUSR2: one more PoH node (poh-4, …, the regions and ports in turn), listed for Prometheus once it is ready.
  const added = yield* Deferred.make<never, NodeExited>()
  yield* Stream.callback<void>((queue) => {
    const more = () => Queue.offerUnsafe(queue, undefined)
    return Effect.acquireRelease(
      Effect.sync(() => process.on("SIGUSR2", more)),
      () => Effect.sync(() => process.off("SIGUSR2", more))
    )
  }).pipe(
    Stream.runForEach(() =>
      Effect.gen(function*() {
        const node = pohNode(pohCount++)
        const started = yield* startPoh(node)
        yield* Effect.forkScoped(Effect.catch(started.exited, (error) => Deferred.fail(added, error)))
        const at = yield* started.ready
        yield* Effect.log(`PoH node ${node.name} (${node.region}) added: grpc ${at["grpc"]}, pid ${started.pid()}`)
      })
    ),
    Effect.forkScoped
  )
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
    `failover: kill -KILL <pid of a PoH node> under load; it is started again ${Duration.format(yield* restartDelay)} later`,
    `one more PoH node: kill -USR2 ${process.pid}    load: npm run load    stop: Ctrl-C (twice to force)`
  ].join("\n"))
  return yield* Effect.raceAll([presence.exited, ...pohs.map((node) => node.exited), dag.exited, Deferred.await(added)])
}).pipe(Effect.scoped)

program.pipe(Main.runMain)
