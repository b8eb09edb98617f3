/**
 * The Grafana dashboard of SPEC §7 as plain objects, written out as
 * dashboards/dag-observability.json by `npm run dashboards`. Importable as is:
 * the Prometheus datasource is the `datasource` template variable, so the JSON
 * names no datasource of any particular Grafana.
 */
import { inNode, inRegion, nodePanelSpecs, window } from "./nodes.ts"
import { histogramQuantile, quantileName, quantiles, recorded, sumRate, thresholds } from "./rules.ts"

/** Every panel's and target's datasource: whatever the `datasource` variable is set to. */
export const datasource = { type: "prometheus", uid: "${datasource}" } as const


/** One PromQL query of a panel. */
export interface Target {
  readonly refId: string
  readonly datasource: typeof datasource
  readonly expr: string
  readonly legendFormat: string
  readonly range: true
  readonly instant: false
  readonly editorMode: "code"
  /** Ask Prometheus for the exemplars of this query's series (latency histograms: links to their traces). */
  readonly exemplar: boolean
}

/** A threshold step: `color` from `value` up (`null`: from minus infinity). */
interface Step {
  readonly color: string
  readonly value: number | null
}

/** A time series panel, or (`type: "gauge"`) a gauge of each series' last value. */
export interface Panel {
  readonly id: number
  readonly type: "timeseries" | "gauge"
  readonly title: string
  readonly description: string
  readonly datasource: typeof datasource
  readonly gridPos: { readonly h: number; readonly w: number; readonly x: number; readonly y: number }
  readonly fieldConfig: {
    readonly defaults: {
      readonly unit: string
      readonly min?: number
      readonly max?: number
      readonly decimals?: number
      readonly color: { readonly mode: "palette-classic" | "thresholds" }
      readonly thresholds: { readonly mode: "absolute"; readonly steps: ReadonlyArray<Step> }
      readonly custom?: {
        readonly drawStyle: "line"
        readonly lineWidth: number
        readonly fillOpacity: number
        readonly showPoints: "never"
        readonly spanNulls: boolean
        readonly thresholdsStyle: { readonly mode: "off" | "line" | "dashed" }
      }
    }
    readonly overrides: ReadonlyArray<never>
  }
  readonly options: {
    readonly legend?: { readonly displayMode: "list"; readonly placement: "bottom"; readonly showLegend: true }
    readonly tooltip?: { readonly mode: "multi"; readonly sort: "desc" }
    readonly reduceOptions?: { readonly values: false; readonly calcs: ReadonlyArray<string>; readonly fields: "" }
    readonly orientation?: "auto"
    readonly showThresholdLabels?: false
    readonly showThresholdMarkers?: true
  }
  readonly targets: ReadonlyArray<Target>
}

/** What a panel shows, before it is laid out. */
export interface PanelSpec {
  /** A gauge of each series' last value instead of a time series. */
  readonly gauge?: boolean
  readonly title: string
  readonly description: string
  readonly unit: string
  readonly queries: ReadonlyArray<{ readonly expr: string; readonly legend: string; readonly exemplar?: boolean }>
  readonly min?: number
  readonly max?: number
  /** Red from this value up, or below it with `below`; drawn as a dashed line. */
  readonly red?: { readonly value: number; readonly below?: boolean }
}

const green = "green"
const red = "red"

const target = (index: number, query: PanelSpec["queries"][number]): Target => ({
  refId: String.fromCharCode(65 + index),
  datasource,
  expr: query.expr,
  legendFormat: query.legend,
  range: true,
  instant: false,
  editorMode: "code",
  exemplar: query.exemplar ?? false
})

const steps = (limit: PanelSpec["red"]): ReadonlyArray<Step> =>
  limit === undefined ? [{ color: green, value: null }] : limit.below ?
  [{ color: red, value: null }, { color: green, value: limit.value }] :
  [{ color: green, value: null }, { color: red, value: limit.value }]

const width = 8
const height = 8

const panel = (spec: PanelSpec, index: number): Panel => ({
  id: index + 1,
  type: spec.gauge === true ? "gauge" : "timeseries",
  title: spec.title,
  description: spec.description,
  datasource,
  gridPos: { h: height, w: width, x: (index % 3) * width, y: Math.floor(index / 3) * height },
  fieldConfig: {
    defaults: {
      unit: spec.unit,
      ...spec.min === undefined ? {} : { min: spec.min },
      ...spec.max === undefined ? {} : { max: spec.max },
      color: { mode: spec.gauge === true ? "thresholds" : "palette-classic" },
      thresholds: { mode: "absolute", steps: steps(spec.red) },
      ...spec.gauge === true ? {} : {
        custom: {
          drawStyle: "line",
          lineWidth: 1,
          fillOpacity: 10,
          showPoints: "never",
          spanNulls: false,
          thresholdsStyle: { mode: spec.red === undefined ? "off" : "dashed" }
        }
      }
    },
    overrides: []
  },
  options: spec.gauge === true
    ? {
      reduceOptions: { values: false, calcs: ["lastNotNull"], fields: "" },
      orientation: "auto",
      showThresholdLabels: false,
      showThresholdMarkers: true
    }
    : {
      legend: { displayMode: "list", placement: "bottom", showLegend: true },
      tooltip: { mode: "multi", sort: "desc" }
    },
  targets: spec.queries.map((query, i) => target(i, query))
})

/** p50, p90 and p99 of a latency histogram; the p99 query asks for exemplars, each a link to its trace. */
const latencyQuantiles = (histogram: string, by: ReadonlyArray<string>, matcher = "") =>
  quantiles.map((q) => ({
    expr: histogramQuantile(q, histogram, by, window, matcher),
    legend: [quantileName(q), ...by.map((label) => `{{${label}}}`)].join(" "),
    exemplar: q === 0.99
  }))

/** A share from 0 to 1 of one recorded ratio, red on the wrong side of `limit`. */
const ratio = (
  title: string,
  description: string,
  expr: string,
  legend: string,
  limit: NonNullable<PanelSpec["red"]>
): PanelSpec => ({
  title,
  description,
  unit: "percentunit",
  min: 0,
  max: 1,
  red: limit,
  queries: [{ expr, legend }]
})

/** The panels, in reading order, three to a row; the PoH nodes' and Presence's last (dashboards/src/nodes.ts). */
export const panelSpecs: ReadonlyArray<PanelSpec> = [
  {
    title: "Tx/s",
    description: "Transactions acknowledged by PoH and persisted, per second, by region.",
    unit: "reqps",
    min: 0,
    queries: [{ expr: `sum by (region) (${recorded.txCommitted}{${inRegion}})`, legend: "{{region}}" }]
  },
  {
    title: "PoH requests vs acks by region",
    description: "PoH_REQUESTs issued (by status) and PoH_ACKs received, per second.",
    unit: "reqps",
    min: 0,
    queries: [
      { expr: `sum by (region, status) (${recorded.pohRequests}{${inRegion}})`, legend: "requests {{region}} {{status}}" },
      { expr: `sum by (region) (${recorded.pohAcks}{${inRegion}})`, legend: "acks {{region}}" }
    ]
  },
  ratio(
    "PoH ack ratio",
    "PoH_ACKs per PoH_REQUEST over 5 minutes; the alert DagPohAckRatioLow fires below the line.",
    `${recorded.pohAckRatio}{${inRegion}}`,
    "{{region}}",
    { value: thresholds.pohAckRatio, below: true }
  ),
  {
    title: "PoH approval latency p50/p90/p99",
    description: "PoH_REQUEST issued → PoH_ACK received. Exemplars on p99 link to the trace of a slow transaction; " +
      "the alert DagApprovalLatencySLO fires when p99 stays above the line.",
    unit: "s",
    min: 0,
    red: { value: thresholds.approvalLatencyP99 },
    queries: latencyQuantiles("poh_approval_latency_seconds", [], `${inRegion}, ${inNode}`)
  },
  {
    title: "Storage latency p50/p90/p99",
    description: "Completion latency of transaction writes; the alert DagStorageLatencySLO fires when p99 stays above " +
      "the line.",
    unit: "s",
    min: 0,
    red: { value: thresholds.storageLatencyP99 },
    queries: latencyQuantiles("storage_latency_seconds", [])
  },
  ratio(
    "Presence success rate",
    "Presence look-ups that succeed, over 5 minutes; the alert DagPresenceSuccessRateLow fires below the line.",
    `${recorded.presenceSuccessRatio}{${inRegion}}`,
    "{{region}}",
    { value: thresholds.presenceSuccessRatio, below: true }
  ),
  {
    title: "gRPC requests by method and code",
    description: "gRPC calls served per second, by method and status code.",
    unit: "reqps",
    min: 0,
    queries: [{ expr: `sum by (method, code) (${recorded.grpcServerRequests})`, legend: "{{method}} {{code}}" }]
  },
  {
    title: "gRPC latency p99 by method and code",
    description: "99th percentile of gRPC latency: server (the PoH node) and client (the sending DAG).",
    unit: "s",
    min: 0,
    red: { value: 1 },
    queries: [
      {
        expr: histogramQuantile(0.99, "grpc_method_latency_seconds", ["method", "code"], window),
        legend: "server {{method}} {{code}}",
        exemplar: true
      },
      {
        expr: histogramQuantile(0.99, "grpc_client_latency_seconds", ["method", "code"], window),
        legend: "client {{method}} {{code}}",
        exemplar: true
      }
    ]
  },
  ratio(
    "gRPC error rate by method",
    "Share of gRPC calls served with a status other than OK, over 5 minutes.",
    recorded.grpcServerErrorRatio,
    "{{job}} {{method}}",
    { value: 0.01 }
  ),
  {
    title: "HTTP requests by route and status",
    description: "HTTP requests per second, by route template and status code.",
    unit: "reqps",
    min: 0,
    queries: [{ expr: `sum by (route, status_code) (${recorded.httpRequests})`, legend: "{{route}} {{status_code}}" }]
  },
  ratio(
    "HTTP error rate by route",
    "Share of HTTP requests answered with a 5xx, over 5 minutes.",
    recorded.httpErrorRatio,
    "{{route}}",
    { value: 0.01 }
  ),
  {
    title: "HTTP latency p50/p90/p99 by route",
    description: "HTTP server latency by route template; exemplars on p99 link to the request's trace.",
    unit: "s",
    min: 0,
    red: { value: 1 },
    queries: latencyQuantiles("http_server_request_duration_seconds", ["route"])
  },
  {
    title: "MongoDB command latency p99 by command",
    description: "99th percentile of every MongoDB driver command, by command name.",
    unit: "s",
    min: 0,
    red: { value: thresholds.storageLatencyP99 },
    queries: [{
      expr: histogramQuantile(0.99, "mongodb_command_duration_seconds", ["command"], window),
      legend: "{{command}}",
      exemplar: true
    }]
  },
  {
    title: "Event-loop lag",
    description: "Node.js event-loop delay, p50 and p99, per process.",
    unit: "s",
    min: 0,
    red: { value: 0.1 },
    queries: [
      { expr: "max by (job) (nodejs_eventloop_lag_p50_seconds)", legend: "p50 {{job}}" },
      { expr: "max by (job) (nodejs_eventloop_lag_p99_seconds)", legend: "p99 {{job}}" }
    ]
  },
  {
    title: "Heap",
    description: "V8 heap used and allocated, and the resident set size, per process.",
    unit: "bytes",
    min: 0,
    queries: [
      { expr: "sum by (job) (nodejs_heap_size_used_bytes)", legend: "heap used {{job}}" },
      { expr: "sum by (job) (nodejs_heap_size_total_bytes)", legend: "heap total {{job}}" },
      { expr: "sum by (job) (process_resident_memory_bytes)", legend: "rss {{job}}" }
    ]
  },
  {
    title: "OTLP export failures",
    description: "Spans per second that failed to export or were dropped from the full queue; the alert " +
      "DagOtlpExportFailures fires when this stays above 0. Exported spans for comparison.",
    unit: "ops",
    min: 0,
    red: { value: 0.001 },
    queries: [
      { expr: recorded.otlpExportFailures, legend: "failed or dropped {{job}}" },
      { expr: sumRate("otlp_exported_spans_total{outcome=\"exported\"}", ["job"], window), legend: "exported {{job}}" }
    ]
  },
  ...nodePanelSpecs
]

/** A multi-value variable over the values of `label` in `metric`, all by default. */
const queryVariable = (label: string, title: string, metric: string) => ({
  name: label,
  label: title,
  type: "query",
  datasource,
  definition: `label_values(${metric}, ${label})`,
  query: { query: `label_values(${metric}, ${label})`, refId: "PrometheusVariableQueryEditor-VariableQuery" },
  current: { selected: true, text: ["All"], value: ["$__all"] },
  hide: 0,
  includeAll: true,
  allValue: ".*",
  multi: true,
  options: [],
  refresh: 2,
  regex: "",
  skipUrlSync: false,
  sort: 1
})

/** The template variables: the Prometheus datasource, the regions and the PoH nodes shown. */
export const templating = {
  list: [
    {
      name: "datasource",
      label: "Data source",
      type: "datasource",
      query: "prometheus",
      current: {},
      hide: 0,
      includeAll: false,
      multi: false,
      options: [],
      refresh: 1,
      regex: "",
      skipUrlSync: false
    },
    queryVariable("region", "Region", "tx_committed_total"),
    queryVariable("node", "PoH node", "poh_requests_total")
  ]
}

/** The dashboard, as Grafana's "Import dashboard" takes it. */
export const dashboard = {
  uid: "dag-observability",
  title: "DAG network",
  description: "Transactions, PoH, storage, presence, gRPC, HTTP, MongoDB and Node.js runtime of the DAG network " +
    "(dag-observability). Generated from dashboards/src/dashboard.ts by `npm run dashboards`.",
  tags: ["dag-observability", "prometheus"],
  timezone: "browser",
  editable: true,
  graphTooltip: 1,
  schemaVersion: 39,
  version: 1,
  refresh: "10s",
  time: { from: "now-30m", to: "now" },
  timepicker: {},
  fiscalYearStartMonth: 0,
  liveNow: false,
  links: [],
  templating,
  panels: panelSpecs.map(panel)
}
