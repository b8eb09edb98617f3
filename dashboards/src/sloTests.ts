/**
 * The promtool unit tests of the SLO rules Sloth generates, written out as
 * dashboards/prometheus/rules-slo.test.yml by `npm run dashboards`: each SLO
 * of slos.ts on a steady share of bad events, as a multiple of its error
 * budget — 20 times (a fast burn: the page and the ticket fire), 2 times (a
 * slow burn: the ticket only) and half of it (within budget: nothing) — with
 * events that do not count for it failing beside them.
 */
import { approvalThreshold, type Objective, objectives, service, severityOf, slothSpec } from "./slos.ts"
import type { Severity } from "./rules.ts"

/** How the events go for one test: bad events at `burn` times the budget for `minutes`, evaluated at the end. */
interface Scenario {
  readonly name: string
  readonly burn: number
  readonly minutes: number
  readonly fires: ReadonlyArray<Severity>
}

const scenarios: ReadonlyArray<Scenario> = [
  { name: "fast burn (20 × the budget): page and ticket", burn: 20, minutes: 30, fires: ["page", "ticket"] },
  { name: "slow burn (2 × the budget): ticket only", burn: 2, minutes: 120, fires: ["ticket"] },
  { name: "within budget (0.5 × the budget): nothing", burn: 0.5, minutes: 120, fires: [] }
]

/** Events per minute in every test; the bad ones are a whole share of it at every burn above. */
const perMinute = 10_000

const instance = "job=\"sending-dag\", instance=\"127.0.0.1:8000\""

/** A counter going up by `step` a minute for `minutes`. */
const counter = (series: string, step: number, minutes: number) => ({ series, values: `0+${step}x${minutes}` })

/** `POST /tx`-like requests of one route and status. */
const requests = (method: string, route: string, status: number) =>
  `http_server_request_duration_seconds_count{${instance}, method="${method}", route="${route}", status_code="${status}"}`

/** Approval latencies of a region: their `_count`, or their bucket up to the threshold. */
const approvals = (region: string, suffix: "count" | "bucket") =>
  `poh_approval_latency_seconds_${suffix}{${instance}, region="${region}", node="poh-1"${
    suffix === "bucket" ? `, le="${approvalThreshold}"` : ""
  }}`

/** Presence look-ups of one outcome. */
const calls = (outcome: string) => `presence_calls_total{${instance}, region="eu-central", outcome="${outcome}"}`

/** The input series of each SLO with `good` and `bad` events a minute, and what fails beside them without counting. */
const inputs: Record<keyof typeof objectives, (good: number, bad: number, minutes: number) => Array<object>> = {
  commit: (good, bad, minutes) => [
    counter(requests("POST", "/tx", 201), good, minutes),
    counter(requests("POST", "/tx", 503), bad, minutes),
    // Other routes' failures are not commits.
    counter(requests("GET", "/tx/:id", 500), perMinute, minutes)
  ],
  approval: (good, bad, minutes) => [
    counter(approvals("eu-central", "count"), good + bad, minutes),
    counter(approvals("eu-central", "bucket"), good, minutes),
    // Another region's approvals are all fast: its SLO does not burn.
    counter(approvals("us-east", "count"), perMinute, minutes),
    counter(approvals("us-east", "bucket"), perMinute, minutes)
  ],
  presence: (good, bad, minutes) => [counter(calls("success"), good, minutes), counter(calls("failure"), bad, minutes)]
}

/** Prometheus's `{{ $labels.x }}` filled in. */
const render = (template: string, labels: Readonly<Record<string, string>>) =>
  template.replaceAll(/\{\{\s*\$labels\.(\w+)\s*\}\}/g, (_, label: string) => labels[label] ?? "")

/** The alert `objective` raises at `severity`, as promtool expects it. */
const expected = (objective: Objective, severity: Severity) => {
  const labels = {
    job: "sending-dag",
    ...objective.slo === objectives.approval.slo ? { region: "eu-central" } : {},
    severity,
    sloth_id: `${service}-${objective.slo}`,
    sloth_service: service,
    sloth_slo: objective.slo,
    sloth_severity: severity
  }
  const spec = slothSpec.slos.find((slo) => slo.name === objective.slo)!
  const annotations = { ...spec.alerting.annotations, ...severityOf(objective, severity).annotations }
  return {
    exp_labels: labels,
    exp_annotations: Object.fromEntries(Object.entries(annotations).map(([name, text]) => [name, render(text, labels)]))
  }
}

/** The test file: three scenarios of each SLO. */
export const sloRuleTests = () => ({
  rule_files: ["rules-slo.yml"],
  evaluation_interval: "1m",
  tests: Object.entries(objectives).flatMap(([key, objective]) =>
    scenarios.map((scenario) => {
      const bad = Math.round(scenario.burn * (100 - objective.target) / 100 * perMinute)
      return {
        name: `${objective.slo}: ${scenario.name}`,
        interval: "1m",
        input_series: inputs[key as keyof typeof objectives](perMinute - bad, bad, scenario.minutes),
        alert_rule_test: [{
          alertname: objective.alert,
          eval_time: `${scenario.minutes}m`,
          exp_alerts: scenario.fires.map((severity) => expected(objective, severity))
        }]
      }
    })
  )
})
