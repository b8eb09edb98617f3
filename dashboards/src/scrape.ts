/**
 * The Prometheus configuration for the example network, written out as
 * dashboards/prometheus/prometheus.yml by `npm run dashboards`; the
 * integration test and the launcher build their own from
 * {@link prometheusConfig} with the ports the nodes bound.
 */

/**
 * The scrape jobs and where each scrapes by default: the examples' `/metrics` ports (SPEC §6). The sending DAG's
 * first worker is on :8000; its other workers (`SENDING_DAG_WORKERS`) are on free ports it prints, each a target of
 * the same job (the launcher's Prometheus scrapes them all).
 */
export const jobs = {
  "sending-dag": ["127.0.0.1:8000"],
  "poh-node": ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"],
  "presence": ["127.0.0.1:8010"]
} as const satisfies Record<string, ReadonlyArray<string>>

/** A job name of the example network. */
export type Job = keyof typeof jobs

/** Options of {@link prometheusConfig}. */
export interface Options {
  /** `host:port` of each job's `/metrics`, one per process. */
  readonly targets?: Readonly<Record<Job, ReadonlyArray<string>>>
  /** Rule files, relative to the configuration file or absolute. */
  readonly ruleFiles?: ReadonlyArray<string>
  /** Scrape and rule evaluation interval; also the scrape timeout. */
  readonly interval?: string
}

/** A prometheus.yml scraping the example network and loading the rules. */
export const prometheusConfig = (options: Options = {}) => {
  const interval = options.interval ?? "15s"
  const targets: Readonly<Record<string, ReadonlyArray<string>>> = options.targets ?? jobs
  return {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: [...options.ruleFiles ?? ["rules.yml"]],
    scrape_configs: Object.entries(targets).map(([job, addresses]) => ({
      job_name: job,
      static_configs: [{ targets: [...addresses] }]
    }))
  }
}
