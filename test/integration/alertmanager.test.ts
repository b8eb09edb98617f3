/**
 * The shipped Alertmanager routing (dashboards/src/alertmanager.ts, with this
 * test's webhook as both receivers and timing in seconds) in a real
 * Alertmanager, fed alerts through its API as Prometheus sends them: pages go
 * to the page receiver and tickets to the ticket one, the down targets of a
 * job arrive as one notification, a target that is down silences the SLO
 * alerts of its job (not those of another job, nor its other alerts) until it
 * is resolved, and an SLO's page silences its ticket. And what `npm start`
 * sets up by default (examples/Alerting.ts): the shipped rule files, the SLOs'
 * included, and an Alertmanager with the shipped config.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { alertmanagerConfig } from "../../dashboards/src/alertmanager.ts"
import { alerting } from "../../examples/Alerting.ts"
import { type Alertmanager, startAlertmanager } from "../../servers/Servers.ts"
import { describe as show, fastTiming, named, type Notification, startWebhook, type Webhook } from "./Webhook.ts"

let webhook: Webhook
let alertmanager: Alertmanager

beforeAll(async () => {
  webhook = await startWebhook()
  alertmanager = await startAlertmanager({
    config: alertmanagerConfig({ webhooks: { page: webhook.url("/page"), ticket: webhook.url("/ticket") }, timing: fastTiming })
  })
})

afterAll(async () => {
  await alertmanager?.stop()
  await webhook?.close()
})

/** An alert as Prometheus posts it: firing from now, or resolved now. */
const alert = (labels: Record<string, string>, resolved = false) => ({
  labels,
  annotations: { summary: labels["alertname"]! },
  startsAt: new Date(Date.now() - 60_000).toISOString(),
  ...resolved ? { endsAt: new Date().toISOString() } : {}
})

const post = async (alerts: ReadonlyArray<ReturnType<typeof alert>>) => {
  const response = await fetch(`${alertmanager.url}/api/v2/alerts`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(alerts)
  })
  assert.strictEqual(response.status, 200, await response.text())
}

const slo = (alertname: string, job: string, severity: string, region?: string) => ({
  alertname,
  job,
  severity,
  sloth_severity: severity,
  sloth_slo: alertname,
  ...region === undefined ? {} : { region }
})

const down = (instance: string) => ({ alertname: "DagTargetDown", job: "sending-dag", instance, severity: "page" })
const commitPage = slo("DagCommitAvailabilityBurn", "sending-dag", "page")
const presencePage = slo("DagPresenceAvailabilityBurn", "other-dag", "page")
const approvalPage = slo("DagApprovalLatencyBurn", "other-dag", "page", "eu-central")
const approvalTicket = slo("DagApprovalLatencyBurn", "other-dag", "ticket", "eu-central")
const exportTicket = { alertname: "DagOtlpExportFailures", job: "sending-dag", severity: "ticket" }

/** Whether `n` came to `path` with an alert named `alertname` in `status`. */
const of = (path: string, alertname: string, status: "firing" | "resolved") => (n: Notification) =>
  n.path === path && named(n, alertname).some((a) => a.status === status)

describe("Alertmanager with the shipped routing", () => {
  it("routes by severity, groups a job's down targets, inhibits SLO alerts of a down job and tickets under pages", async () => {
    const started = Date.now()
    await post([alert(down("127.0.0.1:8000")), alert(down("127.0.0.1:8001"))])
    const targets = await webhook.next("of the down targets", of("/page", "DagTargetDown", "firing"), 10_000)
    assert.sameMembers(named(targets, "DagTargetDown").map((a) => a.labels["instance"]), ["127.0.0.1:8000", "127.0.0.1:8001"])
    assert.deepStrictEqual(targets.groupLabels, { alertname: "DagTargetDown", job: "sending-dag" })

    await post([alert(commitPage), alert(presencePage), alert(approvalPage), alert(exportTicket)])
    await webhook.next("presence page (another job)", of("/page", "DagPresenceAvailabilityBurn", "firing"), 10_000)
    const approval = await webhook.next("approval page", of("/page", "DagApprovalLatencyBurn", "firing"), 10_000)
    assert.deepStrictEqual(named(approval, "DagApprovalLatencyBurn").map((a) => a.labels["severity"]), ["page"])
    await webhook.next("export ticket", of("/ticket", "DagOtlpExportFailures", "firing"), 10_000)
    await post([alert(approvalTicket)])

    // Three group intervals later: the commit page (its job's target is down) and the approval ticket (its page
    // fires) have not been sent, and pages went nowhere but /page.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const sent = webhook.received
    assert.isFalse(sent.some((n) => named(n, "DagCommitAvailabilityBurn").length > 0), show(sent, started))
    assert.isFalse(sent.some((n) => n.path === "/ticket" && named(n, "DagApprovalLatencyBurn").length > 0), show(sent, started))
    for (const n of sent) {
      for (const a of n.alerts) assert.strictEqual(`/${a.labels["severity"]}`, n.path, show([n], started))
    }

    // The targets are back: their resolution is sent, and the commit page they held back goes out.
    await post([alert(down("127.0.0.1:8000"), true), alert(down("127.0.0.1:8001"), true)])
    await webhook.next("targets resolved", of("/page", "DagTargetDown", "resolved"), 10_000)
    await webhook.next("commit page once the target is up", of("/page", "DagCommitAvailabilityBurn", "firing"), 10_000)
    console.log(`Alertmanager ${alertmanager.version}:\n${show(webhook.received, started)}`)
  }, 60_000)
})

/** A file of dashboards/ as npm start loads it. */
const shipped = (path: string) => fileURLToPath(new URL(`../../dashboards/${path}`, import.meta.url))

describe("npm start's alerting by default", () => {
  it("loads both shipped rule files and starts Alertmanager with the shipped config, Prometheus pointed at it", () =>
    Effect.gen(function*() {
      const started = yield* alerting
      assert.deepStrictEqual(started.rules, [shipped("prometheus/rules.yml"), shipped("prometheus/rules-slo.yml")])
      assert.strictEqual(started.interval, "5s")
      const { alerting: wired } = started.configure({ global: {} }) as { alerting?: { alertmanagers: unknown } }
      const address = /^http:\/\/(127\.0\.0\.1:\d+) \(Alertmanager 0\.\d+\.\d+\)/.exec(started.description)?.[1]
      assert.isDefined(address, started.description)
      assert.deepStrictEqual(wired?.alertmanagers, [{ static_configs: [{ targets: [address] }] }])
      const status = (yield* Effect.promise(() => fetch(`http://${address}/api/v2/status`).then((r) => r.json()))) as {
        readonly config: { readonly original: string }
      }
      const shippedConfig = readFileSync(shipped("alertmanager/alertmanager.yml"), "utf8")
      assert.include(shippedConfig, "receiver: page")
      assert.include(status.config.original, "receiver: page")
      assert.include(status.config.original, "alertname=~\"DagCommitAvailabilityBurn|DagApprovalLatencyBurn|")
    }).pipe(Effect.scoped, Effect.runPromise), 30_000)
})
