/**
 * What the benchmarks share: medians, a span-counting exporter, counter totals
 * read back from a registry, the machine line printed above each table, and
 * autocannon run as a child process.
 */
import { execFileSync, spawn } from "node:child_process"
import { once } from "node:events"
import { readFileSync } from "node:fs"
import { availableParallelism } from "node:os"
import { fileURLToPath } from "node:url"
import { BatchSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace"
import type { Metric } from "prom-client"

/** The median of `values` (the upper one of an even count). */
export const median = (values: ReadonlyArray<number>): number => {
  const sorted = values.toSorted((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

/** One line naming the machine: cores, CPU model, Node version, date. */
export const machine = (): string => {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown CPU"
  let nproc = String(availableParallelism())
  try {
    nproc = execFileSync("nproc", { encoding: "utf8" }).trim()
  } catch {
    // `nproc` is coreutils; availableParallelism() says the same on Linux
  }
  return `nproc ${nproc}, ${cpu}, node ${process.version}, ${new Date().toISOString()}`
}

/** What a {@link countingProcessor} saw: spans by name, and how many of them had a parent, of which kind. */
export interface SpanTally {
  total: number
  readonly byName: Map<string, { count: number; withParent: number; kind: number; attributes: number }>
}

export const makeTally = (): SpanTally => ({ total: 0, byName: new Map() })

/** Spans by name as `name×count (kind k, n with parent, a attributes)`, for the verification lines. */
export const describeTally = (tally: SpanTally): string =>
  [...tally.byName].map(([name, entry]) =>
    `${name}×${entry.count} (kind ${entry.kind}, ${entry.withParent} with parent, ${entry.attributes} attributes)`
  ).join(", ")

const tallySpan = (tally: SpanTally, span: ReadableSpan) => {
  tally.total += 1
  let entry = tally.byName.get(span.name)
  if (entry === undefined) {
    entry = { count: 0, withParent: 0, kind: span.kind, attributes: Object.keys(span.attributes).length }
    tally.byName.set(span.name, entry)
  }
  entry.count += 1
  if (span.parentSpanContext !== undefined) entry.withParent += 1
}

/** A batch processor as the library configures it, over an exporter that tallies and discards each batch. */
export const countingProcessor = (tally: SpanTally): BatchSpanProcessor =>
  new BatchSpanProcessor({
    exporter: {
      export: (spans, done) => {
        for (const span of spans) tallySpan(tally, span)
        done({ code: 0 })
      },
      shutdown: () => Promise.resolve()
    },
    maxQueueSize: 65_536,
    maxExportBatchSize: 512,
    scheduledDelayMillis: 200
  })

/** The total of a counter, or the `_count` of a histogram, over its label sets that carry all of `labels`. */
export const total = async (
  registry: { getSingleMetric(name: string): Metric | undefined },
  name: string,
  labels: Readonly<Record<string, string>> = {}
): Promise<number> => {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name}`)
  const { values } = await metric.get()
  return (values as ReadonlyArray<
    { readonly metricName?: string; readonly value: number; readonly labels: Readonly<Record<string, unknown>> }
  >)
    .filter((value) => value.metricName === undefined || value.metricName.endsWith("_count"))
    .filter((value) => Object.entries(labels).every(([label, wanted]) => value.labels[label] === wanted))
    .reduce((sum, value) => sum + value.value, 0)
}

/**
 * {@link total}, or 0 when no instrument is registered as `name`: instrumentations register theirs when they are
 * used, so a set-up without, say, OTLP export has no `otlp_exported_spans_total` and has exported nothing.
 */
export const recorded = async (
  registry: { getSingleMetric(name: string): Metric | undefined },
  name: string,
  labels: Readonly<Record<string, string>> = {}
): Promise<number> => registry.getSingleMetric(name) === undefined ? 0 : total(registry, name, labels)

/** `a / b` to two decimals with a `×`. */
export const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`

/** What autocannon's JSON report (`-j`) says that the benchmarks read; latencies in milliseconds. */
export interface Load {
  readonly requests: { readonly average: number; readonly total: number }
  readonly latency: { readonly p50: number; readonly p99: number; readonly max: number }
  readonly throughput: { readonly total: number }
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  /** 2xx responses: what the server must have recorded. */
  readonly "2xx": number
}

const autocannonBin = fileURLToPath(new URL("../node_modules/autocannon/autocannon.js", import.meta.url))

/** Runs autocannon pinned to core 1 with `args` (its options, then the URL) and returns its report. */
export const autocannon = async (args: ReadonlyArray<string>): Promise<Load> => {
  const child = spawn("taskset", ["-c", "1", process.execPath, autocannonBin, "-j", ...args], {
    stdio: ["ignore", "pipe", "inherit"]
  })
  let out = ""
  child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()))
  const [code] = await once(child, "exit")
  if (code !== 0) throw new Error(`autocannon exited ${code}`)
  return JSON.parse(out) as Load
}
