/**
 * The committed dashboard and rules against the example network under load:
 * Presence, PoH nodes in eu-central and us-east announcing themselves to it
 * (and one in us-west that leaves before the load, so that region has none)
 * and the sending DAG with two workers run as child processes on free
 * loopback ports over the FerretDB and Jaeger of globalSetup,
 * examples/load.ts posts transactions in the four default regions (two of
 * them go across regions), and a real Prometheus scrapes every process (one
 * target per worker) with the jobs of the committed scrape config and
 * evaluates the committed rules and SLO rules. Every panel query of
 * dashboards/dag-observability.json (the `node` variable set to all; the SLO
 * panels reading what Sloth's rules record) and every recording rule then
 * returns plausible data, the alert for a region without a PoH node is
 * pending or firing for us-west while the commit and Presence SLOs do not
 * burn, and a trace id from Prometheus's exemplars is a trace in Jaeger across
 * the three services.
 */
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { writeFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { MongoClient } from "mongodb"
import { inject } from "vitest"
import { alertingRules, recordingRules } from "../../dashboards/src/rules.ts"
import { sloRulesPath } from "../../dashboards/src/sloRules.ts"
import { objectives } from "../../dashboards/src/slos.ts"
import { jobs, prometheusConfig } from "../../dashboards/src/scrape.ts"
import { startPrometheus } from "../../servers/Servers.ts"
import { fetchTrace, serviceOf } from "./Jaeger.ts"
import { logged, spawnNode, terminate, whileRunning, withOutputs } from "./Network.ts"
import { startPohNode, startPresence, startSendingDag, scrapeTarget } from "./Nodes.ts"
import { implausible, instant, key, legend, type Series, show, unordered, untilPlausible } from "./Plausible.ts"
import { eventually, Exemplars, getJson } from "./Prometheus.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))
const rulesFile = `${root}dashboards/prometheus/rules.yml`
const ruleFiles = [rulesFile, `${root}${sloRulesPath}`]

/** The committed dashboard, as Grafana imports it. */
const dashboard = JSON.parse(readFileSync(`${root}dashboards/dag-observability.json`, "utf8")) as {
  readonly panels: ReadonlyArray<{
    readonly title: string
    readonly fieldConfig: { readonly defaults: { readonly unit: string; readonly min?: number } }
    readonly targets: ReadonlyArray<{ readonly refId: string; readonly expr: string; readonly legendFormat: string }>
  }>
}

const load = { rate: 40, seconds: 20 }

/** Unique per run: service names in the shared Jaeger, the database in the shared MongoDB. */
const runId = randomBytes(4).toString("hex")
const services = {
  dag: `dash-sending-dag-${runId}`,
  poh: `dash-poh-node-${runId}`,
  presence: `dash-presence-${runId}`
}
const database = `dag_dash_${runId}`

/** Grafana's template variables as the test sets them: a 1 minute rate window, all regions, all nodes. */
const substitute = (expr: string) =>
  expr.replaceAll("$__rate_interval", "1m").replaceAll("$region", ".*").replaceAll("$node", ".*")

/** What the network under this load must show, beyond the unit's range: every look-up answered, all acks. */
const expectations: Record<string, (value: number) => boolean> = {
  "Presence success rate": (value) => value === 1,
  "dag:presence_success_ratio:rate5m": (value) => value === 1,
  "Presence: online PoH nodes by region": (value) => value === 0 || value === 1,
  "PoH ack ratio": (value) => value >= 0.99,
  "dag:poh_ack_ratio:rate5m": (value) => value >= 0.99,
  "dag:otlp_export_failures:rate5m": (value) => value === 0
}

const expected = (name: string, result: ReadonlyArray<Series>): Array<string> => {
  const holds = expectations[name]
  return holds === undefined || result.every((series) => holds(series.value)) ? [] :
    [`${name}: not as expected of the network: ${JSON.stringify(result)}`]
}

const Rules = Schema.Struct({
  data: Schema.Struct({
    groups: Schema.Array(Schema.Struct({
      file: Schema.String,
      rules: Schema.Array(Schema.Struct({
        name: Schema.String,
        type: Schema.String,
        health: Schema.String,
        state: Schema.optional(Schema.String)
      }))
    }))
  })
})

describe("dashboards and rules against the example network", () => {
  it.live(
    "every panel query and recording rule returns plausible data; an exemplar's trace is in Jaeger",
    () =>
      Effect.gen(function*() {
        const mongodbUri = `${inject("mongodbUri")}${database}`
        yield* Effect.addFinalizer(() =>
          Effect.promise(async () => {
            const client = new MongoClient(mongodbUri, { serverSelectionTimeoutMS: 2_000 })
            await client.db().dropDatabase().finally(() => client.close())
          }).pipe(Effect.ignore)
        )

        const presence = yield* startPresence({ OTEL_SERVICE_NAME: services.presence })
        const poh = { OTEL_SERVICE_NAME: services.poh }
        const nodes = [
          yield* startPohNode("poh-1", "eu-central", presence.address, poh),
          yield* startPohNode("poh-2", "us-east", presence.address, poh)
        ]
        // us-west's only node announces itself, then leaves: Presence counts 0 there.
        const leaving = yield* startPohNode("poh-3", "us-west", presence.address, poh)
        yield* whileRunning("poh-3 online", logged(presence.node, /poh-3 \(us-west.*\) online/), [presence.node])
        yield* terminate(leaving.node)
        const { url: dagUrl, metrics } = yield* startSendingDag(presence.address, 2, {
          MONGODB_URI: mongodbUri,
          OTEL_SERVICE_NAME: services.dag
        })
        const targets = {
          "sending-dag": metrics.map(scrapeTarget),
          "poh-node": nodes.map((node) => scrapeTarget(node.metrics)),
          "presence": [scrapeTarget(presence.metrics)]
        }

        // The committed scrape config's jobs, on this run's ports, every second, with the committed rules.
        assert.deepStrictEqual(Object.keys(targets).toSorted(), Object.keys(jobs).toSorted())
        const prometheus = yield* Effect.acquireRelease(
          Effect.promise(() => startPrometheus({ scrapeTargets: [], ruleFiles })),
          (server) => Effect.promise(() => server.stop())
        )
        const config = prometheusConfig({ targets, ruleFiles, interval: "1s" })
        yield* Effect.promise(() => writeFile(prometheus.configFile, JSON.stringify(config, null, 2)))
        const reload = yield* Effect.promise(() => fetch(`${prometheus.url}/-/reload`, { method: "POST" }))
        assert.strictEqual(reload.status, 200)
        const every = Object.values(targets).flat()
        const up = yield* eventually(instant(prometheus.url, "up == 1"), (result) => result.length === every.length)
        assert.deepStrictEqual(
          up.map((series) => `${series.labels["job"]} ${series.labels["instance"]}`).toSorted(),
          Object.entries(targets).flatMap(([job, instances]) => instances.map((instance) => `${job} ${instance}`)).toSorted()
        )

        const loadStarted = Date.now() / 1000
        const generator = yield* spawnNode("load", "load.ts", {
          LOAD_TARGET: dagUrl,
          LOAD_RATE: String(load.rate),
          LOAD_DURATION: String(load.seconds)
        })
        const { code } = yield* Effect.promise(() => generator.closed).pipe(Effect.timeout("60 seconds"))
        assert.strictEqual(code, 0, generator.output.join("\n"))
        const summary = generator.output.find((line) => line.includes("load: done"))
        assert.isDefined(summary, generator.output.join("\n"))
        assert.notMatch(summary!, /\b(?:[45]\d\d|error):/, "every transaction answered 201")
        const report = [summary!.replace(/^.*?load: /, "load: ")]

        // Every panel query, once the scrapes and rule evaluations after the load are in.
        const panelQueries = dashboard.panels.map((panel) => ({
          panel,
          run: Effect.forEach(panel.targets, (target) => instant(prometheus.url, substitute(target.expr)))
        }))
        const checkPanels = Effect.forEach(panelQueries, ({ panel, run }) =>
          Effect.map(run, (results) => {
            const quantileTargets = panel.targets.flatMap((target, i) =>
              /^p\d\d\b/.test(target.legendFormat) ? [results[i]!] : []
            )
            return [
              ...results.flatMap((result, i) =>
                implausible(
                  `${panel.title} [${panel.targets[i]!.refId}]`,
                  panel.fieldConfig.defaults.unit,
                  result,
                  panel.fieldConfig.defaults.min ?? -Infinity
                )
              ),
              ...results.flatMap((result) => expected(panel.title, result)),
              ...(quantileTargets.length === 3 ? unordered(panel.title, quantileTargets) : [])
            ]
          })).pipe(Effect.map((problems) => problems.flat()))
        yield* untilPlausible(checkPanels, 30)

        for (const { panel, run } of panelQueries) {
          const unit = panel.fieldConfig.defaults.unit
          const results = yield* run
          const shown = panel.targets.flatMap((target, i) =>
            results[i]!.map((series) => `${legend(target.legendFormat, series.labels).trim()} ${show(unit, series.value)}`)
          )
          report.push(`panel "${panel.title}": ${shown.join("; ")}`)
        }

        // Every recording rule, as Prometheus loaded them from the committed files; Sloth's evaluate too.
        const groups = (yield* getJson(Rules, `${prometheus.url}/api/v1/rules`)).data.groups
        const loaded = (type: string, file: string) =>
          groups.filter((group) => group.file === file).flatMap((group) => group.rules)
            .filter((rule) => rule.type === type).map(({ name, health }) => [name, health])
        assert.deepStrictEqual(loaded("recording", rulesFile), recordingRules.map((rule) => [rule.record, "ok"]))
        assert.deepStrictEqual(loaded("alerting", rulesFile), alertingRules.map((rule) => [rule.alert, "ok"]))
        const sloAlerts = loaded("alerting", ruleFiles[1]!)
        assert.sameDeepMembers(sloAlerts, Object.values(objectives).flatMap(({ alert }) => [[alert, "ok"], [alert, "ok"]]))
        assert.isTrue(loaded("recording", ruleFiles[1]!).every(([, health]) => health === "ok"))
        const checkRules = Effect.forEach(recordingRules, ({ record }) =>
          Effect.map(instant(prometheus.url, record), (result) => {
            const unit = /:p\d\d_/.test(record) ? "s" : /ratio/.test(record) ? "percentunit" :
              record.includes("otlp_export_failures") ? "ops" : "reqps"
            return { record, result, problems: [...implausible(record, unit, result), ...expected(record, result)] }
          })).pipe(Effect.map((checked) => {
            const quantile = (prefix: string) =>
              ["p50", "p90", "p99"].map((q) => checked.find(({ record }) => record === `${prefix}:${q}_5m`)!.result)
            return [
              ...checked.flatMap(({ problems }) => problems),
              ...unordered("dag:poh_approval_latency_seconds", quantile("dag:poh_approval_latency_seconds")),
              ...unordered("dag:storage_latency_seconds", quantile("dag:storage_latency_seconds"))
            ]
          }))
        yield* untilPlausible(checkRules, 10)
        for (const { record } of recordingRules) {
          const result = yield* instant(prometheus.url, record)
          report.push(`rule ${record}: ${result.map((series) => `${key(series.labels)} ${series.value}`).join("; ")}`)
        }

        // The alerts: us-west has no PoH node, so that alert is pending (for: 1m) or already firing; these are not.
        // An SLO's page and ticket are two rules of one name: each name's states, in order.
        const states: Record<string, Array<string | undefined>> = {}
        for (const group of (yield* getJson(Rules, `${prometheus.url}/api/v1/rules`)).data.groups) {
          for (const rule of group.rules) if (rule.type === "alerting") (states[rule.name] ??= []).push(rule.state)
        }
        report.push(`alerts: ${JSON.stringify(states)}`)
        assert.oneOf(states["DagRegionWithoutPohNode"]?.[0], ["pending", "firing"])
        for (const alert of ["DagTargetDown", "DagOtlpExportFailures", objectives.commit.alert, objectives.presence.alert]) {
          assert.isNotEmpty(states[alert], alert)
          assert.isTrue(states[alert]!.every((state) => state === "inactive"), `${alert}: ${states[alert]}`)
        }

        // Exemplars: a trace id Prometheus stored with an approval latency sample is a trace in Jaeger.
        const exemplars = yield* getJson(
          Exemplars,
          `${prometheus.url}/api/v1/query_exemplars?query=poh_approval_latency_seconds_bucket` +
            `&start=${loadStarted}&end=${Date.now() / 1000}`
        )
        const latest = exemplars.data
          .flatMap((series) => series.exemplars.map((exemplar) => ({ series: series.seriesLabels, ...exemplar })))
          .toSorted((a, b) => b.timestamp - a.timestamp)[0]
        assert.isDefined(latest, "exemplars of poh_approval_latency_seconds")
        assert.strictEqual(latest!.series["job"], "sending-dag")
        const traceId = latest!.labels["trace_id"]!
        const trace = yield* fetchTrace(traceId, 10)
        assert.strictEqual(trace.traceID, traceId)
        assert.include(trace.spans.map((span) => span.spanID), latest!.labels["span_id"])
        assert.deepStrictEqual(
          new Set(trace.spans.map((span) => serviceOf(trace, span))),
          new Set([services.dag, services.poh, services.presence])
        )
        report.push(
          `exemplar trace ${traceId}: ${trace.spans.length} spans in Jaeger (${
            trace.spans.map((span) => span.operationName).toSorted().join(", ")
          })`
        )
        console.log(report.join("\n"))
      }).pipe(Effect.scoped, withOutputs),
    150_000
  )
})
