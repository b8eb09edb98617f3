/**
 * A real Prometheus scraping the program's `/metrics` (MetricsServer over
 * Metrics.layer): after a known set of commits, PromQL over Prometheus's HTTP
 * API gives exactly the counts of SPEC §4, the scrape is healthy, promtool
 * accepts the text format and the latency exemplars reach exemplar storage.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { DagMetrics, Poh, Presence, Storage, Transaction } from "../../src/dag/index.ts"
import { Metrics, MetricsServer } from "../../src/index.ts"
import { promtool } from "../../servers/Servers.ts"
import { eventually, Exemplars, getJson, prometheusScraping, query } from "./Prometheus.ts"

const nodes = [
  { id: "poh-eu", region: "eu-central", address: "127.0.0.1:50051" },
  { id: "poh-us", region: "us-east", address: "127.0.0.1:50052" }
]

const Program = Layer.mergeAll(
  Poh.layerInProcess(),
  Storage.layerMemory,
  Presence.layerStatic({ nodes, failureRatio: 0 })
).pipe(
  Layer.provideMerge(DagMetrics.layer()),
  Layer.provideMerge(MetricsServer.layer({ bind: { host: "127.0.0.1", port: 0 } })),
  Layer.provideMerge(Metrics.layer)
)

/** Presence that never answers: the commit goes on without it (SPEC §8) and the failure is counted. */
const PresenceDown = Presence.layerStatic({ nodes, failureRatio: 1 })

/** Commits one transaction in `region` under a root span, as the examples' `POST /tx`; returns the trace id. */
const commitIn = (region: string) =>
  Effect.gen(function*() {
    const span = yield* Effect.orDie(Effect.currentSpan)
    yield* Transaction.commit(
      Schema.decodeUnknownSync(Transaction.Transaction)({ from: "alice", to: "bob", amount: 1, region })
    )
    return span.traceId
  }).pipe(Effect.withSpan("POST /tx", { kind: "server" }))

describe("Prometheus scraping /metrics", () => {
  it.live("gets the exact counts of 7 commits in two regions, one with presence down, and their exemplars", () =>
    Effect.gen(function*() {
      const started = Date.now() / 1000
      const traceIds = yield* Effect.all([
        ...Array.from({ length: 4 }, () => commitIn("eu-central")),
        commitIn("us-east"),
        commitIn("us-east"),
        commitIn("us-east").pipe(Effect.provide(PresenceDown))
      ])
      const { url } = yield* MetricsServer.MetricsServer

      const text = yield* Effect.promise(() => fetch(url).then((response) => response.text()))
      assert.include(text, "tx_committed_total{region=\"us-east\"} 3\n")
      assert.deepStrictEqual(yield* Effect.promise(() => promtool(["check", "metrics"], text)), {
        code: 0,
        stdout: "",
        stderr: ""
      })

      const target = new URL(url).host
      const prometheus = yield* prometheusScraping([target])
      // A scrape's samples are committed with its `up`, so once `up` is there the values are final.
      const up = yield* eventually(query(prometheus, "up"), (vector) => Object.keys(vector).length > 0)
      assert.deepStrictEqual(up, { [`instance="${target}",job="test"`]: 1 })
      assert.deepStrictEqual(yield* query(prometheus, "sum(tx_committed_total)"), { "": 7 })
      const perRegion = { "region=\"eu-central\"": 4, "region=\"us-east\"": 3 }
      for (const family of ["tx_committed_total", "poh_ack_total", "poh_approval_latency_seconds_count"]) {
        assert.deepStrictEqual(yield* query(prometheus, `sum by (region) (${family})`), perRegion, family)
      }
      assert.deepStrictEqual(yield* query(prometheus, "sum by (region, status) (poh_requests_total)"), {
        "region=\"eu-central\",status=\"ok\"": 4,
        "region=\"us-east\",status=\"ok\"": 3
      })
      assert.deepStrictEqual(
        yield* query(prometheus, "sum by (operation, collection) (storage_latency_seconds_count)"),
        { "collection=\"transactions\",operation=\"insert\"": 7 }
      )
      assert.deepStrictEqual(yield* query(prometheus, "sum by (region, outcome) (presence_calls_total)"), {
        "outcome=\"success\",region=\"eu-central\"": 4,
        "outcome=\"success\",region=\"us-east\"": 2,
        "outcome=\"failure\",region=\"us-east\"": 1
      })

      // Exemplars exist only in OpenMetrics, so finding them proves Prometheus negotiated and parsed it.
      const exemplars = yield* eventually(
        getJson(Exemplars, `${prometheus.url}/api/v1/query_exemplars?query=poh_approval_latency_seconds_bucket`),
        ({ data }) => new Set(data.map((series) => series.seriesLabels["region"])).size === 2
      )
      const found = exemplars.data.flatMap((series) => series.exemplars)
      assert.isNotEmpty(found)
      for (const { labels, timestamp } of found) {
        assert.deepStrictEqual(Object.keys(labels).toSorted(), ["span_id", "trace_id"])
        assert.match(labels["trace_id"]!, /^[0-9a-f]{32}$/)
        assert.match(labels["span_id"]!, /^[0-9a-f]{16}$/)
        assert.include(traceIds, labels["trace_id"])
        assert.isTrue(timestamp >= started && timestamp <= Date.now() / 1000, `exemplar timestamp ${timestamp} s`)
      }
    }).pipe(Effect.scoped, Effect.provide(Program)), 40_000)
})
