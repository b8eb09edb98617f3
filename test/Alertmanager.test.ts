/**
 * The shipped Alertmanager config (dashboards/alertmanager/alertmanager.yml)
 * passes `amtool check-config`, routes every alert of both rule files by its
 * severity to the `page` or `ticket` receiver (`amtool config routes test`),
 * and its inhibition rules name exactly the alerts Sloth generated.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { amtool } from "../servers/Servers.ts"

const path = (name: string) => fileURLToPath(new URL(`../dashboards/${name}`, import.meta.url))
const config = path("alertmanager/alertmanager.yml")

/** Every alerting rule of a rule file: its name and severity. */
const alerts = (file: string) =>
  [...readFileSync(path(file), "utf8").matchAll(/- alert: (\S+)\n[^]*?\n\s+severity: (\w+)/g)].map((
    [, alert, severity]
  ) => ({ alert: alert!, severity: severity! }))

const fixed = alerts("prometheus/rules.yml")
const slos = alerts("prometheus/rules-slo.yml")

/** The receiver `amtool` routes an alert with `labels` to. */
const routed = async (labels: Record<string, string>) => {
  const result = await amtool([
    "config",
    "routes",
    "test",
    `--config.file=${config}`,
    ...Object.entries(labels).map(([name, value]) => `${name}=${value}`)
  ])
  assert.strictEqual(result.code, 0, result.stderr)
  return result.stdout.trim()
}

describe("Alertmanager config", () => {
  it("amtool check-config: valid, with its two receivers and two inhibition rules", async () => {
    const result = await amtool(["check-config", config])
    assert.strictEqual(result.code, 0, `${result.stdout}\n${result.stderr}`)
    assert.include(result.stdout, "SUCCESS")
    assert.include(result.stdout, "2 inhibit rules")
    assert.include(result.stdout, "2 receivers")
  })

  it("routes every alert of rules.yml and rules-slo.yml by severity: page to page, ticket to ticket", async () => {
    assert.sameMembers(fixed.map(({ alert }) => alert), ["DagTargetDown", "DagRegionWithoutPohNode", "DagOtlpExportFailures"])
    assert.lengthOf(slos, 6)
    for (const { alert, severity } of [...fixed, ...slos]) {
      assert.oneOf(severity, ["page", "ticket"], alert)
      assert.strictEqual(await routed({ alertname: alert, severity }), severity, alert)
    }
    assert.deepStrictEqual(slos.map(({ severity }) => severity), ["page", "ticket", "page", "ticket", "page", "ticket"])
  })

  it("inhibits exactly the SLO alerts: by a target that is down (same job), and a ticket by its page", () => {
    const text = readFileSync(config, "utf8")
    const sloNames = [...new Set(slos.map(({ alert }) => alert))]
    const matcher = `'alertname=~"${sloNames.join("|")}"'`
    assert.include(text, `source_matchers:\n      - 'alertname="DagTargetDown"'\n    target_matchers:\n      - ${matcher}`)
    assert.include(text, `- 'severity="page"'\n      - ${matcher}\n    target_matchers:\n      - 'severity="ticket"'`)
  })
})
