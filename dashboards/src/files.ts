/**
 * The generated files of dashboards/, by path relative to the repository:
 * the dashboard JSON, the rule file, the SLO spec and its rules' unit tests,
 * the Alertmanager config and the scrape config. `npm run dashboards` writes
 * them (and has Sloth generate the SLO rules from the spec, generate.ts);
 * test/Dashboards.test.ts checks the committed ones are current.
 */
import { alertmanagerConfig, withAlertmanagers } from "./alertmanager.ts"
import { dashboard } from "./dashboard.ts"
import { ruleFiles, ruleGroups } from "./rules.ts"
import { compose, prometheusConfig } from "./scrape.ts"
import { sloRuleTests } from "./sloTests.ts"
import { slothSpec } from "./slos.ts"
import { stringify, type Yaml } from "./yaml.ts"

const generated = (source: string) => [
  `Generated from dashboards/src/${source} by \`npm run dashboards\`: edit the source, not this file.`
]

/** Where each generated file goes (relative to the repository root) and its content. */
export const files: Readonly<Record<string, string>> = {
  "dashboards/dag-observability.json": `${JSON.stringify(dashboard(), null, 2)}\n`,
  "dashboards/prometheus/rules.yml": stringify({ groups: ruleGroups() } as unknown as Yaml, generated("rules.ts")),
  "dashboards/slo/dag.yaml": stringify(slothSpec as Yaml, [
    ...generated("slos.ts"),
    "Sloth's prometheus/v1 spec; `npm run dashboards` has Sloth generate dashboards/prometheus/rules-slo.yml from it."
  ]),
  "dashboards/prometheus/rules-slo.test.yml": stringify(sloRuleTests() as unknown as Yaml, [
    ...generated("sloTests.ts"),
    "promtool unit tests of the SLO rules (`promtool test rules rules-slo.test.yml`, run by test/Rules.test.ts): each",
    "SLO on a fast burn (page and ticket), a slow burn (ticket only) and an error rate within its budget (nothing)."
  ]),
  "dashboards/alertmanager/alertmanager.yml": stringify(alertmanagerConfig() as Yaml, [
    ...generated("alertmanager.ts"),
    "Routes the alerts of rules.yml and rules-slo.yml by severity: `page` (now) and `ticket` (working hours). The two",
    "receivers have no integration yet: add yours (pagerduty_configs, slack_configs, email_configs, webhook_configs)."
  ]),
  "dashboards/prometheus/prometheus.yml": stringify(
    withAlertmanagers(prometheusConfig({ ruleFiles }), ["127.0.0.1:9093"]) as Yaml,
    [
      ...generated("scrape.ts"),
      "Scrapes the example network (`npm start`), loads the rules and the SLOs' and sends the alerts to an Alertmanager",
      "on 127.0.0.1:9093; start Prometheus in this directory with --enable-feature=exemplar-storage to keep the latency",
      "exemplars (trace ids). With SENDING_DAG_WORKERS > 1 the sending DAG's other workers serve /metrics on the ports",
      "it prints: add each to the sending-dag job."
    ]
  ),
  "examples/compose/prometheus.yml": stringify(
    prometheusConfig({
      ...compose,
      ruleFiles: ruleFiles.map((file) => `/etc/prometheus/${file}`)
    }) as Yaml,
    [
      ...generated("scrape.ts"),
      "The scrape config of docker-compose.yml: the nodes and the collectors by their service names; the recorded",
      "series written to the long-term store."
    ]
  )
}
