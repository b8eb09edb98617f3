/**
 * The Alertmanager configuration of the DAG network's alerts, written out as
 * dashboards/alertmanager/alertmanager.yml by `npm run dashboards` and loaded
 * by `npm start`'s Alertmanager: routed by severity (`page` now, `ticket` for
 * working hours), grouped per alert, job and region, a target that is down
 * silencing the SLO alerts of its job, and an SLO's page its own ticket.
 */
import { sloAlerts } from "./slos.ts"

/** How long Alertmanager waits before the first notification of a group, between two, and before repeating one. */
export interface Timing {
  readonly groupWait: string
  readonly groupInterval: string
  readonly repeatInterval: string
}

/** Options of {@link alertmanagerConfig}. */
export interface Options {
  /** Webhook URLs of each receiver; none by default (the shipped receivers have no integration: add yours). */
  readonly webhooks?: { readonly page: string; readonly ticket: string }
  /** The page route's timing; {@link pageTiming} by default (tickets wait and repeat longer). */
  readonly timing?: Timing
}

/** A page's timing: the first notification 30 s after the first alert of its group, repeated every 4 hours. */
export const pageTiming: Timing = { groupWait: "30s", groupInterval: "5m", repeatInterval: "4h" }

/** A ticket's timing: gathered for 5 minutes, repeated daily while it lasts. */
const ticketTiming: Timing = { groupWait: "5m", groupInterval: "30m", repeatInterval: "24h" }

/** Alerts of one alert name, job and region go out together (the down targets of one job, say). */
export const groupBy = ["alertname", "job", "region"] as const

/** Matches the alerts Sloth generates for the SLOs (dashboards/src/slos.ts). */
const anySlo = `alertname=~"${sloAlerts.join("|")}"`

const timed = (timing: Timing) => ({
  group_wait: timing.groupWait,
  group_interval: timing.groupInterval,
  repeat_interval: timing.repeatInterval
})

const receiver = (name: "page" | "ticket", url: string | undefined) =>
  url === undefined ? { name } : { name, webhook_configs: [{ url, send_resolved: true }] }

/** The alertmanager.yml, as an object. */
export const alertmanagerConfig = (options: Options = {}) => {
  const timing = options.timing ?? pageTiming
  return {
    route: {
      receiver: "ticket",
      group_by: [...groupBy],
      ...timed(ticketTiming),
      routes: [
        { matchers: ["severity=\"page\""], receiver: "page", ...timed(timing) },
        { matchers: ["severity=\"ticket\""], receiver: "ticket", ...timed(options.timing ?? ticketTiming) }
      ]
    },
    inhibit_rules: [
      // A target that is down says why its job's SLIs look bad or are missing: its page is the one to act on.
      { source_matchers: ["alertname=\"DagTargetDown\""], target_matchers: [anySlo], equal: ["job"] },
      // A fast burn pages; the slow burn of the same SLO, job and region would only repeat it as a ticket.
      {
        source_matchers: ["severity=\"page\"", anySlo],
        target_matchers: ["severity=\"ticket\"", anySlo],
        equal: [...groupBy]
      }
    ],
    receivers: [receiver("page", options.webhooks?.page), receiver("ticket", options.webhooks?.ticket)]
  }
}

/** A prometheus.yml (as an object) that also sends its alerts to the Alertmanagers at `targets` (`host:port`). */
export const withAlertmanagers = <C extends object>(config: C, targets: ReadonlyArray<string>) => ({
  ...config,
  alerting: { alertmanagers: [{ static_configs: [{ targets: [...targets] }] }] }
})
