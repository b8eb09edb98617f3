/**
 * The SLO row, first on the dashboard: how much of each objective's 30-day
 * error budget is left, how fast it burns now, and the share of bad events,
 * read from the series Sloth records (dashboards/prometheus/rules-slo.yml).
 * Each series is one SLO of one job (and region, for approval latency).
 */
import type { PanelBuilder as TimeseriesPanelBuilder } from "@grafana/grafana-foundation-sdk/timeseries"
import { timeseries } from "./panels.ts"
import { service } from "./slos.ts"

const ofService = `sloth_service="${service}"`

const legend = "{{sloth_slo}} {{job}} {{region}}"

/** The page threshold of the fastest burn: 2% of the 30-day budget in an hour. */
export const fastBurn = 14.4

/** The SLO panels. */
export const sloPanels = (): Array<TimeseriesPanelBuilder> => [
  timeseries({
    title: "SLO error budget remaining (30 days)",
    description: "Share of each SLO's error budget left over the last 30 days: 100% when nothing failed, 0 when the " +
      "budget is spent, below 0 when the objective is missed.",
    unit: "percentunit",
    min: null,
    max: 1,
    red: { value: 0, below: true },
    queries: [{ expr: `slo:period_error_budget_remaining:ratio{${ofService}}`, legend }]
  }),
  timeseries({
    title: "SLO burn rate (5 minutes)",
    description: "How many times faster than the budget allows each SLO fails now: 1 spends the budget in exactly " +
      `30 days; above ${fastBurn} (the line) for 5 minutes and an hour, it pages.`,
    unit: "short",
    red: { value: fastBurn },
    queries: [{ expr: `slo:current_burn_rate:ratio{${ofService}}`, legend }]
  }),
  timeseries({
    title: "SLO bad events (5 minutes)",
    description: "Share of bad events of each SLO over 5 minutes: POST /tx answered 5xx, approvals over the latency " +
      "threshold, failed Presence look-ups.",
    unit: "percentunit",
    max: 1,
    queries: [{ expr: `slo:sli_error:ratio_rate5m{${ofService}}`, legend }]
  })
]
