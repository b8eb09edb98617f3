/**
 * The panels of the PoH nodes and Presence (issue 14), after the others of
 * dashboards/src/dashboard.ts: approval latency and request rate by PoH node
 * (the `node` variable filters them), requests that went to another region
 * because their own had no node online, and Presence's online nodes per
 * region as a gauge, red at 0 (the alert DagRegionWithoutPohNode).
 */
import type { PanelSpec } from "./dashboard.ts"
import { histogramQuantile, recorded } from "./rules.ts"

/** The window of the panels' own `rate()`s, as Grafana sizes it for the scrape interval. */
export const window = "$__rate_interval"

/** Region filter of the panels that have a `region` label. */
export const inRegion = "region=~\"$region\""

/** PoH node filter of the panels that have a `node` label. */
export const inNode = "node=~\"$node\""

/** The panels by PoH node and of Presence. */
export const nodePanelSpecs: ReadonlyArray<PanelSpec> = [
  {
    title: "PoH approval latency p50/p99 by node",
    description: "PoH_REQUEST issued → PoH_ACK received, by the PoH node that acked; exemplars on p99 link to the trace.",
    unit: "s",
    min: 0,
    queries: [0.5, 0.99].map((q) => ({
      expr: histogramQuantile(q, "poh_approval_latency_seconds", ["node"], window, `${inRegion}, ${inNode}`),
      legend: `p${Math.round(q * 100)} {{node}}`,
      exemplar: q === 0.99
    }))
  },
  {
    title: "PoH requests by node and status",
    description: "PoH_REQUESTs per second by the node they went to and their status: a failover shows as errors on " +
      "one node and more requests on the others.",
    unit: "reqps",
    min: 0,
    queries: [{ expr: `sum by (node, status) (${recorded.pohRequestsByNode}{${inNode}})`, legend: "{{node}} {{status}}" }]
  },
  {
    title: "Cross-region PoH requests",
    description: "PoH_REQUESTs per second sent to another region's node because their own region had none online.",
    unit: "reqps",
    min: 0,
    queries: [{ expr: `sum by (region) (${recorded.pohCrossRegion}{${inRegion}})`, legend: "from {{region}}" }]
  },
  {
    gauge: true,
    title: "Presence: online PoH nodes by region",
    description: "PoH nodes whose heartbeat Presence received within its TTL, by region; red at 0, where the alert " +
      "DagRegionWithoutPohNode fires.",
    unit: "short",
    min: 0,
    red: { value: 1, below: true },
    queries: [{ expr: `max by (region) (presence_online_nodes{${inRegion}})`, legend: "{{region}}" }]
  }
]
