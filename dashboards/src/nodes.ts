/**
 * The panels of the PoH nodes and Presence (issue 14), after the others
 * (overview.ts): approval latency and request rate by PoH node (the `node`
 * variable filters them), requests that went to another region because their
 * own had no node online, and Presence's online nodes per region as a gauge,
 * red at 0 (the alert DagRegionWithoutPohNode).
 */
import type { PanelBuilder as GaugePanelBuilder } from "@grafana/grafana-foundation-sdk/gauge"
import type { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries"
import { inNode, inRegion, window } from "./overview.ts"
import { gauge, timeseries } from "./panels.ts"
import { histogramQuantile, recorded } from "./rules.ts"

/** The panels by PoH node and of Presence. */
export const nodePanels = (): Array<TimeseriesPanelBuilder | GaugePanelBuilder> => [
  timeseries({
    title: "PoH approval latency p50/p99 by node",
    description: "PoH_REQUEST issued → PoH_ACK received, by the PoH node that acked; exemplars on p99 link to the trace.",
    unit: "s",
    queries: [0.5, 0.99].map((q) => ({
      expr: histogramQuantile(q, "poh_approval_latency_seconds", ["node"], window, `${inRegion}, ${inNode}`),
      legend: `p${Math.round(q * 100)} {{node}}`,
      exemplar: q === 0.99
    }))
  }),
  timeseries({
    title: "PoH requests by node and status",
    description: "PoH_REQUESTs per second by the node they went to and their status: a failover shows as errors on " +
      "one node and more requests on the others.",
    unit: "reqps",
    queries: [{ expr: `sum by (node, status) (${recorded.pohRequestsByNode}{${inNode}})`, legend: "{{node}} {{status}}" }]
  }),
  timeseries({
    title: "Cross-region PoH requests",
    description: "PoH_REQUESTs per second sent to another region's node because their own region had none online.",
    unit: "reqps",
    queries: [{ expr: `sum by (region) (${recorded.pohCrossRegion}{${inRegion}})`, legend: "from {{region}}" }]
  }),
  gauge({
    title: "Presence: online PoH nodes by region",
    description: "PoH nodes whose heartbeat Presence received within its TTL, by region; red at 0, where the alert " +
      "DagRegionWithoutPohNode fires.",
    unit: "short",
    red: { value: 1, below: true },
    queries: [{ expr: `max by (region) (presence_online_nodes{${inRegion}})`, legend: "{{region}}" }]
  })
]
