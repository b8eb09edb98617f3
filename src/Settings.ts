/**
 * The settings of SPEC §3 as Effect `Config` values: read from the current
 * `ConfigProvider` (the environment by default, `ConfigProvider.fromUnknown`
 * or any other provider in a spec or an app), validated, with the
 * OpenTelemetry rule that a blank variable counts as unset. A bad value fails
 * with a `ConfigError` that {@link read} turns into {@link InvalidConfig}, one
 * line naming the variable, the value and what is accepted.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { Settings } from "dag-observability"
 *
 * const program = Effect.gen(function*() {
 *   const bind = yield* Settings.read(Settings.metricsBind)
 *   yield* Effect.log(`${bind.host}:${bind.port}`)
 * }).pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown({ PROMETHEUS_BIND: "127.0.0.1:9464" }))))
 * ```
 */
import { Config, type Duration, Effect, Option, Predicate, Redacted, Schema, SchemaIssue } from "effect"
import { oneLine } from "./internal/oneLine.ts"
import {
  type Bind,
  bind,
  boolean,
  count,
  duration,
  httpUrl,
  type Parser,
  ratio,
  redactCredentials
} from "./internal/parsers.ts"

export {
  type Bind,
  bind,
  boolean,
  count,
  duration,
  formatAddress,
  parseBind,
  type Parser,
  positive,
  ratio,
  redactCredentials
} from "./internal/parsers.ts"

/** A variable whose value is not accepted. */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  variable: Schema.String,
  /** The value as it may be shown (secrets hidden); absent when the provider gave none. */
  value: Schema.optional(Schema.String),
  expected: Schema.String,
  /** The variable is required and not set. */
  unset: Schema.optional(Schema.Boolean)
}) {
  override get message(): string {
    if (this.unset === true) return `${this.variable} is not set: ${this.expected}`
    return this.value === undefined
      ? `${this.variable} is not valid: ${this.expected}`
      : `${this.variable}=${JSON.stringify(this.value)} is not valid: expected ${this.expected}`
  }

  constructor(
    fields: {
      readonly variable: string
      readonly value?: string
      readonly expected: string
      readonly unset?: boolean
    }
  ) {
    super(fields)
    oneLine(this)
  }
}

/** The issue annotation that carries an {@link InvalidConfig}'s fields through Effect's `ConfigError`. */
const invalidKey = "dag-observability/InvalidConfig"

const formatIssue = SchemaIssue.makeFormatterDefault()

/** The innermost issue under the pointers of `issue`, and the path they name. */
const pointed = (
  issue: SchemaIssue.Issue,
  path: ReadonlyArray<PropertyKey> = []
): { readonly issue: SchemaIssue.Issue; readonly path: ReadonlyArray<PropertyKey> } =>
  issue._tag === "Pointer" ? pointed(issue.issue, [...path, ...issue.path]) : { issue, path }

/**
 * The one-line {@link InvalidConfig} of any `ConfigError`: the fields of a
 * setting of this module as they are, else the variable the error points at
 * and Effect's own description of what was wrong.
 */
export const fromConfigError = (error: Config.ConfigError): InvalidConfig => {
  if (error.cause._tag === "SourceError") {
    return new InvalidConfig({ variable: "configuration", expected: `unreadable: ${error.cause.message}` })
  }
  const { issue, path } = pointed(error.cause.issue)
  const fields = issue._tag === "InvalidValue" ? issue.annotations?.[invalidKey] : undefined
  if (Predicate.isObject(fields)) return new InvalidConfig(fields as ConstructorParameters<typeof InvalidConfig>[0])
  const variable = path.map(String).join(".") || "configuration"
  // A missing key is an InvalidType issue reporting no input: the provider had nothing there.
  const unset = issue._tag === "InvalidType" && !SchemaIssue.hasInput(issue)
  return new InvalidConfig({ variable, expected: formatIssue(issue), ...(unset ? { unset } : {}) })
}

/** The `ConfigError` of a rejected value, carrying what its {@link InvalidConfig} will say. */
const rejected = (fields: { readonly variable: string; readonly value: string; readonly expected: string }) => {
  const issue = new SchemaIssue.InvalidValue({ message: new InvalidConfig(fields).message, [invalidKey]: fields })
  return new Config.ConfigError(new Schema.SchemaError(new SchemaIssue.Pointer([fields.variable], issue)))
}

/**
 * Reads `config` from the current `ConfigProvider`, failing with
 * {@link InvalidConfig}. Takes a `Config` or a record of them, as
 * `Config.unwrap` does.
 */
export const read = <A>(config: Config.Wrap<A>): Effect.Effect<A, InvalidConfig> =>
  Effect.mapError(Config.unwrap(config), fromConfigError)

/**
 * The variable `name` parsed by `parser`: `None` when unset or blank, a
 * `ConfigError` naming the variable, the value and what is accepted when the
 * parser rejects it.
 *
 * @example
 * ```ts
 * const rate = Settings.optional("RATE", { expected: "a number above 0", parse: (t) => Number(t) > 0 ? Number(t) : undefined })
 * ```
 */
export const optional = <A>(name: string, parser: Parser<A>): Config.Config<Option.Option<A>> =>
  Config.option(Config.String(name)).pipe(
    Config.mapEffect((raw) => {
      const text = Option.getOrElse(Option.map(raw, (value) => value.trim()), () => "")
      if (text === "") return Effect.succeedNone
      const value = parser.parse(text)
      if (value !== undefined) return Effect.succeedSome(value)
      return Effect.fail(rejected({ variable: name, value: (parser.shown ?? String)(text), expected: parser.expected }))
    })
  )

/** The variable `name` parsed by `parser`, `fallback` when unset or blank. */
export const setting = <A>(name: string, fallback: A, parser: Parser<A>): Config.Config<A> =>
  Config.map(optional(name, parser), Option.getOrElse(() => fallback))

/** The OTLP endpoint variables, in the order the first one set wins. */
export const otlpEndpointVariables = [
  "OTLP_GRPC_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_ENDPOINT"
] as const

/** The first of `variables` set, as an http(s) URL. */
const firstUrl = (variables: ReadonlyArray<string>): Config.Config<Option.Option<string>> =>
  Config.map(Config.all(variables.map((name) => optional(name, httpUrl))), Option.firstSomeOf)

const orLocalCollector = Option.getOrElse(() => "http://localhost:4317")

/** The OTLP gRPC collector the settings name: the first of {@link otlpEndpointVariables} set, if any. */
export const namedOtlpEndpoint: Config.Config<Option.Option<string>> = firstUrl(otlpEndpointVariables)

/** The OTLP gRPC collector: {@link namedOtlpEndpoint}, else `http://localhost:4317`. */
export const otlpEndpoint: Config.Config<string> = Config.map(namedOtlpEndpoint, orLocalCollector)

/** The OTLP endpoint variables of logs, in the order the first one set wins: the logs' own, then the shared ones. */
export const otlpLogsEndpointVariables = [
  "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
  "OTLP_GRPC_ENDPOINT",
  "OTEL_EXPORTER_OTLP_ENDPOINT"
] as const

/** The OTLP gRPC collector of logs: the first of {@link otlpLogsEndpointVariables} set, else `http://localhost:4317`. */
export const otlpLogsEndpoint: Config.Config<string> = Config.map(firstUrl(otlpLogsEndpointVariables), orLocalCollector)

/** The standard `OTEL_TRACES_SAMPLER` names. */
export const samplerNames = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio"
] as const

/** One of {@link samplerNames}. */
export type SamplerName = typeof samplerNames[number]

/** The sampler to build: its name and, for the ratio samplers, the ratio. */
export interface SamplerSetting {
  readonly name: SamplerName
  readonly ratio: number
}

/** `OTEL_TRACES_SAMPLER` and, for the ratio samplers, `OTEL_TRACES_SAMPLER_ARG` (1 when unset). */
export const sampler: Config.Config<SamplerSetting> = setting("OTEL_TRACES_SAMPLER", "parentbased_always_on", {
  expected: `one of ${samplerNames.join(", ")}`,
  parse: (text): SamplerName | undefined => samplerNames.find((name) => name === text.toLowerCase())
}).pipe(
  Config.flatMap((name) =>
    name.endsWith("traceidratio")
      ? Config.map(setting("OTEL_TRACES_SAMPLER_ARG", 1, ratio), (value) => ({ name, ratio: value }))
      : Config.succeed({ name, ratio: 1 })
  )
)

/** `OTEL_SERVICE_NAME`, when set. */
export const serviceName: Config.Config<Option.Option<string>> = optional("OTEL_SERVICE_NAME", {
  expected: "a name of at most 255 characters without control characters",
  parse: (text) => text.length <= 255 && !/\p{Cc}/u.test(text) ? text : undefined
})

const uriComponent = (text: string): string | undefined => {
  try {
    return decodeURIComponent(text.trim())
  } catch {
    return undefined
  }
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, keys and
 * values percent-encoded, as OpenTelemetry writes them; empty when unset.
 */
export const resourceAttributes: Config.Config<Readonly<Record<string, string>>> = setting(
  "OTEL_RESOURCE_ATTRIBUTES",
  {},
  {
    expected: "comma-separated key=value pairs, percent-encoded, such as service.version=1.2.0,team=dag",
    parse: (text) => {
      const attributes: Record<string, string> = {}
      for (const pair of text.split(",")) {
        const equals = pair.indexOf("=")
        const key = uriComponent(pair.slice(0, Math.max(equals, 0)))
        const value = uriComponent(pair.slice(equals + 1))
        if (equals === -1 || key === undefined || key === "" || value === undefined) return undefined
        attributes[key] = value
      }
      return attributes
    }
  }
)

/** How much one span keeps; what goes beyond is dropped and counted in the exported span. */
export interface SpanLimits {
  readonly attributeCountLimit: number
  readonly attributeValueLengthLimit: number
  readonly eventCountLimit: number
  readonly linkCountLimit: number
}

/** The OpenTelemetry specification's defaults: 128 attributes, events and links, values unbounded. */
export const defaultSpanLimits: SpanLimits = {
  attributeCountLimit: 128,
  attributeValueLengthLimit: Number.POSITIVE_INFINITY,
  eventCountLimit: 128,
  linkCountLimit: 128
}

/** The span variable `name`, else the general `fallback` variable, else `value`. */
const limit = (name: string, fallback: string | undefined, value: number): Config.Config<number> =>
  Config.map(
    Config.all([optional(name, count), fallback === undefined ? Config.succeed(Option.none()) : optional(fallback, count)]),
    ([own, general]) => Option.getOrElse(Option.orElse(own, () => general), () => value)
  )

/**
 * The span limits of the standard variables: `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`
 * (else `OTEL_ATTRIBUTE_COUNT_LIMIT`), `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`
 * (else `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`), `OTEL_SPAN_EVENT_COUNT_LIMIT`,
 * `OTEL_SPAN_LINK_COUNT_LIMIT`; {@link defaultSpanLimits} for those unset.
 */
export const spanLimits: Config.Config<SpanLimits> = Config.all({
  attributeCountLimit: limit("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT", defaultSpanLimits.attributeCountLimit),
  attributeValueLengthLimit: limit(
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    defaultSpanLimits.attributeValueLengthLimit
  ),
  eventCountLimit: limit("OTEL_SPAN_EVENT_COUNT_LIMIT", undefined, defaultSpanLimits.eventCountLimit),
  linkCountLimit: limit("OTEL_SPAN_LINK_COUNT_LIMIT", undefined, defaultSpanLimits.linkCountLimit)
})

/** `OTEL_SDK_DISABLED`: tracing off, metrics still on. */
export const sdkDisabled: Config.Config<boolean> = setting("OTEL_SDK_DISABLED", false, boolean)

/** `PROMETHEUS_BIND`: where `/metrics` listens, `0.0.0.0:8000` by default. */
export const metricsBind: Config.Config<Bind> = setting(
  "PROMETHEUS_BIND",
  { host: "0.0.0.0", port: 8000 },
  bind("0.0.0.0:8000")
)

/**
 * `PROMETHEUS_BEARER_TOKEN`: when set, `/metrics` answers only requests with `Authorization: Bearer <token>`. Kept
 * {@link Redacted}: it prints as `<redacted>`, and an invalid value is never repeated in the error.
 */
export const metricsBearerToken: Config.Config<Option.Option<Redacted.Redacted<string>>> = optional(
  "PROMETHEUS_BEARER_TOKEN",
  {
    expected: "a bearer token of 1 to 4096 characters: letters, digits and -._~+/, then any '='",
    parse: (text) => text.length <= 4096 && /^[A-Za-z0-9\-._~+/]+=*$/.test(text) ? Redacted.make(text) : undefined,
    shown: () => "<redacted>"
  }
)

/** `MONGODB_URI` if set: a `mongodb://` or `mongodb+srv://` URL (credentials never shown in errors). */
export const mongodbUri: Config.Config<Option.Option<string>> = optional("MONGODB_URI", {
  expected: "a mongodb:// or mongodb+srv:// connection string",
  parse: (text) => /^mongodb(\+srv)?:\/\/[^/\s]+/.test(text) ? text : undefined,
  shown: redactCredentials
})

/**
 * `MONGODB_CONNECT_TIMEOUT` if set: how long opening a MongoDB connection (TCP connect and handshake) may take
 * ({@link duration}); `Mongo.layerConfig` uses `Mongo.defaultConnectTimeout` when unset.
 */
export const mongodbConnectTimeout: Config.Config<Option.Option<Duration.Duration>> = optional(
  "MONGODB_CONNECT_TIMEOUT",
  duration
)

/**
 * `MONGODB_SERVER_SELECTION_TIMEOUT` if set: how long an operation waits for a reachable MongoDB server
 * ({@link duration}); `Mongo.layerConfig` uses `Mongo.defaultServerSelectionTimeout` when unset.
 */
export const mongodbServerSelectionTimeout: Config.Config<Option.Option<Duration.Duration>> = optional(
  "MONGODB_SERVER_SELECTION_TIMEOUT",
  duration
)
