/**
 * A {@link Mongo.Mongo} service without a server: a `MongoClient` that is never connected (its events can still be
 * emitted, as the driver would) and, optionally, a stand-in for the database.
 */
import { Effect, Layer } from "effect"
import { type Db, MongoClient } from "mongodb"
import * as Mongo from "../../src/Mongo.ts"

const uri = "mongodb://127.0.0.1:1/dag"

/** The service over a client that is never connected and `db`, by default the client's own (unusable) database. */
export const unconnected = (db?: Db) =>
  Effect.sync(() => {
    const client = new MongoClient(uri)
    return Mongo.Mongo.of({
      client,
      db: db ?? client.db("dag"),
      uri,
      connections: () => ({ checked_out: 0, available: 0, pending: 0 })
    })
  })

/** {@link unconnected} as a layer. */
export const layerUnconnected = (db?: Db) => Layer.effect(Mongo.Mongo, unconnected(db))
