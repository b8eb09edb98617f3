/**
 * The MongoDB connection: a connected `MongoClient` (command monitoring on,
 * short server selection and connect timeouts so an outage or a host that
 * swallows connections fails fast) and the database to use. The client counts
 * its pool's connections by state from the moment it is created, so
 * `MongoMonitor` can report them exactly. Credentials in the URI never appear
 * in errors.
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
import { Config, Context, Duration, Effect, Layer, Option, Schema, type Scope } from "effect"
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

/** How long an operation waits for a reachable server unless told otherwise: 2 seconds (the driver's own is 30). */
export const defaultServerSelectionTimeout: Duration.Duration = Duration.seconds(2)

/**
 * How long opening a connection may wait unless told otherwise: 5 seconds (the driver's own is 30), for each step
 * apart (connect, then the handshake's reply), which is ample for TLS across regions.
 */
export const defaultConnectTimeout: Duration.Duration = Duration.seconds(5)

/** Options of {@link make}. */
export interface Options {
  /**
   * How long an operation waits for a reachable server before it fails ({@link defaultServerSelectionTimeout} by
   * default): the bound when the server is down or the driver's monitor has lost it.
   */
  readonly serverSelectionTimeout?: Duration.Input
  /**
   * How long opening a connection may wait ({@link defaultConnectTimeout} by default): for the TCP (and TLS)
   * connect, then again for the reply to the handshake's `hello` (each a socket timeout: that long without an
   * answer). It is the bound when the server is still known to be up but a new connection is not answered, as from a
   * host that accepts connections and never replies. The driver (7.x) makes up to three attempts to open a
   * connection for one operation (`client.maxAdaptiveRetries`, 2 by default, after backoffs of at most 200 and
   * 400 ms), so such an operation fails after about 3 × this + 0.6 s: 16 s by default, where the driver's own 30 s
   * would give 90 s. The driver also uses it as the socket timeout of its monitor's heartbeats, so keep it above the
   * server's slowest handshake round trip.
   */
  readonly connectTimeout?: Duration.Input
  /** The database to use instead of the one the URI names. */
  readonly database?: string
  /**
   * More driver options; `monitorCommands` is always on, and the two timeouts above replace `serverSelectionTimeoutMS`
   * and `connectTimeoutMS` given here or in the URI.
   */
  readonly client?: MongoClientOptions
}

/** What {@link layerConfig} reads through Effect `Config`. */
export interface ConfigOptions {
  /** The connection string; `None` fails the layer with {@link MongoNotConfigured}. */
  readonly uri: Option.Option<string>
  /** {@link Options.connectTimeout}; `None` for {@link defaultConnectTimeout}. */
  readonly connectTimeout: Option.Option<Duration.Duration>
  /** {@link Options.serverSelectionTimeout}; `None` for {@link defaultServerSelectionTimeout}. */
  readonly serverSelectionTimeout: Option.Option<Duration.Duration>
}

/**
 * The standard variables: `MONGODB_URI`, `MONGODB_CONNECT_TIMEOUT` and `MONGODB_SERVER_SELECTION_TIMEOUT`
 * (`Settings.mongodbUri`, `Settings.mongodbConnectTimeout`, `Settings.mongodbServerSelectionTimeout`).
 */
export const config: Config.Config<ConfigOptions> = Config.all({
  uri: Settings.mongodbUri,
  connectTimeout: Settings.mongodbConnectTimeout,
  serverSelectionTimeout: Settings.mongodbServerSelectionTimeout
})

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

/** Whole milliseconds of `input`, as the driver takes them. */
const millis = (input: Duration.Input): number => Math.round(Duration.toMillis(Duration.fromInputUnsafe(input)))

/** Creates the client, counting its pool from the first event, and connects it; closes it again if that fails. */
const open = async (uri: string, options: Options) => {
  const client = new MongoClient(uri, {
    ...options.client,
    monitorCommands: true,
    serverSelectionTimeoutMS: millis(options.serverSelectionTimeout ?? defaultServerSelectionTimeout),
    connectTimeoutMS: millis(options.connectTimeout ?? defaultConnectTimeout)
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
 * Connects with its settings read through Effect `Config`: {@link config} (`MONGODB_URI`, `MONGODB_CONNECT_TIMEOUT`,
 * `MONGODB_SERVER_SELECTION_TIMEOUT`) unless given others; fails with {@link MongoNotConfigured} when the URI is
 * unset and with `Settings.InvalidConfig` when a value is not accepted. `options` gives the rest of {@link Options}.
 *
 * @example
 * ```ts
 * // MONGODB_URI=mongodb://db:27017/dag MONGODB_CONNECT_TIMEOUT=2s MONGODB_SERVER_SELECTION_TIMEOUT=1500
 * const MongoLive = Mongo.layerConfig()
 * ```
 */
export const layerConfig = (
  settings: Config.Wrap<ConfigOptions> = config,
  options: Omit<Options, "connectTimeout" | "serverSelectionTimeout"> = {}
): Layer.Layer<Mongo, Settings.InvalidConfig | MongoNotConfigured | MongoUnavailable> =>
  Layer.unwrap(
    Effect.flatMap(Settings.read(settings), ({ connectTimeout, serverSelectionTimeout, uri }) =>
      Option.match(uri, {
        onNone: () => Effect.fail(new MongoNotConfigured()),
        onSome: (configured) =>
          Effect.succeed(layer(configured, {
            ...options,
            connectTimeout: Option.getOrElse(connectTimeout, () => defaultConnectTimeout),
            serverSelectionTimeout: Option.getOrElse(serverSelectionTimeout, () => defaultServerSelectionTimeout)
          }))
      }))
  )
