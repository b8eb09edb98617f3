import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as Mongo from "../src/Mongo.ts"
import { withEnv } from "./support/Environment.ts"

describe("Mongo", () => {
  it("takes the database from the URI path, else dag", () => {
    assert.strictEqual(Mongo.databaseName("mongodb://127.0.0.1:27017/ledger?authSource=admin"), "ledger")
    assert.strictEqual(Mongo.databaseName("mongodb+srv://u:p@cluster.example/my%20db"), "my db")
    assert.strictEqual(Mongo.databaseName("mongodb://h1:1,h2:2/?replicaSet=rs"), "dag")
    assert.strictEqual(Mongo.databaseName("mongodb://127.0.0.1:27017"), "dag")
  })

  it.effect("Mongo.layerConfig() fails with MongoNotConfigured when MONGODB_URI is unset", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Mongo.layerConfig()))
      assert.strictEqual(error._tag, "MongoNotConfigured")
      assert.strictEqual(
        error.message,
        "MONGODB_URI is not set: expected a mongodb:// or mongodb+srv:// connection string"
      )
    }).pipe(withEnv({})))

  it.live("an unreachable server fails the layer within the selection timeout, credentials hidden", () =>
    Effect.gen(function*() {
      const started = Date.now()
      const uri = "mongodb://admin:hunter2@127.0.0.1:1/dag"
      const layer = Mongo.layer(uri, { serverSelectionTimeout: "300 millis" })
      const error = yield* Effect.flip(Layer.build(layer))
      assert.isBelow(Date.now() - started, 3_000)
      assert.strictEqual(error._tag, "MongoUnavailable")
      assert.strictEqual(error.uri, "mongodb://***@127.0.0.1:1/dag")
      assert.match(error.message, /^cannot connect to MongoDB at mongodb:\/\/\*{3}@127\.0\.0\.1:1\/dag: MongoServer/)
      assert.notInclude(error.message, "hunter2")
      // Mongo.make, the scoped effect under the layer, fails the same way.
      const made = yield* Effect.flip(Mongo.make(uri, { serverSelectionTimeout: "300 millis" }).pipe(Effect.scoped))
      assert.strictEqual(made._tag, "MongoUnavailable")
      assert.strictEqual(made.uri, "mongodb://***@127.0.0.1:1/dag")
      assert.notInclude(made.message, "hunter2")
    }))
})
