/**
 * `npm start`'s telemetry pipeline (issue 16, items 1, 4, 5, 6), on the
 * launcher as a user runs it: the nodes' spans and logs go through an
 * OpenTelemetry Collector to Jaeger and a file; the collector's span metrics,
 * in Prometheus, count exactly what the library's own histograms count; the
 * launcher lists every node and worker in a file_sd file, so Prometheus scrapes
 * a PoH node added at run time (SIGUSR2) within two scrape intervals and sees
 * it go down (`up` 0, the no-online-node alert pending for its region); and the
 * recorded series arrive by remote write in a second Prometheus.
 */
import { readFile } from "node:fs/promises"
import { Effect } from "effect"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { eventually } from "../support/Eventually.ts"
import { fetchTrace, serviceOf } from "./Jaeger.ts"
import { type Launcher, loopbackBinds, networkUp, printed, startLauncher, surroundings } from "./Launcher.ts"
import { getJson, Vector } from "./Prometheus.ts"

/** The launcher's scrape and rule interval. */
const intervalMs = 5_000
const transactions = 24

/** The instant vector of `promql` at the Prometheus `url`. */
const instant = (url: string, promql: string) =>
  Effect.runPromise(getJson(Vector, `${url}/api/v1/query?query=${encodeURIComponent(promql)}`)).then(
    ({ data }) => data.result
  )

/** The value of a one-element vector, `undefined` when it is empty. */
const scalar = async (url: string, promql: string) => {
  const [first] = await instant(url, promql)
  return first === undefined ? undefined : Number(first.value[1])
}

/** PromQL: the span metrics' count of `span` spans of `kind` of `service`. */
const calls = (service: string, span: string, kind: string) =>
  `sum(traces_span_metrics_calls_total{service_name="${service}",span_name="${span}",span_kind="SPAN_KIND_${kind}"})`

/** The metric names the Prometheus at `url` holds now. */
const names = async (url: string) =>
  (await instant(url, 'group by (__name__) ({__name__=~".+"})')).map(({ metric }) => metric["__name__"]!)

let around: Awaited<ReturnType<typeof surroundings>>
let launcher: Launcher

beforeAll(async () => {
  around = await surroundings()
})

afterAll(async () => {
  if (launcher !== undefined && launcher.child.exitCode === null) {
    launcher.child.kill("SIGTERM")
    await launcher.exited
  }
  around.close()
})

describe("npm start's telemetry pipeline", () => {
  it("collector in the path, span metrics = the library's counts, file_sd discovery of a node added, remote write", async () => {
    const data = around.tempDir()
    launcher = startLauncher("node", {
      ...loopbackBinds,
      DAG_NETWORK_DATA: data,
      POH_REGIONS: "eu-central,us-east,eu-central,ap-south",
      DAG_NODES: "poh-1,poh-2,poh-3,poh-4",
      OTELCOL_SPAN_METRICS_FLUSH_INTERVAL: "1s",
      // poh-4, stopped, is started again after three scrape and rule intervals: ap-south is seen without a node by
      // at least two rule evaluations (with 5 s, the one 5 s window could fall between two under load).
      POH_RESTART_DELAY: "15s"
    })
    const base = await networkUp(launcher)
    const prometheus = await printed(launcher, /Prometheus\s+(http:\/\/127\.0\.0\.1:\d+)/)
    const longTerm = await printed(launcher, /long-term\s+(http:\/\/127\.0\.0\.1:\d+)/)
    const jaeger = await printed(launcher, /query API (http:\/\/127\.0\.0\.1:\d+)/)
    const logs = await printed(launcher, /^\s+logs (\S+logs\.jsonl)/)

    // Item 1: each transaction's spans reach Jaeger through the collector, its log line the collector's file.
    const answers = await Promise.all(Array.from({ length: transactions }, async (_, i) => {
      await new Promise((resolve) => setTimeout(resolve, i * 40))
      const response = await fetch(`${base}/tx`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ from: `pipeline-${i}`, to: "bob", amount: 1 + i, region: i % 2 === 0 ? "eu-central" : "us-east" })
      })
      const body = (await response.json()) as { readonly id: string }
      return { status: response.status, id: body.id, traceId: /^00-([0-9a-f]{32})-/.exec(response.headers.get("traceresponse") ?? "")![1]! }
    }))
    assert.deepStrictEqual(answers.map((answer) => answer.status), answers.map(() => 201))
    const first = answers[0]!
    // npm start keeps every ordinary trace (TAIL_SAMPLING_PERCENTAGE unset): each transaction's is there to read.
    for (const answer of answers) {
      const trace = await Effect.runPromise(fetchTrace(answer.traceId, 10, jaeger))
      assert.sameMembers([...new Set(trace.spans.map((span) => serviceOf(trace, span)))], ["sending-dag", "presence", "poh-node"])
    }
    const line = await eventually("the transaction's log line in the collector's file", async () => {
      const text = await readFile(logs, "utf8").catch(() => "")
      return text.split("\n").find((record) => record.includes(`transaction ${first.id} committed`))
    }, 20_000)
    assert.include(line, first.traceId, "the log record carries its trace id")

    // Item 4: the span metrics (before sampling) count what the library's histograms count, in Prometheus.
    const pairs = {
      "POST /tx": [calls("sending-dag", "POST /tx", "SERVER"), 'sum(http_server_request_duration_seconds_count{job="sending-dag",route="/tx"})'],
      "PoH client": [calls("sending-dag", "poh.PohService/Request", "CLIENT"), 'sum(grpc_client_latency_seconds_count{job="sending-dag",method="Request"})'],
      "PoH server": [calls("poh-node", "poh.PohService/Request", "SERVER"), 'sum(grpc_method_latency_seconds_count{job="poh-node",method="Request"})']
    } as const
    const counted = await eventually("every count in Prometheus", async () => {
      const values = await Promise.all(Object.values(pairs).map((queries) => Promise.all(queries.map((q) => scalar(prometheus, q)))))
      return values.flat().every((value) => value === transactions) ? values : undefined
    }, 30_000)
    assert.deepStrictEqual(counted, Object.values(pairs).map(() => [transactions, transactions]))

    // Item 5: every node and worker in the file_sd file, labelled, and scraped as such.
    const listed = JSON.parse(await readFile(`${data}/prometheus/targets.json`, "utf8")) as ReadonlyArray<{
      readonly targets: ReadonlyArray<string>
      readonly labels: Readonly<Record<string, string>>
    }>
    assert.sameDeepMembers(listed.map((group) => group.labels), [
      { node: "presence", region: "global", role: "presence" },
      { node: "poh-1", region: "eu-central", role: "poh-node" },
      { node: "poh-2", region: "us-east", role: "poh-node" },
      { node: "poh-3", region: "eu-central", role: "poh-node" },
      { node: "sending-dag-1", region: "global", role: "sending-dag" },
      { node: "sending-dag-2", region: "global", role: "sending-dag" }
    ])
    const up = await eventually("every listed target up", async () => {
      const result = await instant(prometheus, 'up{job=~"presence|poh-node|sending-dag"} == 1')
      return result.length === listed.length ? result : undefined
    }, 20_000)
    assert.sameMembers(up.map(({ metric }) => `${metric["job"]} ${metric["node"]} ${metric["region"]}`), [
      "presence presence global", "poh-node poh-1 eu-central", "poh-node poh-2 us-east", "poh-node poh-3 eu-central",
      "sending-dag sending-dag-1 global", "sending-dag sending-dag-2 global"
    ])

    // A fourth PoH node, alone in ap-south: scraped within two scrape intervals of being ready.
    launcher.child.kill("SIGUSR2")
    const pid = Number(await printed(launcher, /PoH node poh-4 \(ap-south\) added: .*, pid (\d+)/))
    const ready = Date.now()
    const firstScrape = await eventually("poh-4 scraped", () => scalar(prometheus, 'timestamp(up{node="poh-4"} == 1)'), 20_000)
    const after = firstScrape * 1000 - ready
    console.log(`poh-4 first scraped ${after.toFixed(0)} ms after the launcher said it was ready (interval ${intervalMs} ms)`)
    assert.isAtMost(after, 2 * intervalMs, "scraped within two scrape intervals")
    await eventually("ap-south online", async () =>
      (await scalar(prometheus, 'presence_online_nodes{region="ap-south"}')) === 1 ? true : undefined, 20_000)

    // Stopped: up goes 0 before the launcher starts it again; ap-south has no node, so the alert on that is pending.
    const alert = (await (await fetch(`${prometheus}/api/v1/rules?type=alert`)).json() as {
      readonly data: { readonly groups: ReadonlyArray<{ readonly rules: ReadonlyArray<{ readonly name: string; readonly query: string }> }> }
    }).data.groups.flatMap((group) => group.rules).find((rule) => /presence_online_nodes/.test(rule.query) && /== 0/.test(rule.query))
    assert.isDefined(alert, "an alert on a region without an online PoH node")
    process.kill(pid, "SIGTERM")
    await eventually("poh-4's up at 0", async () =>
      (await scalar(prometheus, 'min_over_time(up{node="poh-4"}[1m])')) === 0 ? true : undefined, 20_000)
    const pending = await eventually(`${alert!.name} for ap-south`, async () => {
      const result = await instant(prometheus, `max_over_time(ALERTS{alertname="${alert!.name}"}[2m])`)
      return result.some(({ metric }) => metric["region"] === "ap-south") ? result : undefined
    }, 20_000)
    assert.sameMembers(pending.map(({ metric }) => metric["region"]), ["ap-south"], "only the region left without a node")
    const again = await eventually("poh-4 started again, at its new address, scraped", async () => {
      const result = await instant(prometheus, 'up{node="poh-4"} == 1')
      return result.length === 1 ? result[0]!.metric["instance"] : undefined
    }, 30_000)
    assert.isDefined(again)

    // Item 6: the recorded series in the long-term Prometheus, and nothing else.
    const recorded = (await names(prometheus)).filter((name) => name.includes(":"))
    assert.isAbove(recorded.length, 5, "the rules recorded series")
    const stored = await eventually("the recorded series by remote write", async () => {
      const found = await names(longTerm)
      return recorded.every((name) => found.includes(name)) ? found : undefined
    }, 30_000)
    assert.deepStrictEqual(stored.filter((name) => !name.includes(":")), [], "raw series stay in the local Prometheus")
  }, 180_000)
})
