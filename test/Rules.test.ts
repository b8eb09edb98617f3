/**
 * The Prometheus files of dashboards/prometheus/ pass promtool: the rule file
 * checks, its unit tests (rules.test.yml) pass and cover every alert firing
 * and not firing and every recording rule, and the scrape config checks.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { alertingRules, recordingRules } from "../dashboards/src/rules.ts"
import { promtool } from "../servers/Servers.ts"

const file = (name: string) => fileURLToPath(new URL(`../dashboards/prometheus/${name}`, import.meta.url))

const rules = file("rules.yml")
const rulesTest = file("rules.test.yml")
const config = file("prometheus.yml")

/** Each `alert_rule_test` case of rules.test.yml: the alert and whether it expects it firing. */
const alertCases = (text: string) =>
  [...text.matchAll(/- alertname: (\S+)\n\s+eval_time: \S+\n\s+exp_alerts:( \[\])?/g)].map(([, alert, none]) => ({
    alert: alert!,
    firing: none === undefined
  }))

describe("Prometheus rules and scrape config", () => {
  it("promtool check rules: every rule is valid", async () => {
    const result = await promtool(["check", "rules", rules])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stdout, `SUCCESS: ${recordingRules.length + alertingRules.length} rules found`)
  })

  it("promtool test rules: rules.test.yml passes", async () => {
    const result = await promtool(["test", "rules", rulesTest])
    assert.strictEqual(result.code, 0, `${result.stdout}\n${result.stderr}`)
    assert.match(result.stdout, /^\s*SUCCESS\s*$/m)
  })

  it("rules.test.yml tests every alert firing and not firing, and every recording rule", () => {
    const text = readFileSync(rulesTest, "utf8")
    const cases = alertCases(text)
    for (const { alert } of alertingRules) {
      assert.deepInclude(cases, { alert, firing: true }, `${alert} firing`)
      assert.deepInclude(cases, { alert, firing: false }, `${alert} not firing`)
    }
    const tested = [...text.matchAll(/- expr: '?(.*?)'?\n/g)].map(([, expr]) => expr!)
    for (const { record } of recordingRules) {
      assert.isTrue(tested.some((expr) => expr.includes(record)), `${record} has a promql_expr_test`)
    }
  })

  it("promtool check config: the scrape config and its rule file are valid", async () => {
    const result = await promtool(["check", "config", config])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stdout, "SUCCESS: 1 rule files found")
    assert.include(result.stdout, `SUCCESS: ${config} is valid prometheus config file syntax`)
    assert.include(result.stdout, `SUCCESS: ${recordingRules.length + alertingRules.length} rules found`)
  })
})
