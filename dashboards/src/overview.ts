/**
 * The panels of SPEC §7, in reading order, three to a row: transactions and
 * PoH, storage, Presence, gRPC, HTTP, MongoDB, the Node.js runtime and OTLP
 * export. Rates and ratios read the recording rules (rules.ts); latency
 * panels compute their quantiles from the raw `_bucket` series over
 * `$__rate_interval`, because only raw series carry exemplars.
 */
import type { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries"
import { type Query, ratio, timeseries } from "./panels.ts"
import { histogramQuantile, quantileName, quantiles, recorded, sumRate, thresholds } from "./rules.ts"
import { approvalThreshold, objectives } from "./slos.ts"

/** The window of the panels' own `rate()`s, as Grafana sizes it for the scrape interval. */
export const window = "$__rate_interval"

/** Region filter of the panels that have a `region` label. */
export const inRegion = "region=~\"$region\""

/** PoH node filter of the panels that have a `node` label. */
export const inNode = "node=~\"$node\""

/** p50, p90 and p99 of a latency histogram; the p99 query asks for exemplars, each a link to its trace. */
const latencyQuantiles = (histogram: string, by: ReadonlyArray<string>, matcher = ""): Array<Query> =>
  quantiles.map((q) => ({
    expr: histogramQuantile(q, histogram, by, window, matcher),
    legend: [quantileName(q), ...by.map((label) => `{{${label}}}`)].join(" "),
    exemplar: q === 0.99
  }))

/** A rate panel (`reqps`): one query per legend. */
const rates = (title: string, description: string, queries: ReadonlyArray<Query>) =>
  timeseries({ title, description, unit: "reqps", queries })

/** The panels of the whole network. */
export const overviewPanels = (): Array<TimeseriesPanelBuilder> => [
  rates("Tx/s", "Transactions acknowledged by PoH and persisted, per second, by region.", [
    { expr: `sum by (region) (${recorded.txCommitted}{${inRegion}})`, legend: "{{region}}" }
  ]),
  rates("PoH requests vs acks by region", "PoH_REQUESTs issued (by status) and PoH_ACKs received, per second.", [
    { expr: `sum by (region, status) (${recorded.pohRequests}{${inRegion}})`, legend: "requests {{region}} {{status}}" },
    { expr: `sum by (region) (${recorded.pohAcks}{${inRegion}})`, legend: "acks {{region}}" }
  ]),
  ratio(
    "PoH ack ratio",
    "PoH_ACKs per PoH_REQUEST over 5 minutes; below the line, attempts fail and transactions fail over to other nodes.",
    { expr: `${recorded.pohAckRatio}{${inRegion}}`, legend: "{{region}}" },
    { value: thresholds.pohAckRatio, below: true }
  ),
  timeseries({
    title: "PoH approval latency p50/p90/p99",
    description: "PoH_REQUEST issued → PoH_ACK received. Exemplars on p99 link to the trace of a slow transaction; " +
      `the approval latency SLO counts approvals above the line (${approvalThreshold * 1000} ms) as bad.`,
    unit: "s",
    red: { value: approvalThreshold },
    queries: latencyQuantiles("poh_approval_latency_seconds", [], `${inRegion}, ${inNode}`)
  }),
  timeseries({
    title: "Storage latency p50/p90/p99",
    description: "Completion latency of transaction writes; above the line, MongoDB is slow.",
    unit: "s",
    red: { value: thresholds.storageLatencyP99 },
    queries: latencyQuantiles("storage_latency_seconds", [])
  }),
  ratio(
    "Presence success rate",
    `Presence look-ups that succeed, over 5 minutes; the Presence availability SLO is ${objectives.presence.target}% ` +
      "(the line).",
    { expr: `${recorded.presenceSuccessRatio}{${inRegion}}`, legend: "{{region}}" },
    { value: objectives.presence.target / 100, below: true }
  ),
  rates("gRPC requests by method and code", "gRPC calls served per second, by method and status code.", [
    { expr: `sum by (method, code) (${recorded.grpcServerRequests})`, legend: "{{method}} {{code}}" }
  ]),
  timeseries({
    title: "gRPC latency p99 by method and code",
    description: "99th percentile of gRPC latency: server (the PoH node) and client (the sending DAG).",
    unit: "s",
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
  }),
  ratio(
    "gRPC error rate by method",
    "Share of gRPC calls served with a status other than OK, over 5 minutes.",
    { expr: recorded.grpcServerErrorRatio, legend: "{{job}} {{method}}" },
    { value: 0.01 }
  ),
  rates("HTTP requests by route and status", "HTTP requests per second, by route template and status code.", [
    { expr: `sum by (route, status_code) (${recorded.httpRequests})`, legend: "{{route}} {{status_code}}" }
  ]),
  ratio(
    "HTTP error rate by route",
    "Share of HTTP requests answered with a 5xx, over 5 minutes; the commit availability SLO allows " +
      `${(100 - objectives.commit.target).toFixed(1)}% on POST /tx (the line).`,
    { expr: recorded.httpErrorRatio, legend: "{{route}}" },
    { value: Number((1 - objectives.commit.target / 100).toFixed(4)) }
  ),
  timeseries({
    title: "HTTP latency p50/p90/p99 by route",
    description: "HTTP server latency by route template; exemplars on p99 link to the request's trace.",
    unit: "s",
    red: { value: 1 },
    queries: latencyQuantiles("http_server_request_duration_seconds", ["route"])
  }),
  timeseries({
    title: "MongoDB command latency p99 by command",
    description: "99th percentile of every MongoDB driver command, by command name.",
    unit: "s",
    red: { value: thresholds.storageLatencyP99 },
    queries: [{
      expr: histogramQuantile(0.99, "mongodb_command_duration_seconds", ["command"], window),
      legend: "{{command}}",
      exemplar: true
    }]
  }),
  timeseries({
    title: "Event-loop lag",
    description: "Node.js event-loop delay, p50 and p99, per process.",
    unit: "s",
    red: { value: 0.1 },
    queries: [
      { expr: "max by (job) (nodejs_eventloop_lag_p50_seconds)", legend: "p50 {{job}}" },
      { expr: "max by (job) (nodejs_eventloop_lag_p99_seconds)", legend: "p99 {{job}}" }
    ]
  }),
  timeseries({
    title: "Heap",
    description: "V8 heap used and allocated, and the resident set size, per process.",
    unit: "bytes",
    queries: [
      { expr: "sum by (job) (nodejs_heap_size_used_bytes)", legend: "heap used {{job}}" },
      { expr: "sum by (job) (nodejs_heap_size_total_bytes)", legend: "heap total {{job}}" },
      { expr: "sum by (job) (process_resident_memory_bytes)", legend: "rss {{job}}" }
    ]
  }),
  timeseries({
    title: "OTLP export failures",
    description: "Spans per second that failed to export or were dropped from the full queue; the alert " +
      "DagOtlpExportFailures fires when this stays above 0. Exported spans for comparison.",
    unit: "ops",
    red: { value: 0.001 },
    queries: [
      { expr: recorded.otlpExportFailures, legend: "failed or dropped {{job}}" },
      { expr: sumRate("otlp_exported_spans_total{outcome=\"exported\"}", ["job"], window), legend: "exported {{job}}" }
    ]
  })
]
