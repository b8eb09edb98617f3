/**
 * The Prometheus configuration for the example network, written out as
 * dashboards/prometheus/prometheus.yml by `npm run dashboards`; the
 * integration test builds its own from {@link prometheusConfig} with other ports.
 */

/** The scrape jobs and where each scrapes by default: the examples' `/metrics` ports (SPEC §6). */
export const jobs = {
  "sending-dag": "127.0.0.1:8000",
  "poh-node": "127.0.0.1:8001"
} as const

/** A job name of the example network. */
export type Job = keyof typeof jobs

/** Options of {@link prometheusConfig}. */
export interface Options {
  /** `host:port` of each job's `/metrics`. */
  readonly targets?: Record<Job, string>
  /** Rule files, relative to the configuration file or absolute. */
  readonly ruleFiles?: ReadonlyArray<string>
  /** Scrape and rule evaluation interval; also the scrape timeout. */
  readonly interval?: string
}

/** A prometheus.yml scraping the example network and loading the rules. */
export const prometheusConfig = (options: Options = {}) => {
  const interval = options.interval ?? "15s"
  const targets = options.targets ?? jobs
  return {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: [...options.ruleFiles ?? ["rules.yml"]],
    scrape_configs: Object.entries(targets).map(([job, target]) => ({
      job_name: job,
      static_configs: [{ targets: [target] }]
    }))
  }
}
