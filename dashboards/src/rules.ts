/**
 * The Prometheus recording and alerting rules of SPEC §7, written out as
 * dashboards/prometheus/rules.yml by `npm run dashboards`. The dashboard reads
 * the recorded series and draws the alert thresholds defined here.
 */

/** A recording rule: `expr` evaluated and stored as the series `record`. */
export interface RecordingRule {
  readonly record: string
  readonly expr: string
}

/** An alerting rule with its pending period, severity and what it means. */
export interface AlertingRule {
  readonly alert: string
  readonly expr: string
  readonly for: string
  readonly labels: { readonly severity: "warning" | "critical" }
  readonly annotations: { readonly summary: string; readonly description: string }
}

/** A named group of rules, as a Prometheus rule file lists them. */
export interface RuleGroup {
  readonly name: string
  readonly rules: ReadonlyArray<RecordingRule | AlertingRule>
}

/** `sum by (<by>) (rate(<series>[<window>]))`. */
export const sumRate = (series: string, by: ReadonlyArray<string>, window: string): string =>
  `sum by (${by.join(", ")}) (rate(${series}[${window}]))`

/** The `q` quantile of histogram `name` over `window`, kept apart by `by`, of the series matching `matcher`. */
export const histogramQuantile = (
  q: number,
  name: string,
  by: ReadonlyArray<string>,
  window: string,
  matcher = ""
): string => {
  const buckets = matcher === "" ? `${name}_bucket` : `${name}_bucket{${matcher}}`
  return `histogram_quantile(${q}, ${sumRate(buckets, [...by, "le"], window)})`
}

/**
 * The share of `series` matching `matcher` over `window`, by `by`; 0 rather
 * than nothing when no series matches (no errors yet), NaN when idle.
 */
export const shareOf = (series: string, matcher: string, by: ReadonlyArray<string>, window: string): string => {
  const all = sumRate(series, by, window)
  return `(${sumRate(`${series}{${matcher}}`, by, window)} or ${all} * 0) / ${all}`
}

/** The quantiles the rules record and the dashboard draws. */
export const quantiles = [0.5, 0.9, 0.99] as const

/** `p50`, `p90`, `p99`. */
export const quantileName = (q: number): string => `p${Math.round(q * 100)}`

/** The names of the recorded series. */
export const recorded = {
  txCommitted: "dag:tx_committed:rate1m",
  pohRequests: "dag:poh_requests:rate1m",
  pohRequestsByNode: "dag:poh_requests_by_node:rate1m",
  pohCrossRegion: "dag:poh_cross_region:rate1m",
  pohAcks: "dag:poh_ack:rate1m",
  pohAckRatio: "dag:poh_ack_ratio:rate5m",
  approvalLatency: (q: number) => `dag:poh_approval_latency_seconds:${quantileName(q)}_5m`,
  storageLatency: (q: number) => `dag:storage_latency_seconds:${quantileName(q)}_5m`,
  presenceSuccessRatio: "dag:presence_success_ratio:rate5m",
  grpcServerRequests: "dag:grpc_server_requests:rate1m",
  grpcServerErrorRatio: "dag:grpc_server_errors:ratio_rate5m",
  httpRequests: "dag:http_requests:rate1m",
  httpErrorRatio: "dag:http_errors:ratio_rate5m",
  otlpExportFailures: "dag:otlp_export_failures:rate5m"
} as const

/** The thresholds of the alerts, drawn on the dashboard too. */
export const thresholds = {
  /** Presence look-ups that succeed, at least. */
  presenceSuccessRatio: 0.9,
  /** PoH_ACKs per PoH_REQUEST, at least. */
  pohAckRatio: 0.99,
  /** p99 approval latency SLO, seconds. */
  approvalLatencyP99: 0.5,
  /** p99 storage write latency SLO, seconds. */
  storageLatencyP99: 0.25
} as const

const latencyRules = (name: (q: number) => string, histogram: string): Array<RecordingRule> =>
  quantiles.map((q) => ({ record: name(q), expr: histogramQuantile(q, histogram, ["job"], "5m") }))

/** The recording rules: the rates, ratios and quantiles the dashboard and the alerts use. */
export const recordingRules: ReadonlyArray<RecordingRule> = [
  { record: recorded.txCommitted, expr: sumRate("tx_committed_total", ["job", "region"], "1m") },
  { record: recorded.pohRequests, expr: sumRate("poh_requests_total", ["job", "region", "status"], "1m") },
  { record: recorded.pohAcks, expr: sumRate("poh_ack_total", ["job", "region"], "1m") },
  { record: recorded.pohRequestsByNode, expr: sumRate("poh_requests_total", ["job", "node", "status"], "1m") },
  {
    record: recorded.pohCrossRegion,
    expr: sumRate("poh_requests_total{placement=\"cross_region\"}", ["job", "region"], "1m")
  },
  {
    record: recorded.pohAckRatio,
    expr: `${sumRate("poh_ack_total", ["job", "region"], "5m")} / ${
      sumRate("poh_requests_total", ["job", "region"], "5m")
    }`
  },
  ...latencyRules(recorded.approvalLatency, "poh_approval_latency_seconds"),
  ...latencyRules(recorded.storageLatency, "storage_latency_seconds"),
  {
    record: recorded.presenceSuccessRatio,
    expr: shareOf("presence_calls_total", "outcome=\"success\"", ["job", "region"], "5m")
  },
  {
    record: recorded.grpcServerRequests,
    expr: sumRate("grpc_method_latency_seconds_count", ["job", "service", "method", "code"], "1m")
  },
  {
    record: recorded.grpcServerErrorRatio,
    expr: shareOf("grpc_method_latency_seconds_count", "code!=\"OK\"", ["job", "method"], "5m")
  },
  {
    record: recorded.httpRequests,
    expr: sumRate("http_server_request_duration_seconds_count", ["job", "route", "status_code"], "1m")
  },
  {
    record: recorded.httpErrorRatio,
    expr: shareOf("http_server_request_duration_seconds_count", "status_code=~\"5..\"", ["job", "route"], "5m")
  },
  {
    record: recorded.otlpExportFailures,
    expr: `${sumRate("otlp_exported_spans_total{outcome=~\"failed|dropped\"}", ["job"], "5m")} or ${
      sumRate("otlp_exported_spans_total", ["job"], "5m")
    } * 0`
  }
]

/** The alerting rules. */
export const alertingRules: ReadonlyArray<AlertingRule> = [
  {
    alert: "DagTargetDown",
    expr: "up == 0",
    for: "1m",
    labels: { severity: "critical" },
    annotations: {
      summary: "{{ $labels.job }} at {{ $labels.instance }} is down",
      description: "Prometheus has not been able to scrape {{ $labels.instance }} (job {{ $labels.job }}) for 1 minute: " +
        "the node is down or its /metrics endpoint does not answer."
    }
  },
  {
    alert: "DagPresenceSuccessRateLow",
    expr: `${recorded.presenceSuccessRatio} < ${thresholds.presenceSuccessRatio}`,
    for: "5m",
    labels: { severity: "warning" },
    annotations: {
      summary: "Presence look-ups in {{ $labels.region }} succeed only {{ $value | humanizePercentage }} of the time",
      description: `Fewer than ${thresholds.presenceSuccessRatio * 100}% of presence look-ups in region ` +
        "{{ $labels.region }} succeeded over 5 minutes: transactions there go on without knowing who is online."
    }
  },
  {
    alert: "DagPohAckRatioLow",
    expr: `${recorded.pohAckRatio} < ${thresholds.pohAckRatio}`,
    for: "5m",
    labels: { severity: "critical" },
    annotations: {
      summary: "Only {{ $value | humanizePercentage }} of PoH requests in {{ $labels.region }} are acknowledged",
      description: `Fewer than ${thresholds.pohAckRatio * 100}% of PoH_REQUESTs in region {{ $labels.region }} ` +
        "got a PoH_ACK over 5 minutes: the PoH node fails or times out, so transactions are not approved."
    }
  },
  {
    alert: "DagApprovalLatencySLO",
    expr: `${recorded.approvalLatency(0.99)} > ${thresholds.approvalLatencyP99}`,
    for: "10m",
    labels: { severity: "warning" },
    annotations: {
      summary: "p99 PoH approval latency of {{ $labels.job }} is {{ $value | humanizeDuration }}",
      description: `The 99th percentile of PoH_REQUEST → PoH_ACK is above the ${thresholds.approvalLatencyP99} s ` +
        "SLO for 10 minutes: the PoH node or the network to it is slow."
    }
  },
  {
    alert: "DagStorageLatencySLO",
    expr: `${recorded.storageLatency(0.99)} > ${thresholds.storageLatencyP99}`,
    for: "10m",
    labels: { severity: "warning" },
    annotations: {
      summary: "p99 storage write latency of {{ $labels.job }} is {{ $value | humanizeDuration }}",
      description: `The 99th percentile of transaction writes is above the ${thresholds.storageLatencyP99} s SLO ` +
        "for 10 minutes: MongoDB is slow or overloaded."
    }
  },
  {
    alert: "DagRegionWithoutPohNode",
    expr: "max by (region) (presence_online_nodes) == 0",
    for: "1m",
    labels: { severity: "critical" },
    annotations: {
      summary: "No PoH node online in {{ $labels.region }}",
      description: "Presence has had no heartbeat from any PoH node of region {{ $labels.region }} within its TTL for " +
        "1 minute: the region's transactions go to other regions' nodes (slower), or fail if none is online."
    }
  },
  {
    alert: "DagOtlpExportFailures",
    expr: `${recorded.otlpExportFailures} > 0`,
    for: "10m",
    labels: { severity: "warning" },
    annotations: {
      summary: "{{ $labels.job }} fails to export {{ $value | humanize }} spans/s over OTLP",
      description: "Spans of {{ $labels.job }} have been failing to export or dropped from the full queue for " +
        "10 minutes: the OTLP collector is unreachable or too slow, so traces are missing."
    }
  }
]

/** The rule file: recording rules and alerts in separate groups, evaluated at the global interval. */
export const ruleGroups: ReadonlyArray<RuleGroup> = [
  { name: "dag-observability.recording", rules: recordingRules },
  { name: "dag-observability.alerts", rules: alertingRules }
]
