/**
 * `MONGODB_CONNECT_TIMEOUT` and `MONGODB_SERVER_SELECTION_TIMEOUT`: durations read through Effect `Config` by
 * `Mongo.layerConfig`, milliseconds or a number and a unit; every bad value fails with the one-line `InvalidConfig`
 * naming the variable, the value and what is accepted, and stops `Mongo.layerConfig` before it connects.
 */
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Option } from "effect"
import { Settings } from "../src/index.ts"
import * as Mongo from "../src/Mongo.ts"
import { withEnv } from "./support/Environment.ts"

const timeouts = {
  connect: Settings.mongodbConnectTimeout,
  serverSelection: Settings.mongodbServerSelectionTimeout
}

const variables = ["MONGODB_CONNECT_TIMEOUT", "MONGODB_SERVER_SELECTION_TIMEOUT"] as const

const expected =
  "a duration from 1 ms to 24 days: milliseconds (1500) or a number and a unit (500ms, 1.5s, 2 seconds)"

describe("MongoDB timeouts", () => {
  it.effect("unset or blank: None, so Mongo's defaults (5 s to connect, 2 s to select a server) apply", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Settings.read(timeouts).pipe(withEnv({})), {
        connect: Option.none(),
        serverSelection: Option.none()
      })
      const blank = withEnv({ MONGODB_CONNECT_TIMEOUT: " ", MONGODB_SERVER_SELECTION_TIMEOUT: "" })
      assert.deepStrictEqual(yield* Settings.read(timeouts).pipe(blank), {
        connect: Option.none(),
        serverSelection: Option.none()
      })
      assert.strictEqual(Duration.toMillis(Mongo.defaultConnectTimeout), 5_000)
      assert.strictEqual(Duration.toMillis(Mongo.defaultServerSelectionTimeout), 2_000)
    }))

  it.effect.each([
    ["1500", 1_500],
    ["500ms", 500],
    ["1.5s", 1_500],
    ["2 seconds", 2_000],
    [" 2S ", 2_000],
    ["1 second", 1_000],
    ["250 millis", 250],
    ["1 minute", 60_000],
    ["1.4ms", 1],
    ["2147483647", 2_147_483_647]
  ] as const)("%j is %d ms, for both variables", ([text, millis]) =>
    Effect.gen(function*() {
      const { connect, serverSelection } = yield* Settings.read(timeouts).pipe(
        withEnv({ MONGODB_CONNECT_TIMEOUT: text, MONGODB_SERVER_SELECTION_TIMEOUT: text })
      )
      assert.strictEqual(Option.map(connect, Duration.toMillis).pipe(Option.getOrUndefined), millis)
      assert.strictEqual(Option.map(serverSelection, Duration.toMillis).pipe(Option.getOrUndefined), millis)
    }))

  const bad = ["0", "0ms", "0.4ms", "-5", "1.5", "abc", "5 hours", "2 days", "1e3", "2147483648", "36000m", "Infinity"]
  for (const variable of variables) {
    it.effect.each(bad)(`${variable}=%j fails with one line naming it, the value and what is accepted`, (text) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Settings.read(timeouts))
        assert.strictEqual(error._tag, "InvalidConfig")
        assert.strictEqual(error.variable, variable)
        const line = `${variable}=${JSON.stringify(text)} is not valid: expected ${expected}`
        assert.strictEqual(error.message, line)
        assert.strictEqual(error.stack, `InvalidConfig: ${line}`)
      }).pipe(withEnv({ [variable]: text })))
  }

  it.effect.each(variables)("a bad %s stops Mongo.layerConfig at build, before connecting", (variable) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Mongo.layerConfig()).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.message, `${variable}="soon" is not valid: expected ${expected}`)
    }).pipe(withEnv({ MONGODB_URI: "mongodb://127.0.0.1:1/dag", [variable]: "soon" })))
})
