/**
 * The MongoDB connection: a connected `MongoClient` (command monitoring on, a
 * short server selection timeout so an outage fails fast) and the database to
 * use. The client counts its pool's connections by state from the moment it is
 * created, so `MongoMonitor` can report them exactly. Credentials in the URI
 * never appear in errors.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import * as Mongo from "dag-observability/Mongo"
 * import * as MongoMonitor from "dag-observability/MongoMonitor"
 *
 * const count = Effect.gen(function*() {
 *   const { db } = yield* Mongo.Mongo
 *   return yield* Effect.promise(() => db.collection("greetings").countDocuments())
 * })
 * const MongoLive = MongoMonitor.layer.pipe(Layer.provideMerge(Mongo.layerConfig()))
 * ```
 */
import { type Config, Context, Duration, Effect, Layer, Option, Schema, type Scope } from "effect"
import { type Db, MongoClient, type MongoClientEvents, type MongoClientOptions } from "mongodb"
import { listen } from "./internal/listen.ts"
import * as Settings from "./Settings.ts"

/** The state of a pool connection: lent to an operation, idle in the pool, or still being established. */
export type PoolState = "checked_out" | "available" | "pending"

/** Every {@link PoolState}. */
export const poolStates: ReadonlyArray<PoolState> = ["checked_out", "available", "pending"]

/** The client events that change a pool connection's state. */
export const poolEvents = [
  "connectionCreated",
  "connectionReady",
  "connectionCheckedOut",
  "connectionCheckedIn",
  "connectionClosed",
  "connectionPoolCleared",
  "connectionPoolClosed"
] as const satisfies ReadonlyArray<keyof MongoClientEvents>

/** The database used when the URI names none. */
export const defaultDatabase = "dag"

/** `MONGODB_URI` is not set. */
export class MongoNotConfigured extends Schema.TaggedError<MongoNotConfigured>()("MongoNotConfigured", {}) {
  override get message(): string {
    return "MONGODB_URI is not set: expected a mongodb:// or mongodb+srv:// connection string"
  }
}

/** The client could not be created or could not reach a server within the selection timeout. */
export class MongoUnavailable extends Schema.TaggedError<MongoUnavailable>()("MongoUnavailable", {
  /** The connection string, credentials hidden. */
  uri: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot connect to MongoDB at ${this.uri}: ${this.reason}`
  }
}

/** Options of {@link make}. */
export interface Options {
  /** How long an operation waits for a reachable server before it fails; 2 seconds by default. */
  readonly serverSelectionTimeout?: Duration.Input
  /** The database to use instead of the one the URI names. */
  readonly database?: string
  /** More driver options; `monitorCommands` is always on. */
  readonly client?: MongoClientOptions
}

/** The database named in the path of a connection string, else {@link defaultDatabase}. */
export const databaseName = (uri: string): string => {
  const path = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]*)/.exec(uri)?.[1] ?? ""
  if (path === "") return defaultDatabase
  try {
    return decodeURIComponent(path)
  } catch {
    return path
  }
}

/** A pool connection's key: ids are per pool, and there is one pool per server. */
const connectionKey = (event: { readonly address: string; readonly connectionId: number | string }) =>
  `${event.address}/${event.connectionId}`

/** Connections of the client's pools by state, kept from the driver's pool events. */
const trackPool = (client: MongoClient) => {
  const states = new Map<string, PoolState>()
  const counts: Record<PoolState, number> = { checked_out: 0, available: 0, pending: 0 }
  const move = (key: string, to: PoolState | undefined) => {
    const from = states.get(key)
    if (from !== undefined) counts[from] -= 1
    if (to === undefined) states.delete(key)
    else {
      states.set(key, to)
      counts[to] += 1
    }
  }
  const dropPool = (address: string, only?: PoolState) => {
    for (const [key, state] of states) {
      if (key.startsWith(`${address}/`) && (only === undefined || state === only)) move(key, undefined)
    }
  }
  const listeners: Pick<MongoClientEvents, typeof poolEvents[number]> = {
    connectionCreated: (event) => move(connectionKey(event), "pending"),
    connectionReady: (event) => move(connectionKey(event), "available"),
    connectionCheckedOut: (event) => move(connectionKey(event), "checked_out"),
    connectionCheckedIn: (event) => move(connectionKey(event), "available"),
    connectionClosed: (event) => move(connectionKey(event), undefined),
    // A clear pauses the pool, and a connection whose handshake ends while it is paused is dropped without an event.
    connectionPoolCleared: (event) => dropPool(event.address, "pending"),
    connectionPoolClosed: (event) => dropPool(event.address)
  }
  return { connections: (): Readonly<Record<PoolState, number>> => ({ ...counts }), detach: listen(client, listeners) }
}

/** Creates the client, counting its pool from the first event, and connects it; closes it again if that fails. */
const open = async (uri: string, options: Options) => {
  const client = new MongoClient(uri, {
    ...options.client,
    monitorCommands: true,
    serverSelectionTimeoutMS: Duration.toMillis(Duration.fromInputUnsafe(options.serverSelectionTimeout ?? "2 seconds"))
  })
  const pool = trackPool(client)
  try {
    await client.connect()
  } catch (error) {
    await client.close().catch(() => undefined)
    pool.detach()
    throw error
  }
  return { client, pool }
}

/** Why an error happened, in words that carry no credentials. */
const describeError = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${Settings.redactCredentials(error.message)}` : String(error)

/** A connected MongoDB client and the database to use. */
export class Mongo extends Context.Service<Mongo, {
  /** The connected client, created with `monitorCommands: true`. */
  readonly client: MongoClient
  /** The database named in the URI path (or by the `database` option), else `dag`. */
  readonly db: Db
  /** The connection string with its credentials hidden, for logs. */
  readonly uri: string
  /** The pool's connections by state right now, counted since the client was created. */
  readonly connections: () => Readonly<Record<PoolState, number>>
}>()("dag-observability/Mongo") {}

/** Connects to `uri`; closes the client (never failing) when the scope closes. */
export const make = (
  uri: string,
  options: Options = {}
): Effect.Effect<Mongo["Service"], MongoUnavailable, Scope.Scope> =>
  Effect.gen(function*() {
    const shown = Settings.redactCredentials(uri)
    const opened = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => open(uri, options),
        catch: (error) => new MongoUnavailable({ uri: shown, reason: describeError(error) })
      }),
      ({ client, pool }) =>
        Effect.promise(() => client.close().catch(() => undefined)).pipe(Effect.ensuring(Effect.sync(pool.detach)))
    )
    return Mongo.of({
      client: opened.client,
      db: opened.client.db(options.database ?? databaseName(uri)),
      uri: shown,
      connections: opened.pool.connections
    })
  })

/** Connects to `uri` when built; closes the client when released. */
export const layer = (uri: string, options: Options = {}): Layer.Layer<Mongo, MongoUnavailable> =>
  Layer.effect(Mongo, make(uri, options))

/**
 * Connects to the URI read through Effect `Config`: `MONGODB_URI` unless
 * given another; fails with {@link MongoNotConfigured} when it is unset.
 */
export const layerConfig = (
  uri: Config.Config<Option.Option<string>> = Settings.mongodbUri,
  options: Options = {}
): Layer.Layer<Mongo, Settings.InvalidConfig | MongoNotConfigured | MongoUnavailable> =>
  Layer.unwrap(
    Effect.flatMap(Settings.read(uri), (value) =>
      Option.match(value, {
        onNone: () => Effect.fail(new MongoNotConfigured()),
        onSome: (configured) => Effect.succeed(layer(configured, options))
      }))
  )
