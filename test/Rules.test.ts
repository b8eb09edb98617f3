/**
 * The Prometheus files of dashboards/prometheus/ pass promtool: both rule
 * files check, their unit tests (rules.test.yml, rules-slo.test.yml) pass and
 * cover every alert firing and not firing and every recording rule of ours,
 * and the scrape config checks with both rule files. The time-scaled windows
 * of the alerting integration test are Sloth's own windows, divided. Every
 * alert links its runbook, which says what it means, where to look, how to
 * reach a trace and what to do.
 */
import { existsSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { alertingRules, recordingRules, ruleFiles } from "../dashboards/src/rules.ts"
import { sloRules, sloSpecFile } from "../dashboards/src/sloRules.ts"
import { alertWindows, objectives, period } from "../dashboards/src/slos.ts"
import { stringify, type Yaml } from "../dashboards/src/yaml.ts"
import { promtool, slothGenerate } from "../servers/Servers.ts"

const file = (name: string) => fileURLToPath(new URL(`../dashboards/prometheus/${name}`, import.meta.url))

const rules = file("rules.yml")
const slo = file("rules-slo.yml")
const config = file("prometheus.yml")
const tests = [file("rules.test.yml"), file("rules-slo.test.yml")]

/** The rules a rule file holds, by kind. */
const count = (text: string) => ({
  record: [...text.matchAll(/^\s*- record: /gm)].length,
  alert: [...text.matchAll(/^\s*- alert: (\S+)/gm)].map(([, name]) => name!)
})

const sloText = readFileSync(slo, "utf8")
const sloCount = count(sloText)
const ours = recordingRules.length + alertingRules.length

/** Each `alert_rule_test` case of a unit test file: the alert and whether it expects it firing. */
const alertCases = (text: string) =>
  [...text.matchAll(/- alertname: (\S+)\n\s+eval_time: \S+\n\s+exp_alerts:( \[\])?/g)].map(([, alert, none]) => ({
    alert: alert!,
    firing: none === undefined
  }))

describe("Prometheus rules and scrape config", () => {
  it("promtool check rules: every rule of both files is valid", async () => {
    const result = await promtool(["check", "rules", rules, slo])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stdout, `SUCCESS: ${ours} rules found`)
    assert.include(result.stdout, `SUCCESS: ${sloCount.record + sloCount.alert.length} rules found`)
  })

  it("Sloth made a page and a ticket of every SLO, and recordings over each of its windows", () => {
    assert.deepStrictEqual(
      sloCount.alert,
      Object.values(objectives).flatMap((objective) => [objective.alert, objective.alert])
    )
    assert.strictEqual(sloCount.record, 15 * Object.keys(objectives).length)
    for (const severity of ["page", "ticket"]) {
      assert.lengthOf([...sloText.matchAll(new RegExp(`^ {6}severity: ${severity}$`, "gm"))], 3, severity)
    }
  })

  it("promtool test rules: rules.test.yml and rules-slo.test.yml pass", async () => {
    for (const test of tests) {
      const result = await promtool(["test", "rules", test])
      assert.strictEqual(result.code, 0, `${test}\n${result.stdout}\n${result.stderr}`)
      assert.match(result.stdout, /^\s*SUCCESS\s*$/m, test)
    }
  })

  it("the unit tests cover every alert firing and not firing, and every recording rule of rules.yml", () => {
    const [fixed, slos] = tests.map((test) => readFileSync(test, "utf8"))
    const cases = [...alertCases(fixed!), ...alertCases(slos!)]
    for (const alert of [...alertingRules.map((rule) => rule.alert), ...sloCount.alert]) {
      assert.deepInclude(cases, { alert, firing: true }, `${alert} firing`)
      assert.deepInclude(cases, { alert, firing: false }, `${alert} not firing`)
    }
    const tested = [...fixed!.matchAll(/- expr: '?(.*?)'?\n/g)].map(([, expr]) => expr!)
    for (const { record } of recordingRules) {
      assert.isTrue(tested.some((expr) => expr.includes(record)), `${record} has a promql_expr_test`)
    }
    // Every SLO: a fast burn pages and tickets, a slow one tickets, one within budget says nothing.
    for (const { alert } of Object.values(objectives)) {
      const severities = [...slos!.matchAll(new RegExp(`alertname: ${alert}\\n[^]*?(?=\\n  - name:|$)`, "g"))]
        .map(([test]) => [...test.matchAll(/sloth_severity: (\w+)/g)].map(([, severity]) => severity).join(","))
      assert.deepStrictEqual(severities, ["page,ticket", "ticket", ""], alert)
    }
  })

  it("the integration test's windows are Sloth's own divided: at scale 1 they generate the committed rules", async () => {
    const windows = { period, yaml: stringify(alertWindows(1) as Yaml) }
    assert.strictEqual(await slothGenerate(sloSpecFile, windows), sloText)
    const fast = await sloRules(60)
    assert.include(fast, "record: slo:sli_error:ratio_rate5s")
    assert.include(fast, "slo:sli_error:ratio_rate1m{sloth_id=\"dag-network-poh-approval-latency\"")
    assert.include(fast, "(14.4 * 0.005)")
    assert.notInclude(fast, "ratio_rate30d")
  })

  it("every alert carries runbook_url docs/runbooks/<alert>.md, a page with the four sections", () => {
    for (const text of [readFileSync(rules, "utf8"), sloText]) {
      const alerts = [...text.matchAll(/- alert: (\S+)\n[^]*?(?=\n\s+- alert: |\n- name: |$)/g)]
      assert.isNotEmpty(alerts)
      for (const [rule, alert] of alerts) {
        const url = /runbook_url: (\S+)/.exec(rule)?.[1]
        assert.strictEqual(url, `docs/runbooks/${alert}.md`, alert)
        const page = fileURLToPath(new URL(`../${url}`, import.meta.url))
        assert.isTrue(existsSync(page), page)
        const sections = [...readFileSync(page, "utf8").matchAll(/^## (.+)$/gm)].map(([, title]) => title)
        assert.deepStrictEqual(
          sections,
          ["What it means", "Look at", "From an exemplar to the trace", "What to do"],
          alert
        )
      }
    }
  })

  it("promtool check config: the scrape config, both rule files and an Alertmanager are valid", async () => {
    const result = await promtool(["check", "config", config])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.include(result.stdout, `SUCCESS: ${ruleFiles.length} rule files found`)
    assert.include(result.stdout, `SUCCESS: ${config} is valid prometheus config file syntax`)
    assert.include(result.stdout, `SUCCESS: ${ours} rules found`)
    assert.include(result.stdout, `SUCCESS: ${sloCount.record + sloCount.alert.length} rules found`)
    assert.match(readFileSync(config, "utf8"), /alerting:\n\s+alertmanagers:/)
  })
})
