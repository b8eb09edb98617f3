/**
 * Alerts delivered, end to end: `npm start`'s network (Presence, PoH nodes
 * poh-1 and poh-3 in eu-central and poh-2 in us-east, one sending DAG worker)
 * with its Prometheus and Alertmanager, run 60 times faster by the launcher's
 * test overrides — the shipped rules with every `for:` divided by 60, the
 * SLO rules Sloth generates from the committed spec with every window divided
 * by 60 (5 minutes and 1 hour become 5 s and 1 min), scrapes and evaluations
 * every second, and the shipped routing with this test's webhook as both
 * receivers and waits of a second — under 20 transactions a second in
 * eu-central and us-east:
 *
 * - healthy: nothing arrives;
 * - both eu-central PoH nodes killed (the launcher starts them again 20 s
 *   later): the page that eu-central has no PoH node online and the approval
 *   latency SLO's fast-burn page for eu-central arrive (its requests fail over
 *   past both dead nodes, slower than 100 ms, until Presence drops them);
 * - the nodes back: both are resolved; nothing else ever fired but those, the
 *   dead targets and the approval SLO's ticket.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { inject } from "vitest"
import { alertmanagerConfig } from "../../dashboards/src/alertmanager.ts"
import { ruleGroups } from "../../dashboards/src/rules.ts"
import { sloRules } from "../../dashboards/src/sloRules.ts"
import { stringify, type Yaml } from "../../dashboards/src/yaml.ts"
import { type Launcher, loopbackBinds, networkUp, printed, startLauncher } from "./Launcher.ts"
import { steadyLoad, summary } from "./Load.ts"
import { dropDatabaseAtEnd, withDatabase } from "./Network.ts"
import { instant } from "./Plausible.ts"
import { eventually, getJson } from "./Prometheus.ts"
import { describe as show, fastTiming, named, type Notification, startWebhook } from "./Webhook.ts"

/** Minutes of the shipped rules become seconds. */
const scale = 60
const restartDelaySeconds = 20

/** The test-only rule files and routing, in a temporary directory removed with the scope. */
const overrides = (page: string, ticket: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const dir = mkdtempSync(join(tmpdir(), "dag-alerts-"))
      const rules = join(dir, "rules.yml")
      const slo = join(dir, "rules-slo.yml")
      const routing = join(dir, "alertmanager.yml")
      writeFileSync(rules, stringify({ groups: ruleGroups(scale) } as unknown as Yaml))
      writeFileSync(slo, await sloRules(scale))
      writeFileSync(routing, JSON.stringify(alertmanagerConfig({ webhooks: { page, ticket }, timing: fastTiming })))
      return {
        dir,
        env: {
          DAG_NETWORK_RULES: `${rules},${slo}`,
          DAG_NETWORK_ALERTMANAGER_CONFIG: routing,
          DAG_NETWORK_PROMETHEUS_INTERVAL: "1s",
          POH_RESTART_DELAY: `${restartDelaySeconds}s`
        }
      }
    }),
    ({ dir }) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

/** Starts the launcher with `env`; SIGTERM (then SIGKILL to its group) when the scope closes. */
const launched = (env: Readonly<Record<string, string>>) =>
  Effect.acquireRelease(
    Effect.sync(() => startLauncher("node", env)),
    (launcher: Launcher) =>
      Effect.promise(async () => {
        launcher.child.kill("SIGTERM")
        const timer = setTimeout(() => process.kill(-launcher.child.pid!, "SIGKILL"), 30_000)
        await launcher.exited
        clearTimeout(timer)
      })
  )

const Rules = Schema.Struct({
  data: Schema.Struct({ groups: Schema.Array(Schema.Struct({ name: Schema.String, file: Schema.String })) })
})

const Alertmanagers = Schema.Struct({
  data: Schema.Struct({ activeAlertmanagers: Schema.Array(Schema.Struct({ url: Schema.String })) })
})

/** Whether `n` is a notification to `path` with `alertname` in `status` for region eu-central. */
const euCentral = (path: string, alertname: string, status: "firing" | "resolved") => (n: Notification) =>
  n.path === path && named(n, alertname).some((a) => a.status === status && a.labels["region"] === "eu-central")

/** What may fire when eu-central's PoH nodes die: the alert names and, for each, the labels it must have. */
const expected: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  DagRegionWithoutPohNode: { region: "eu-central" },
  DagApprovalLatencyBurn: { job: "sending-dag", region: "eu-central" },
  DagTargetDown: { job: "poh-node", region: "eu-central" }
}

describe("alerts delivered", () => {
  it.live("a region's PoH nodes killed: its pages arrive at the webhook, then their resolution; none when healthy", () =>
    Effect.gen(function*() {
      const webhook = yield* Effect.acquireRelease(Effect.promise(startWebhook), (w) => Effect.promise(w.close))
      const test = yield* overrides(webhook.url("/page"), webhook.url("/ticket"))
      const mongodbUri = withDatabase(inject("mongodbUri"), `dag_alerts_${randomBytes(4).toString("hex")}`)
      yield* dropDatabaseAtEnd(mongodbUri)
      const launcher = yield* launched({
        ...loopbackBinds,
        ...test.env,
        OTEL_EXPORTER_OTLP_ENDPOINT: inject("otlpEndpoint"),
        MONGODB_URI: mongodbUri,
        DAG_NETWORK_DATA: join(test.dir, "data"),
        SENDING_DAG_WORKERS: "1"
      })
      const started = Date.now()
      const base = yield* Effect.promise(() => networkUp(launcher))
      const prometheus = yield* Effect.promise(() => printed(launcher, /Prometheus\s+(http:\/\/\S+)/))
      const alertmanager = yield* Effect.promise(() => printed(launcher, /alerts\s+(http:\/\/\S+) \(Alertmanager /))
      const pids = ["poh-1", "poh-3"].map((node) =>
        Number(new RegExp(`PoH node\\s+${node} \\(eu-central\\).*, pid (\\d+)`).exec(launcher.output.join("\n"))?.[1])
      )
      assert.isTrue(pids.every(Number.isInteger), launcher.output.join("\n"))
      const report = [`network up in ${((Date.now() - started) / 1000).toFixed(1)} s; Alertmanager ${alertmanager}`]

      // The launcher's Prometheus evaluates the SLO rules and sends its alerts to the launcher's Alertmanager.
      const groups = (yield* getJson(Rules, `${prometheus}/api/v1/rules`)).data.groups.map((group) => group.name)
      assert.include(groups, "sloth-slo-alerts-dag-network-poh-approval-latency")
      assert.include(groups, "dag-observability.alerts")
      const senders = yield* eventually(
        getJson(Alertmanagers, `${prometheus}/api/v1/alertmanagers`),
        ({ data }) => data.activeAlertmanagers.length > 0
      )
      assert.deepStrictEqual(senders.data.activeAlertmanagers.map((am) => new URL(am.url).origin), [alertmanager])

      // Healthy: once eu-central's approval SLI is recorded over its 1-minute window, 15 s without a notification.
      const load = yield* steadyLoad(base, 20, "healthy")
      const sli = `slo:sli_error:ratio_rate1m{sloth_slo="poh-approval-latency", region="eu-central"}`
      yield* eventually(instant(prometheus, sli), (result) => result.length === 1)
      yield* Effect.sleep("15 seconds")
      assert.deepStrictEqual(webhook.received, [], show(webhook.received, started))
      const approvals = yield* Effect.forEach(["_count", "_bucket{le=\"0.1\"}"], (series) =>
        Effect.map(instant(prometheus, `sum(poh_approval_latency_seconds${series})`), ([sum]) => sum?.value ?? NaN))
      report.push(
        `healthy: ${summary(load.answers)}; approvals ${approvals[0]}, over 100 ms ${approvals[0]! - approvals[1]!}; ` +
          "nothing received"
      )

      // Every PoH node of eu-central killed.
      load.phase = "eu-central without PoH nodes"
      const killed = Date.now()
      for (const pid of pids) process.kill(pid, "SIGKILL")
      const after = (n: Notification) => `${((n.at - killed) / 1000).toFixed(1)} s`
      const noNode = yield* Effect.promise(() =>
        webhook.next("no PoH node in eu-central", euCentral("/page", "DagRegionWithoutPohNode", "firing"), 40_000)
      )
      const page = yield* Effect.promise(() =>
        webhook.next("approval fast burn", euCentral("/page", "DagApprovalLatencyBurn", "firing"), 40_000)
      )
      assert.deepInclude(named(page, "DagApprovalLatencyBurn")[0]!.labels, { severity: "page", sloth_severity: "page" })
      report.push(`killed poh-1, poh-3: DagRegionWithoutPohNode after ${after(noNode)}, approval page after ${after(page)}`)

      // Started again by the launcher: both resolved.
      const resolvedNoNode = yield* Effect.promise(() =>
        webhook.next("eu-central's nodes back", euCentral("/page", "DagRegionWithoutPohNode", "resolved"), 60_000)
      )
      const resolvedPage = yield* Effect.promise(() =>
        webhook.next("approval page resolved", euCentral("/page", "DagApprovalLatencyBurn", "resolved"), 90_000)
      )
      assert.isAbove(resolvedNoNode.at - killed, restartDelaySeconds * 1000)
      report.push(`resolved: DagRegionWithoutPohNode after ${after(resolvedNoNode)}, page after ${after(resolvedPage)}`)

      // Nothing fired but what the dead nodes explain; every alert went to the receiver of its severity.
      for (const n of webhook.received) {
        for (const a of n.alerts) {
          const allowed = expected[a.labels["alertname"]!]
          assert.isDefined(allowed, show([n], killed))
          assert.deepInclude(a.labels, allowed!, show([n], killed))
          assert.strictEqual(`/${a.labels["severity"]}`, n.path, show([n], killed))
        }
      }
      report.push(`load: ${summary(load.answers)}`, `notifications (from the kill):\n${show(webhook.received, killed)}`)
      console.log(report.join("\n"))
    }).pipe(Effect.scoped), 240_000)
})
