/**
 * `npm start`: the example DAG network on this machine, each node its own
 * process (examples/NodeProcess.ts): the PoH node (gRPC `POH_GRPC_BIND`,
 * metrics `POH_METRICS_BIND`) and the sending DAG (HTTP `SENDING_DAG_BIND`,
 * metrics `SENDING_DAG_METRICS_BIND`), each given its own addresses so that
 * nothing inherited makes them collide. Beside them, when `npm run provision`
 * has built them: a FerretDB whose data is kept under the cache between runs
 * (`npm start -- --fresh` starts empty), unless `MONGODB_URI` names a server;
 * a Jaeger the nodes export their spans to (read a trace with
 * `npm run trace -- <trace id>`), unless an OTLP endpoint is named; and a
 * Prometheus scraping both nodes with the shipped rules and alerts.
 *
 * Stopping (Ctrl-C, SIGTERM to the launcher or to its process group) stops
 * the sending DAG, then the PoH node — each finishes its requests in flight,
 * flushes its spans and exits 0 — then the servers, and exits 0. A second
 * Ctrl-C forces the exit. A node that dies stops the network with a line
 * naming it, its exit code and its last error, and exit code 1.
 */
import { existsSync, rmSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Effect, Option } from "effect"
import { prometheusConfig } from "../dashboards/src/scrape.ts"
import { cacheDir, ferretdbBinary, jaegerBinary } from "../servers/Cache.ts"
import { defaultQueryUrl } from "../scripts/trace.ts"
import { preferredPort, startFerretDB, startJaeger, startPrometheus } from "../servers/Servers.ts"
import { Main, Settings } from "../src/index.ts"
import { type Endpoints, launch } from "./NodeProcess.ts"

/** A `host:port` setting kept as the text given, after checking it parses. */
const address = (example: string): Settings.Parser<string> => ({
  expected: Settings.bind(example).expected,
  parse: (text) => Settings.parseBind(text) === undefined ? undefined : text
})

const settings = Settings.read({
  sendingDag: Settings.setting("SENDING_DAG_BIND", "0.0.0.0:8081", address("0.0.0.0:8081")),
  sendingDagMetrics: Settings.setting("SENDING_DAG_METRICS_BIND", "0.0.0.0:8000", address("0.0.0.0:8000")),
  poh: Settings.setting("POH_GRPC_BIND", "0.0.0.0:50051", address("0.0.0.0:50051")),
  pohMetrics: Settings.setting("POH_METRICS_BIND", "0.0.0.0:8001", address("0.0.0.0:8001")),
  dataDir: Settings.setting("DAG_NETWORK_DATA", join(cacheDir, "network"), {
    expected: "a directory",
    parse: (text) => text
  }),
  fresh: Settings.setting("DAG_NETWORK_FRESH", process.argv.includes("--fresh"), Settings.boolean),
  mongodbUri: Settings.mongodbUri,
  otlpEndpoint: Settings.namedOtlpEndpoint,
  inheritedMetricsBind: Settings.optional("PROMETHEUS_BIND", address("0.0.0.0:8000"))
})

/** A bound address to connect to: the wildcard hosts become loopback. */
const reachable = (bound: string) => bound.replace(/^0\.0\.0\.0:/, "127.0.0.1:").replace(/^\[::\]:/, "[::1]:")

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

/** A Prometheus scraping both nodes with the shipped rules, when one is installed. */
const prometheus = (targets: { readonly "sending-dag": string; readonly "poh-node": string }) =>
  Effect.gen(function*() {
    if (!commandExists("prometheus")) return "not started (run `npm run provision` to install it)"
    const rules = fileURLToPath(new URL("../dashboards/prometheus/rules.yml", import.meta.url))
    const port = yield* Effect.promise(() => preferredPort(9090))
    const server = yield* Effect.acquireRelease(
      Effect.promise(() => startPrometheus({ port, config: prometheusConfig({ targets, ruleFiles: [rules], interval: "5s" }) })),
      (started) => Effect.promise(() => started.stop())
    )
    return `${server.url} scraping both nodes every 5 s, rules and alerts of dashboards/prometheus/rules.yml loaded`
  })

const commandExists = (name: string) =>
  (process.env["PATH"] ?? "").split(":").some((dir) => dir !== "" && existsSync(join(dir, name)))

/** The `host:port` of a node's metrics URL. */
const hostOf = (url: string) => new URL(url).host

const program = Effect.gen(function*() {
  yield* Effect.addFinalizer(() => Effect.log("the DAG network stopped"))
  const config = yield* settings
  if (Option.isSome(config.inheritedMetricsBind)) {
    yield* Effect.log("PROMETHEUS_BIND is not used by the network: each node has its own (see README)")
  }
  const store = yield* storage(config.dataDir, config.fresh, config.mongodbUri)
  const exporting = yield* traces(config.otlpEndpoint)
  const poh = yield* launch("poh-node", "examples/poh-node.ts", {
    ...exporting.env,
    POH_GRPC_BIND: config.poh,
    POH_METRICS_BIND: config.pohMetrics
  })
  const pohAt: Endpoints = yield* poh.ready
  const dag = yield* launch("sending-dag", "examples/sending-dag.ts", {
    ...exporting.env,
    ...store.env,
    SENDING_DAG_BIND: config.sendingDag,
    SENDING_DAG_METRICS_BIND: config.sendingDagMetrics,
    POH_ADDRESS: reachable(pohAt["grpc"]!)
  })
  const dagAt: Endpoints = yield* dag.ready
  const scraping = yield* prometheus({
    "sending-dag": reachable(hostOf(dagAt["metrics"]!)),
    "poh-node": reachable(hostOf(pohAt["metrics"]!))
  })
  const base = dagAt["http"]!
  yield* Effect.log([
    "the DAG network is up:",
    `  sending DAG  ${base}  (GET /ping, POST /tx, POST /poh, GET /tx/:id)`,
    `  PoH node     grpc ${pohAt["grpc"]}`,
    `  metrics      ${dagAt["metrics"]} (sending DAG), ${pohAt["metrics"]} (PoH node)`,
    `  storage      ${store.description}`,
    ...exporting.description.map((line, i) => i === 0 ? `  traces       ${line}` : line),
    `  Prometheus   ${scraping}`,
    `try: curl -i -X POST ${base}/tx -H 'content-type: application/json' \\`,
    "       -d '{\"from\":\"alice\",\"to\":\"bob\",\"amount\":5,\"region\":\"eu-central\"}'",
    "load: npm run load    stop: Ctrl-C (twice to force)"
  ].join("\n"))
  return yield* Effect.raceFirst(poh.exited, dag.exited)
}).pipe(Effect.scoped)

program.pipe(Main.runMain)
