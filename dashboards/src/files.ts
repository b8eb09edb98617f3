/**
 * The generated files of dashboards/, by path relative to the repository:
 * the dashboard JSON, the rule file and the scrape config. `npm run dashboards`
 * writes them; test/Dashboards.test.ts checks the committed ones are current.
 */
import { dashboard } from "./dashboard.ts"
import { ruleGroups } from "./rules.ts"
import { prometheusConfig } from "./scrape.ts"
import { stringify, type Yaml } from "./yaml.ts"

const generated = (source: string) => [
  `Generated from dashboards/src/${source} by \`npm run dashboards\`: edit the source, not this file.`
]

/** Where each generated file goes (relative to the repository root) and its content. */
export const files: Readonly<Record<string, string>> = {
  "dashboards/dag-observability.json": `${JSON.stringify(dashboard, null, 2)}\n`,
  "dashboards/prometheus/rules.yml": stringify({ groups: ruleGroups } as unknown as Yaml, generated("rules.ts")),
  "dashboards/prometheus/prometheus.yml": stringify(prometheusConfig() as Yaml, [
    ...generated("scrape.ts"),
    "Scrapes the example network (`npm start`) and loads the rules; start Prometheus in this directory with",
    "--enable-feature=exemplar-storage to keep the latency exemplars (trace ids). With SENDING_DAG_WORKERS > 1 the",
    "sending DAG's other workers serve /metrics on the ports it prints: add each to the sending-dag job."
  ]),
  "examples/compose/prometheus.yml": stringify(
    prometheusConfig({
      targets: { "sending-dag": ["sending-dag:8000"], "poh-node": ["poh-node:8001"], presence: ["presence:8010"] },
      ruleFiles: ["/etc/prometheus/rules.yml"]
    }) as Yaml,
    [...generated("scrape.ts"), "The scrape config of docker-compose.yml: the nodes by their service names."]
  )
}
