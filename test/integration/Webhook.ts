/**
 * A webhook receiver for Alertmanager on a free loopback port: every
 * notification POSTed to it is kept with the path it came to (one per
 * receiver), and a test waits for those it expects.
 */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

/** One alert of a notification, as Alertmanager's webhook (version 4) sends it. */
export interface NotifiedAlert {
  readonly status: "firing" | "resolved"
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
}

/** One notification: the path it was posted to, when it arrived, and its body. */
export interface Notification {
  readonly path: string
  readonly at: number
  readonly receiver: string
  readonly status: "firing" | "resolved"
  readonly groupLabels: Readonly<Record<string, string>>
  readonly alerts: ReadonlyArray<NotifiedAlert>
}

/** A running receiver. */
export interface Webhook {
  /** The URL of `path` on it, e.g. `url("/page")`. */
  readonly url: (path: string) => string
  /** Every notification so far, in arrival order. */
  readonly received: ReadonlyArray<Notification>
  /** The first notification that satisfies `match`, waiting up to `timeoutMs`; fails listing what arrived. */
  readonly next: (what: string, match: (notification: Notification) => boolean, timeoutMs: number) => Promise<Notification>
  readonly close: () => Promise<void>
}

/** The alerts of `notification` named `alertname`. */
export const named = (notification: Notification, alertname: string) =>
  notification.alerts.filter((alert) => alert.labels["alertname"] === alertname)

/** A line per notification, for failures and the log. */
export const describe = (notifications: ReadonlyArray<Notification>, since = 0) =>
  notifications.map((n) =>
    `+${((n.at - since) / 1000).toFixed(1)} s ${n.path} ${n.status}: ${
      n.alerts.map((alert) =>
        `${alert.status} ${alert.labels["alertname"]}{${
          ["severity", "job", "region", "instance"].flatMap((label) =>
            alert.labels[label] === undefined ? [] : [`${label}=${alert.labels[label]}`]
          ).join(",")
        }}`
      ).join("; ")
    }`
  ).join("\n")

/** Starts a receiver on 127.0.0.1. */
export const startWebhook = async (): Promise<Webhook> => {
  const received: Array<Notification> = []
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Omit<Notification, "path" | "at">
      received.push({ ...body, path: request.url ?? "", at: Date.now() })
      response.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    received,
    next: async (what, match, timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const found = received.find(match)
        if (found !== undefined) return found
        if (Date.now() > deadline) {
          throw new Error(`no notification ${what} within ${timeoutMs} ms; received:\n${describe(received)}`)
        }
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    },
    close: () => new Promise((resolve) => server.close(() => resolve()))
  }
}

/** Alertmanager timing for tests: a group's first notification after a second, the next a second later. */
export const fastTiming = { groupWait: "1s", groupInterval: "1s", repeatInterval: "1h" } as const
