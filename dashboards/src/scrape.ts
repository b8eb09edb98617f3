/**
 * The Prometheus configuration for the example network, written out as
 * dashboards/prometheus/prometheus.yml by `npm run dashboards`; the
 * integration tests build their own from {@link prometheusConfig} with the
 * ports the nodes bound, and the launcher one that discovers the nodes in a
 * file_sd file it keeps current ({@link fileSdGroups}), scrapes the collector
 * and writes the recorded series to a long-term store.
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

/** Where `npm start`'s collector serves its own metrics and its span metrics, when the ports are free. */
export const collectors = ["127.0.0.1:8888", "127.0.0.1:8889"] as const

/** A job name of the example network. */
export type Job = keyof typeof jobs

/** A process of the network as a discovered target: where its `/metrics` is, and its labels. */
export interface Target {
  /** `host:port` of its `/metrics`. */
  readonly address: string
  /** `poh-1`, …; `sending-dag-1`, … for the sending DAG's workers; `presence`. */
  readonly node: string
  /** The PoH node's region; `global` for the processes that serve every region. */
  readonly region: string
  /** What the process is: its job. */
  readonly role: Job
}

/** The content of a Prometheus file_sd file listing `targets`: one group per target, its labels `node`, `region`, `role`. */
export const fileSdGroups = (targets: ReadonlyArray<Target>) =>
  targets.map(({ address, ...labels }) => ({ targets: [address], labels }))

/**
 * The scrape job of the targets listed in file_sd `files` (re-read by Prometheus as they change): `role` is the job
 * name. `honor_labels`: a sample's own `node` or `region` (`poh_requests_total{node}` is the PoH node asked, not the
 * sending DAG's worker) is kept, the target's label filling in where the sample has none.
 */
const discovered = (files: ReadonlyArray<string>) => ({
  job_name: "dag-network",
  honor_labels: true,
  file_sd_configs: [{ files: [...files] }],
  relabel_configs: [{ source_labels: ["role"], target_label: "job" }]
})

/**
 * Remote write of the recording rules' series (every name with a colon, `dag:…`, `slo:…`) and nothing else: the
 * aggregates a long-term store keeps for years, while this Prometheus keeps the raw series for its retention.
 */
const remoteWriteOf = (url: string) => [{
  url,
  write_relabel_configs: [{ source_labels: ["__name__"], regex: ".+:.+", action: "keep" }]
}]

/** Options of {@link prometheusConfig}. */
export interface Options {
  /** `host:port` of each job's `/metrics`, one per process. */
  readonly targets?: Readonly<Record<Job, ReadonlyArray<string>>>
  /** file_sd files listing the network's processes ({@link fileSdGroups}), scraped instead of `targets`. */
  readonly fileSd?: ReadonlyArray<string>
  /**
   * `host:port` of the OpenTelemetry Collectors' `/metrics` (their own, and span metrics): job `otelcol`; by default
   * {@link collectors} when neither `targets` nor `fileSd` is given, else none.
   */
  readonly collectors?: ReadonlyArray<string>
  /** The remote-write URL of a long-term store (`http://…/api/v1/write`), sent the recorded series. */
  readonly remoteWrite?: string
  /** Rule files, relative to the configuration file or absolute. */
  readonly ruleFiles?: ReadonlyArray<string>
  /** Scrape and rule evaluation interval; also the scrape timeout. */
  readonly interval?: string
}

/**
 * What examples/compose/docker-compose.yml's Prometheus scrapes, by service name: the nodes, every collector's own
 * metrics and the gateway's span metrics; and where it writes the recorded series (the long-term store).
 */
export const compose = {
  targets: { "sending-dag": ["sending-dag:8000"], "poh-node": ["poh-node:8001"], presence: ["presence:8010"] },
  collectors: [
    "otelcol-agent:8888",
    "otelcol-gateway:8888",
    "otelcol-gateway:8889",
    "otelcol-sampler-1:8888",
    "otelcol-sampler-2:8888"
  ],
  remoteWrite: "http://prometheus-longterm:9090/api/v1/write"
} as const satisfies Options

/** A prometheus.yml scraping the example network and loading the rules. */
export const prometheusConfig = (options: Options = {}) => {
  const interval = options.interval ?? "15s"
  const targets: Readonly<Record<string, ReadonlyArray<string>>> = options.targets ?? jobs
  const defaults = options.targets === undefined && options.fileSd === undefined ? collectors : []
  const statics = { ...(options.fileSd === undefined ? targets : {}), otelcol: options.collectors ?? defaults }
  return {
    global: { scrape_interval: interval, scrape_timeout: interval, evaluation_interval: interval },
    rule_files: [...options.ruleFiles ?? ["rules.yml"]],
    scrape_configs: [
      ...options.fileSd === undefined ? [] : [discovered(options.fileSd)],
      ...Object.entries(statics).filter(([, addresses]) => addresses.length > 0).map(([job, addresses]) => ({
        job_name: job,
        static_configs: [{ targets: [...addresses] }]
      }))
    ],
    ...options.remoteWrite === undefined ? {} : { remote_write: remoteWriteOf(options.remoteWrite) }
  }
}
