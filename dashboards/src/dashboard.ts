/**
 * The Grafana dashboard of SPEC §7, built with Grafana's own dashboards-as-code
 * SDK (`@grafana/grafana-foundation-sdk`, its Grafana 11.6 line: schema
 * version 41, which Grafana 11.6 and 12 import) and written out as
 * dashboards/dag-observability.json by `npm run dashboards`. Importable as
 * is: the Prometheus datasource is the `datasource` template variable, so the
 * JSON names no datasource of any particular Grafana. The SDK lays the panels
 * out, three to a row: the SLOs (sloPanels.ts), the network (overview.ts), the
 * PoH nodes and Presence (nodes.ts).
 */
import {
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  VariableRefresh,
  VariableSort
} from "@grafana/grafana-foundation-sdk/dashboard"
import { nodePanels } from "./nodes.ts"
import { overviewPanels } from "./overview.ts"
import { datasource } from "./panels.ts"
import { sloPanels } from "./sloPanels.ts"

/** A multi-value variable over the values of `label` in `metric`, all by default. */
const queryVariable = (label: string, title: string, metric: string) =>
  new QueryVariableBuilder(label)
    .label(title)
    .datasource(datasource)
    .query(`label_values(${metric}, ${label})`)
    .current({ selected: true, text: ["All"], value: ["$__all"] })
    .includeAll(true)
    .allValue(".*")
    .multi(true)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)

/** The dashboard, as Grafana's "Import dashboard" takes it. */
export const dashboard = (): Dashboard => {
  const builder = new DashboardBuilder("DAG network")
    .uid("dag-observability")
    .description(
      "SLOs, transactions, PoH, storage, presence, gRPC, HTTP, MongoDB and Node.js runtime of the DAG network " +
        "(dag-observability). Generated from dashboards/src/dashboard.ts by `npm run dashboards`."
    )
    .tags(["dag-observability", "prometheus"])
    .timezone("browser")
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh("10s")
    .time({ from: "now-30m", to: "now" })
    .annotations([])
    .withVariable(new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"))
    .withVariable(queryVariable("region", "Region", "tx_committed_total"))
    .withVariable(queryVariable("node", "PoH node", "poh_requests_total"))
  const panels = [...sloPanels(), ...overviewPanels(), ...nodePanels()]
  panels.forEach((panel, i) => builder.withPanel(panel.id(i + 1)))
  return builder.build()
}
