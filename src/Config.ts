/**
 * The environment settings of SPEC §3, read through Effect `Config` and
 * validated. A bad value fails with {@link InvalidConfig}, whose message is one
 * line naming the variable, the value and what is accepted.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Config } from "dag-observability"
 *
 * const program = Effect.gen(function*() {
 *   const settings = yield* Config.settings("sending-dag")
 *   yield* Effect.log(settings.otlpEndpoint)
 * })
 * ```
 */
import { Config, Effect, Option, Redacted, Schema } from "effect"

/** A variable whose value is not accepted. */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  variable: Schema.String,
  value: Schema.String,
  expected: Schema.String
}) {
  override get message(): string {
    return `${this.variable}=${JSON.stringify(this.value)} is not valid: expected ${this.expected}`
  }

  constructor(fields: { readonly variable: string; readonly value: string; readonly expected: string }) {
    super(fields)
    // One line: where in the library the value was read tells a user nothing.
    this.stack = `${this._tag}: ${this.message}`
  }
}

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

/** A `host:port` to listen on; port 0 picks a free one. */
export interface Bind {
  readonly host: string
  readonly port: number
}

/** Everything `ObservabilityLive` needs, read once at start. */
export interface Settings {
  readonly serviceName: string
  readonly otlpEndpoint: string
  readonly metricsBind: Bind
  readonly sampler: SamplerSetting
  readonly sdkDisabled: boolean
  readonly regions: ReadonlyArray<string>
}

/** Regions used when `DAG_REGIONS` is unset. */
export const defaultRegions: ReadonlyArray<string> = ["us-east", "us-west", "eu-central", "ap-south"]

/** The OTLP endpoint variables, in the order the first one set wins. */
export const otlpEndpointVariables = [
  "OTLP_GRPC_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_ENDPOINT"
] as const

/** A variable's raw value; unset and blank are both `None`, as OpenTelemetry treats them. */
const raw = (variable: string): Effect.Effect<Option.Option<string>> =>
  Config.option(Config.String(variable)).pipe(
    Effect.map(Option.map((value) => value.trim())),
    Effect.map(Option.filter((value) => value.length > 0)),
    Effect.orDie
  )

/**
 * Reads the variable `name` with `parse`: `fallback` when unset or blank,
 * {@link InvalidConfig} saying `expected` when `parse` returns `undefined`.
 * `shown` hides secrets in the value the error repeats.
 *
 * @example
 * ```ts
 * const rate = Config.variable("RATE", 10, "a positive number", (v) => Number(v) > 0 ? Number(v) : undefined)
 * ```
 */
export const variable = <A>(
  name: string,
  fallback: A,
  expected: string,
  parse: (value: string) => A | undefined,
  shown: (value: string) => string = (value) => value
): Effect.Effect<A, InvalidConfig> =>
  Effect.flatMap(raw(name), (value) => {
    if (Option.isNone(value)) return Effect.succeed(fallback)
    const parsed = parse(value.value)
    return parsed === undefined
      ? Effect.fail(new InvalidConfig({ variable: name, value: shown(value.value), expected }))
      : Effect.succeed(parsed)
  })

/**
 * Hides the user-info part of every URL in `text` (`scheme://user:password@host` → `scheme://***@host`), so
 * an error message quoting a connection string can be shown too. Everything up to the last `@` before a space goes,
 * so a malformed URL (`mongodb:user:pw@host`, an unescaped `/` or `@` in the password) leaks nothing either.
 */
export const redactCredentials = (text: string): string =>
  text.replace(/([a-z][a-z0-9+.-]*:(?:\/\/)?)\S*@/gi, "$1***@")

const parseUrl = (value: string): string | undefined => {
  if (!URL.canParse(value)) return undefined
  const url = new URL(value)
  return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== "" ? value : undefined
}

/** Parses `host:port`, `:port` or `[v6]:port`; port 0–65535. */
export const parseBind = (value: string): Bind | undefined => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]*)):(\d{1,5})$/.exec(value)
  if (match === null) return undefined
  const port = Number(match[3])
  if (port > 65535) return undefined
  return { host: match[1] ?? (match[2] || "0.0.0.0"), port }
}

const parseBoolean = (value: string): boolean | undefined => {
  const lower = value.toLowerCase()
  return lower === "true" ? true : lower === "false" ? false : undefined
}

const parseRatio = (value: string): number | undefined => {
  const ratio = Number(value)
  return value !== "" && Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : undefined
}

const parseSamplerName = (value: string): SamplerName | undefined =>
  samplerNames.find((name) => name === value.toLowerCase())

const regionPattern = /^[a-z0-9][a-z0-9-]{0,31}$/

const parseRegions = (value: string): ReadonlyArray<string> | undefined => {
  const regions = value.split(",").map((region) => region.trim())
  return regions.every((region) => regionPattern.test(region)) ? [...new Set(regions)] : undefined
}

const parseServiceName = (value: string): string | undefined =>
  value.length <= 255 && !/\p{Cc}/u.test(value) ? value : undefined

/** The OTLP gRPC collector: the first of {@link otlpEndpointVariables} set, else `http://localhost:4317`. */
export const otlpEndpoint: Effect.Effect<string, InvalidConfig> = Effect.gen(function*() {
  for (const name of otlpEndpointVariables) {
    const value = yield* variable(name, undefined, "an http(s) URL such as http://localhost:4317", parseUrl)
    if (value !== undefined) return value
  }
  return "http://localhost:4317"
})

/** `OTEL_TRACES_SAMPLER` and, for the ratio samplers, `OTEL_TRACES_SAMPLER_ARG`. */
export const sampler: Effect.Effect<SamplerSetting, InvalidConfig> = Effect.gen(function*() {
  const name = yield* variable(
    "OTEL_TRACES_SAMPLER",
    "parentbased_always_on",
    `one of ${samplerNames.join(", ")}`,
    parseSamplerName
  )
  const ratio = name.endsWith("traceidratio")
    ? yield* variable("OTEL_TRACES_SAMPLER_ARG", 1, "a number from 0 to 1", parseRatio)
    : 1
  return { name, ratio }
})

/** `OTEL_SERVICE_NAME`, else the program's own `fallback`. */
export const serviceName = (fallback: string): Effect.Effect<string, InvalidConfig> =>
  variable(
    "OTEL_SERVICE_NAME",
    fallback,
    "a name of at most 255 characters without control characters",
    parseServiceName
  )

/** `PROMETHEUS_BIND`: where `/metrics` listens, `0.0.0.0:8000` by default. */
export const metricsBind: Effect.Effect<Bind, InvalidConfig> = variable(
  "PROMETHEUS_BIND",
  { host: "0.0.0.0", port: 8000 },
  "host:port with a port from 0 to 65535, such as 0.0.0.0:8000",
  parseBind
)

/**
 * `PROMETHEUS_BEARER_TOKEN`: when set, `/metrics` answers only requests with `Authorization: Bearer <token>`. Kept
 * {@link Redacted}: it prints as `<redacted>`, and an invalid value is never repeated in the error.
 */
export const metricsBearerToken: Effect.Effect<Option.Option<Redacted.Redacted<string>>, InvalidConfig> = variable(
  "PROMETHEUS_BEARER_TOKEN",
  Option.none(),
  "a bearer token of 1 to 4096 characters: letters, digits and -._~+/, then any '='",
  (value) =>
    value.length <= 4096 && /^[A-Za-z0-9\-._~+/]+=*$/.test(value) ? Option.some(Redacted.make(value)) : undefined,
  () => "<redacted>"
)

/** `OTEL_SDK_DISABLED`: tracing off, metrics still on. */
export const sdkDisabled: Effect.Effect<boolean, InvalidConfig> = variable(
  "OTEL_SDK_DISABLED",
  false,
  "true or false",
  parseBoolean
)

/** `DAG_REGIONS`: the region label values metrics keep; any other region is `other`. */
export const regions: Effect.Effect<ReadonlyArray<string>, InvalidConfig> = variable(
  "DAG_REGIONS",
  defaultRegions,
  "a comma-separated list of lowercase region names (letters, digits, '-'; at most 32 characters each)",
  parseRegions
)

/**
 * Reads and validates every setting of SPEC §3. `fallbackServiceName` is the
 * program's own name, used when `OTEL_SERVICE_NAME` is unset.
 */
export const settings = (fallbackServiceName: string): Effect.Effect<Settings, InvalidConfig> =>
  Effect.all({
    serviceName: serviceName(fallbackServiceName),
    otlpEndpoint,
    metricsBind,
    sampler,
    sdkDisabled,
    regions
  })

/** `MONGODB_URI` if set: a `mongodb://` or `mongodb+srv://` URL. */
export const mongodbUri: Effect.Effect<Option.Option<string>, InvalidConfig> = variable(
  "MONGODB_URI",
  Option.none(),
  "a mongodb:// or mongodb+srv:// connection string",
  (value) => /^mongodb(\+srv)?:\/\/[^/\s]+/.test(value) ? Option.some(value) : undefined,
  redactCredentials
)
