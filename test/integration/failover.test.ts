/**
 * Node loss under load (issue 14, item 3): Presence (TTL 3 s, heartbeats every 500 ms), three PoH nodes (poh-1 and
 * poh-3 in eu-central, poh-2 alone in us-east) and the sending DAG with two workers over MongoDB, under ~20 tx/s in
 * eu-central and us-east:
 *
 * - poh-1 SIGKILLed: Presence drops it within its TTL; requests that were in flight to it or still sent to it fail
 *   over to poh-3 and are answered 201; started again, it is back in Presence within one heartbeat and serves again;
 * - poh-2, us-east's only node, SIGKILLed: us-east's requests go to eu-central, counted `cross_region`;
 * - Presence stopped: every look-up fails and is counted, the sending DAG answers from the last answer (201); Presence
 *   started again: look-ups succeed again once the nodes have announced themselves;
 * - every acknowledged transaction is in MongoDB.
 */
import { randomBytes } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { inject } from "vitest"
import { byName, fetchTrace, tag } from "./Jaeger.ts"
import { inPhase, steadyLoad, summary } from "./Load.ts"
import { dropDatabaseAtEnd, logged, type Node, sample, scrape, spawnNode, storedTransactions, whileRunning, withDatabase, withOutputs } from "./Network.ts"
import { startPohNode, startPresence, startSendingDag } from "./Nodes.ts"

const ttlMs = 3_000
const heartbeatMs = 500
const database = `dag_failover_${randomBytes(4).toString("hex")}`

/** Milliseconds from now until `check` holds, polling every 100 ms for at most `timeoutMs`. */
const until = (what: string, check: Effect.Effect<boolean, unknown>, timeoutMs: number) =>
  Effect.gen(function*() {
    const started = Date.now()
    while (!(yield* check)) {
      if (Date.now() - started > timeoutMs) return yield* Effect.die(new Error(`not ${what} within ${timeoutMs} ms`))
      yield* Effect.sleep(100)
    }
    return Date.now() - started
  })

/** The sum over `urls` (one per worker) of the samples of `name` with `labels`. */
const summed = (urls: ReadonlyArray<string>, name: string, labels: Record<string, string> = {}) =>
  Effect.map(Effect.forEach(urls, scrape), (all) => all.reduce((sum, samples) => sum + sample(samples, name, labels), 0))

/** When a log line was written, in ms of its day: a JSON line's `timestamp`, or a pretty line's `[HH:MM:SS.mmm]`. */
const timeOf = (line: string) => {
  const json = /"timestamp":"[^"]*T(\d\d):(\d\d):(\d\d)\.(\d{3})/.exec(line)
  const [, h, m, s, ms] = json ?? /\[(\d\d):(\d\d):(\d\d)\.(\d{3})\]/.exec(line) ?? []
  return ((Number(h) * 60 + Number(m)) * 60 + Number(s)) * 1000 + Number(ms)
}

const kill = (node: Node) =>
  Effect.promise(() => {
    node.child.kill("SIGKILL")
    return node.closed
  })

describe("node loss under load", () => {
  it.live(
    "PoH nodes killed and restarted, Presence stopped and restarted: failover, cross-region, last answer, none lost",
    () =>
      Effect.gen(function*() {
        const mongodbUri = withDatabase(inject("mongodbUri"), database)
        yield* dropDatabaseAtEnd(mongodbUri)
        const timing = { PRESENCE_TTL: `${ttlMs}ms`, PRESENCE_HEARTBEAT_INTERVAL: `${heartbeatMs}ms` }
        const presence = yield* startPresence(timing)
        const nodes = {
          poh1: yield* startPohNode("poh-1", "eu-central", presence.address, timing),
          poh2: yield* startPohNode("poh-2", "us-east", presence.address, timing),
          poh3: yield* startPohNode("poh-3", "eu-central", presence.address, timing)
        }
        const { url, metrics } = yield* startSendingDag(presence.address, 2, { MONGODB_URI: mongodbUri })
        const online = (region: string) => Effect.map(scrape(presence.metrics), (samples) =>
          sample(samples, "presence_online_nodes", { region }))
        const requests = (labels: Record<string, string>) => summed(metrics, "poh_requests_total", labels)
        yield* until("all three nodes online", Effect.map(online("eu-central"), (n) => n === 2), 10_000)

        const load = yield* steadyLoad(url, 20, "baseline")
        yield* Effect.sleep(2_000)

        // poh-1 killed: dropped within the TTL (+ the sweep, a fifth of it); its requests fail over to poh-3.
        const poh1Errors = yield* requests({ node: "poh-1", status: "error" })
        load.phase = "poh-1 killed"
        yield* kill(nodes.poh1.node)
        const dropped = yield* until("poh-1 dropped", Effect.map(online("eu-central"), (n) => n === 1), ttlMs + 3_000)
        yield* Effect.sleep(1_000)
        const failedOver = (yield* requests({ node: "poh-1", status: "error" })) - poh1Errors

        // poh-1 again, on the same ports: back within one heartbeat of listening, and serving.
        load.phase = "poh-1 restarted"
        const seen = presence.node.output.length
        const again = yield* spawnNode("poh-1 (restarted)", "poh-node.ts", nodes.poh1.env)
        const listening = yield* whileRunning("poh-1 listened again", logged(again, /gRPC on (\S+);/), [again])
        const back = yield* whileRunning(
          "poh-1 back in Presence",
          Effect.suspend(() => {
            const line = presence.node.output.slice(seen).find((printed) => /poh-1 \(eu-central.*\) online/.test(printed))
            return line === undefined ? Effect.fail("not yet") : Effect.succeed(line)
          }),
          [presence.node],
          5_000
        )
        const backAfter = timeOf(back) - timeOf(listening.input)
        const served = yield* requests({ node: "poh-1", status: "ok" })
        yield* until("poh-1 serving again", Effect.map(requests({ node: "poh-1", status: "ok" }), (n) => n > served), 10_000)

        // poh-2, us-east's only node, killed: us-east goes to eu-central.
        load.phase = "poh-2 killed"
        yield* kill(nodes.poh2.node)
        yield* until("poh-2 dropped", Effect.map(online("us-east"), (n) => n === 0), ttlMs + 3_000)
        const crossBefore = yield* requests({ region: "us-east", placement: "cross_region", status: "ok" })
        yield* Effect.sleep(1_500)
        const crossRegion = (yield* requests({ region: "us-east", placement: "cross_region", status: "ok" })) - crossBefore

        // Presence stopped: each look-up fails and is counted, the last answer serves.
        yield* Effect.promise(() => load.pause())
        const failuresBefore = yield* summed(metrics, "presence_calls_total", { outcome: "failure" })
        yield* Effect.promise(async () => {
          presence.node.child.kill("SIGTERM")
          await presence.node.closed
        })
        load.phase = "presence down"
        load.resume()
        yield* Effect.sleep(3_000)
        yield* Effect.promise(() => load.pause())
        const presenceDown = inPhase(load, "presence down")
        const failedLookups = (yield* summed(metrics, "presence_calls_total", { outcome: "failure" })) - failuresBefore

        // Presence again: the nodes announce themselves within a heartbeat, look-ups succeed again.
        const restarted = yield* spawnNode("presence (restarted)", "presence.ts", presence.env)
        yield* whileRunning("Presence listened again", logged(restarted, /presence: gRPC on/), [restarted])
        const successes = yield* summed(metrics, "presence_calls_total", { outcome: "success" })
        load.phase = "presence back"
        load.resume()
        const recovered = yield* until(
          "look-ups succeeding again",
          Effect.map(summed(metrics, "presence_calls_total", { outcome: "success" }), (n) => n > successes),
          10_000
        )
        yield* Effect.sleep(1_000)
        yield* Effect.promise(() => load.pause())

        const phases = ["baseline", "poh-1 killed", "poh-1 restarted", "poh-2 killed", "presence down", "presence back"]
        for (const phase of phases) console.log(`${phase}: ${summary(inPhase(load, phase))}`)
        const notCreated = load.answers.filter((answer) => answer.outcome !== 201)
        console.log(
          `poh-1 dropped by Presence ${dropped} ms after SIGKILL (TTL ${ttlMs} ms); ${failedOver} attempts to it failed ` +
            `over; back in Presence ${backAfter} ms after it listened; ${crossRegion} us-east requests across regions; ` +
            `Presence down: ${failedLookups} failed look-ups for ${presenceDown.length} requests; look-ups succeeded ` +
            `${recovered} ms after Presence restarted; not 201: ${notCreated.length}`
        )
        assert.deepStrictEqual(
          notCreated.map((answer) => `${answer.phase}: ${answer.outcome} ${JSON.stringify(answer.body)}`),
          [],
          "every request answered 201"
        )
        assert.isAtMost(dropped, ttlMs + ttlMs / 5 + 500, "dropped within the TTL")
        assert.isAbove(failedOver, 0, "requests sent to poh-1 after it died failed over")
        assert.isAtMost(backAfter, heartbeatMs, "back within one heartbeat")
        assert.isAbove(crossRegion, 0, "us-east requests went to eu-central")
        assert.strictEqual(failedLookups, presenceDown.length, "each look-up while Presence is down fails, counted")
        const stale = yield* fetchTrace(presenceDown.at(-1)!.traceId, 9)
        const lookup = byName(stale).get("Presence.onlineNodes")
        assert.strictEqual(tag(lookup, "dag.presence.stale"), true)
        assert.strictEqual(tag(lookup, "error.type"), "PresenceUnavailable")
        assert.strictEqual(tag(byName(stale).get("presence.PresenceService/OnlineNodes"), "error"), true)

        // Nothing acknowledged is lost.
        const acknowledged = load.answers.map((answer) => (answer.body as { id: string }).id).toSorted()
        const stored = (yield* storedTransactions(mongodbUri)).map((document) => String(document._id)).toSorted()
        assert.deepStrictEqual(stored, acknowledged, "every acknowledged transaction is stored")
      }).pipe(Effect.scoped, withOutputs),
    150_000
  )
})
