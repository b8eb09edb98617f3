/**
 * The committed dashboards/ files are what dashboards/src generates (the SLO
 * rules: what Sloth generates from the committed spec), and the dashboard,
 * built with Grafana's SDK, is importable into any Grafana: datasource only
 * through the `datasource` variable, a unit and a query on every panel, the
 * panels of SPEC §7 after the SLOs', and only metric names the registry serves
 * or the rules record.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { files } from "../dashboards/src/files.ts"
import { datasource } from "../dashboards/src/panels.ts"
import { alertingRules, recordingRules } from "../dashboards/src/rules.ts"
import { sloRules, sloRulesPath } from "../dashboards/src/sloRules.ts"
import { objectives } from "../dashboards/src/slos.ts"
import { DagMetrics, Presence } from "../src/dag/index.ts"
import * as Grpc from "../src/Grpc.ts"
import { Http, Metrics, Tracing } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import * as MongoMonitor from "../src/MongoMonitor.ts"
import * as FakeMongo from "./support/Mongo.ts"

const root = fileURLToPath(new URL("../", import.meta.url))

/** What of a panel this test reads. */
interface Panel {
  readonly id: number
  readonly type: string
  readonly title: string
  readonly datasource: unknown
  readonly gridPos: { readonly x: number; readonly w: number }
  readonly fieldConfig: { readonly defaults: { readonly unit: string } }
  readonly targets: ReadonlyArray<{ readonly refId: string; readonly datasource: unknown; readonly expr: string }>
}

/** The committed dashboard, as Grafana would import it. */
const committed = JSON.parse(readFileSync(`${root}dashboards/dag-observability.json`, "utf8")) as {
  readonly uid: string
  readonly schemaVersion: number
  readonly annotations: { readonly list: ReadonlyArray<unknown> }
  readonly templating: { readonly list: ReadonlyArray<Record<string, unknown>> }
  readonly panels: ReadonlyArray<Panel>
}

/** The series the committed SLO rules record. */
const sloRecorded = [...readFileSync(`${root}${sloRulesPath}`, "utf8").matchAll(/- record: (\S+)/g)].map(([, name]) =>
  name!
)

const keywords = new Set(["and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring"])

/** The series names a PromQL expression reads: identifiers that are neither functions, keywords nor labels. */
const seriesNames = (expr: string): Array<string> => {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, "\"\"")
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "")
    .replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, "")
  return [...bare.matchAll(/[A-Za-z_:][\w:]*/g)]
    .filter((match) => !/^\s*\(/.test(bare.slice(match.index + match[0].length)) && !keywords.has(match[0]))
    .map(([name]) => name)
}

/**
 * Every series name the live registry serves once every instrumentation is in use (histograms as their _bucket,
 * _sum and _count), and Prometheus's `up`: the Node.js defaults, the DAG's metrics, HTTP, OTLP export, gRPC server
 * and client, and the MongoDB monitor, each registering its own families as a program using it does.
 */
const servedNames = Effect.gen(function*() {
  const metrics = yield* Metrics.make({ defaultMetrics: true })
  yield* Effect.gen(function*() {
    yield* DagMetrics.make({ regions: DagMetrics.defaultRegions })
    Presence.onlineGauge(metrics)
    Http.durationHistogram(metrics)
    Tracing.exportCounter(metrics)
    yield* Grpc.serverInterceptor
    yield* Grpc.clientInterceptor()
    yield* MongoMonitor.make.pipe(Effect.provideServiceEffect(Mongo.Mongo, FakeMongo.unconnected()), Effect.scoped)
  }).pipe(Effect.provideService(Metrics.Metrics, metrics))
  const names = metrics.registry.getMetricsAsArray().flatMap(({ name, type }) =>
    String(type) === "histogram" || String(type) === "summary" ?
      [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] :
      [name]
  )
  metrics.registry.clear()
  return new Set(["up", ...names])
})

const panels = committed.panels

describe("dashboards/", () => {
  it("the committed files are what `npm run dashboards` generates", () => {
    for (const [path, content] of Object.entries(files)) {
      assert.strictEqual(readFileSync(`${root}${path}`, "utf8"), content, `${path}: run npm run dashboards`)
    }
  })

  it("the committed SLO rules are what Sloth generates from the committed spec", async () => {
    assert.strictEqual(readFileSync(`${root}${sloRulesPath}`, "utf8"), await sloRules(), "run npm run dashboards")
  })

  it("the dashboard has the schema of Grafana 11.6 and 12, annotations and a datasource variable of type prometheus", () => {
    assert.strictEqual(committed.schemaVersion, 41)
    assert.deepStrictEqual(committed.annotations, { list: [] })
    assert.isString(committed.uid)
    const variable = committed.templating.list.find((entry) => entry.name === "datasource")
    assert.deepInclude(variable, { type: "datasource", query: "prometheus" })
  })

  it("every panel has a unique id, a unit, the datasource variable and at least one query", () => {
    assert.strictEqual(new Set(panels.map((panel) => panel.id)).size, panels.length)
    for (const panel of panels) {
      assert.deepStrictEqual(panel.datasource, { type: "prometheus", uid: "${datasource}" }, panel.title)
      assert.match(panel.fieldConfig.defaults.unit, /^(?:reqps|ops|s|percentunit|bytes|short)$/, panel.title)
      assert.isNotEmpty(panel.targets, panel.title)
      for (const target of panel.targets) {
        assert.deepStrictEqual(target.datasource, datasource, `${panel.title} ${target.refId}`)
        assert.isNotEmpty(target.expr, `${panel.title} ${target.refId}`)
      }
      assert.isAtMost(panel.gridPos.x + panel.gridPos.w, 24, panel.title)
    }
  })

  it("names no datasource but the variable", () => {
    const uids = [...JSON.stringify(committed).matchAll(/"uid":"([^"]*)"/g)].map(([, uid]) => uid)
    assert.deepStrictEqual(new Set(uids), new Set([committed.uid, "${datasource}"]))
  })

  it("has the SLO panels, then those of SPEC §7", () => {
    assert.deepStrictEqual(panels.map((panel) => panel.title), [
      "SLO error budget remaining (30 days)",
      "SLO burn rate (5 minutes)",
      "SLO bad events (5 minutes)",
      "Tx/s",
      "PoH requests vs acks by region",
      "PoH ack ratio",
      "PoH approval latency p50/p90/p99",
      "Storage latency p50/p90/p99",
      "Presence success rate",
      "gRPC requests by method and code",
      "gRPC latency p99 by method and code",
      "gRPC error rate by method",
      "HTTP requests by route and status",
      "HTTP error rate by route",
      "HTTP latency p50/p90/p99 by route",
      "MongoDB command latency p99 by command",
      "Event-loop lag",
      "Heap",
      "OTLP export failures",
      "PoH approval latency p50/p99 by node",
      "PoH requests by node and status",
      "Cross-region PoH requests",
      "Presence: online PoH nodes by region"
    ])
  })

  it("the PoH node panels filter by the node variable, which lists the nodes of poh_requests_total", () => {
    const variable = committed.templating.list.find((entry) => entry.name === "node")
    assert.deepInclude(variable, { type: "query", query: "label_values(poh_requests_total, node)", includeAll: true })
    const byNode = panels.filter((panel) => panel.title.includes("by node"))
    assert.lengthOf(byNode, 2)
    for (const panel of byNode) {
      for (const target of panel.targets) assert.include(target.expr, "node=~\"$node\"", panel.title)
    }
    const gauge = panels.find((panel) => panel.title === "Presence: online PoH nodes by region")
    assert.strictEqual(gauge?.type, "gauge")
    assert.include(gauge?.targets[0]?.expr, "presence_online_nodes")
  })

  it.effect("every series a panel, a variable or a rule reads is served by the registry or recorded by a rule", () =>
    Effect.gen(function*() {
      const served = yield* servedNames
      const recorded = new Set([...recordingRules.map((rule) => rule.record), ...sloRecorded])
      const exprs = [
        ...panels.flatMap((panel) => panel.targets.map((target) => [panel.title, target.expr] as const)),
        ...[...JSON.stringify(committed.templating).matchAll(/label_values\((\w+),/g)].map(([, name]) =>
          ["templating", name!] as const
        ),
        ...[...recordingRules, ...alertingRules].map((rule) => ["rules.yml", rule.expr] as const),
        ...Object.values(objectives).flatMap((slo) => [[slo.slo, slo.errorQuery], [slo.slo, slo.totalQuery]] as const)
      ]
      const used = new Set<string>()
      for (const [where, expr] of exprs) {
        const names = seriesNames(expr)
        assert.isNotEmpty(names, `${where}: ${expr}`)
        for (const name of names) {
          used.add(name)
          assert.isTrue(served.has(name) || recorded.has(name), `${where}: ${name} in ${expr}`)
        }
      }
      assert.includeMembers([...used], [
        "tx_committed_total",
        "poh_approval_latency_seconds_bucket",
        "up",
        "slo:period_error_budget_remaining:ratio",
        "http_server_request_duration_seconds_count",
        "presence_calls_total"
      ])
      assert.isTrue([...used].some((name) => recorded.has(name)), "panels read recording rules")
    }))

  it("seriesNames finds series, not functions, labels, keywords or numbers", () => {
    assert.deepStrictEqual(
      seriesNames("histogram_quantile(0.99, sum by (job, le) (rate(a_bucket{x=~\"y|z\"}[$__rate_interval])))"),
      ["a_bucket"]
    )
    assert.deepStrictEqual(seriesNames("(a:b:c or b * 0) / on (job) group_left (x) c == bool 1e6"), [
      "a:b:c",
      "b",
      "c"
    ])
  })
})
