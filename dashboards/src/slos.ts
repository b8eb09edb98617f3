/**
 * The service-level objectives of the DAG network, in one place: what each
 * counts as a good and a bad event, its target over a rolling 30 days, and
 * the alert Sloth makes of it. `npm run dashboards` writes them as Sloth's
 * `prometheus/v1` spec (dashboards/slo/dag.yaml) and has Sloth generate their
 * recording and multi-window multi-burn-rate alerting rules
 * (dashboards/prometheus/rules-slo.yml). docs/dashboards.md says why these
 * targets and windows.
 */
import { scaled } from "./durations.ts"
import { runbookUrl, type Severity, sumRate } from "./rules.ts"

/** The `sloth_service` of every SLO. */
export const service = "dag-network"

/** The SLO period: a rolling 30 days (Sloth's default, and the windows of the Google SRE workbook). */
export const period = "30d"

/** An approval is good when it takes at most this long, in seconds (a bucket bound of the histogram). */
export const approvalThreshold = 0.1

/** One objective: its Sloth name, target, events and alert. */
export interface Objective {
  /** `sloth_slo`. */
  readonly slo: string
  /** The percentage of good events over {@link period}. */
  readonly target: number
  readonly description: string
  /** PromQL of the bad events per second over Sloth's `{{.window}}`; 0, not nothing, while none is bad. */
  readonly errorQuery: string
  /** PromQL of all events per second over `{{.window}}`. */
  readonly totalQuery: string
  /** The alert's name, page and ticket alike (their `severity` tells them apart). */
  readonly alert: string
  readonly summary: string
  readonly meaning: string
}

/** Sloth's placeholder for each of its windows in an SLI query. */
const window = "{{.window}}"

/** Bad and all events of a counter or histogram `_count`, by `by`: the bad ones 0 while there are calls but none bad. */
const events = (series: string, all: string, bad: string, by: ReadonlyArray<string>) => {
  const total = sumRate(all === "" ? series : `${series}{${all}}`, by, window)
  return {
    errorQuery: `${sumRate(`${series}{${[all, bad].filter((m) => m !== "").join(", ")}}`, by, window)} or ${total} * 0`,
    totalQuery: total
  }
}

const approvals = sumRate("poh_approval_latency_seconds_count", ["job", "region"], window)

/** The three objectives. */
export const objectives = {
  commit: {
    slo: "tx-commit-availability",
    target: 99.9,
    description: "POST /tx answered without a 5xx: the transaction was approved by PoH and stored.",
    ...events("http_server_request_duration_seconds_count", "method=\"POST\", route=\"/tx\"", "status_code=~\"5..\"", [
      "job"
    ]),
    alert: "DagCommitAvailabilityBurn",
    summary: "{{ $labels.job }} fails POST /tx fast enough to spend the commit error budget",
    meaning: "More POST /tx are answered 5xx than the 99.9% commit availability SLO allows over 30 days, at a rate " +
      "that spends the error budget early: transactions are not committed."
  },
  approval: {
    slo: "poh-approval-latency",
    target: 99.5,
    description: `PoH approvals (PoH_REQUEST to PoH_ACK) within ${approvalThreshold * 1000} ms, by region.`,
    errorQuery: `${approvals} - ${
      sumRate(`poh_approval_latency_seconds_bucket{le="${approvalThreshold}"}`, ["job", "region"], window)
    }`,
    totalQuery: approvals,
    alert: "DagApprovalLatencyBurn",
    summary: `PoH approvals in {{ $labels.region }} take over ${approvalThreshold * 1000} ms too often`,
    meaning: `More PoH approvals in region {{ $labels.region }} take over ${approvalThreshold * 1000} ms than the ` +
      "99.5% approval latency SLO allows over 30 days: the region's PoH nodes are slow, failing over, or gone " +
      "(approvals go to another region)."
  },
  presence: {
    slo: "presence-availability",
    target: 99,
    description: "Presence look-ups of the sending DAG that succeed.",
    ...events("presence_calls_total", "", "outcome=\"failure\"", ["job"]),
    alert: "DagPresenceAvailabilityBurn",
    summary: "Presence look-ups of {{ $labels.job }} fail fast enough to spend their error budget",
    meaning: "More Presence look-ups fail than the 99% Presence availability SLO allows over 30 days: the sending " +
      "DAG routes on its last answer (up to PRESENCE_LAST_ANSWER_TTL), then without knowing who is online."
  }
} as const satisfies Record<string, Objective>

/** The alert names of the SLOs. */
export const sloAlerts: ReadonlyArray<string> = Object.values(objectives).map((objective) => objective.alert)

/** What tells a Sloth alert's severity: the page on a fast burn, the ticket on a slow one. */
export const severityOf = (objective: Objective, of: Severity) => ({
  labels: { severity: of },
  annotations: { title: `${of === "page" ? "Fast" : "Slow"} burn of the ${objective.slo} error budget (${of})` }
})

/** The objectives as Sloth's `prometheus/v1` spec, dashboards/slo/dag.yaml. */
export const slothSpec = {
  version: "prometheus/v1",
  service,
  slos: Object.values(objectives).map((objective: Objective) => ({
    name: objective.slo,
    objective: objective.target,
    description: objective.description,
    sli: { events: { error_query: objective.errorQuery, total_query: objective.totalQuery } },
    alerting: {
      name: objective.alert,
      annotations: {
        summary: objective.summary,
        description: objective.meaning,
        runbook_url: runbookUrl(objective.alert)
      },
      page_alert: severityOf(objective, "page"),
      ticket_alert: severityOf(objective, "ticket")
    }
  }))
}

/**
 * The alert windows of the Google SRE workbook, which are Sloth's for 30 days, with every duration divided by
 * `scale` (the burn factors stay: 14.4 and 6 page, 3 and 1 open a ticket), as Sloth's `AlertWindows` catalog entry.
 */
export const alertWindows = (scale: number) => {
  const at = (errorBudgetPercent: number, shortWindow: string, longWindow: string) => ({
    errorBudgetPercent,
    shortWindow: scaled(shortWindow, scale),
    longWindow: scaled(longWindow, scale)
  })
  return {
    apiVersion: "sloth.slok.dev/v1",
    kind: "AlertWindows",
    spec: {
      sloPeriod: scaled(period, scale),
      page: { quick: at(2, "5m", "1h"), slow: at(5, "30m", "6h") },
      ticket: { quick: at(10, "2h", "1d"), slow: at(10, "6h", "3d") }
    }
  }
}
