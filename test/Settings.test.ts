/**
 * The settings of SPEC §3 as Effect `Config` values: defaults, every variable read, from the environment or any
 * `ConfigProvider`, and every bad value rejected with one line naming the variable, the value and what is accepted.
 */
import { assert, describe, it } from "@effect/vitest"
import { Config, ConfigProvider, Effect, Layer, Option, Redacted } from "effect"
import { DagMetrics } from "../src/dag/index.ts"
import { Metrics, Settings } from "../src/index.ts"
import { withEnv } from "./support/Environment.ts"

/** The settings `ObservabilityLive` and the DAG read at start. */
const all = {
  serviceName: Settings.serviceName,
  otlpEndpoint: Settings.otlpEndpoint,
  metricsBind: Settings.metricsBind,
  sampler: Settings.sampler,
  sdkDisabled: Settings.sdkDisabled,
  resourceAttributes: Settings.resourceAttributes,
  metricsBearerToken: Settings.metricsBearerToken,
  mongodbUri: Settings.mongodbUri,
  regions: DagMetrics.regions
}

/** Every variable set, and what reading {@link all} gives then (the token compared by value). */
const everyVariable = {
  OTEL_SERVICE_NAME: "dag-a",
  OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
  PROMETHEUS_BIND: "[::1]:9464",
  OTEL_TRACES_SAMPLER: "ParentBased_TraceIdRatio",
  OTEL_TRACES_SAMPLER_ARG: "0.25",
  OTEL_SDK_DISABLED: "TRUE",
  OTEL_RESOURCE_ATTRIBUTES: "service.version=1.2.0,deployment.environment.name=prod",
  PROMETHEUS_BEARER_TOKEN: "t0ken",
  MONGODB_URI: "mongodb://127.0.0.1:27017/dag",
  DAG_REGIONS: "eu, us-2,eu"
}

const readEveryVariable = Effect.gen(function*() {
  const { metricsBearerToken, ...settings } = yield* Settings.read(all)
  assert.deepStrictEqual(settings, {
    serviceName: Option.some("dag-a"),
    otlpEndpoint: "http://collector:4317",
    metricsBind: { host: "::1", port: 9464 },
    sampler: { name: "parentbased_traceidratio", ratio: 0.25 },
    sdkDisabled: true,
    resourceAttributes: { "service.version": "1.2.0", "deployment.environment.name": "prod" },
    mongodbUri: Option.some("mongodb://127.0.0.1:27017/dag"),
    regions: ["eu", "us-2"]
  })
  assert.strictEqual(Option.map(metricsBearerToken, Redacted.value).pipe(Option.getOrUndefined), "t0ken")
})

describe("Settings", () => {
  it.effect("defaults: no service name, localhost:4317, 0.0.0.0:8000, parentbased_always_on, tracing on", () =>
    Effect.gen(function*() {
      const settings = yield* Settings.read(all)
      assert.deepStrictEqual(settings, {
        serviceName: Option.none(),
        otlpEndpoint: "http://localhost:4317",
        metricsBind: { host: "0.0.0.0", port: 8000 },
        sampler: { name: "parentbased_always_on", ratio: 1 },
        sdkDisabled: false,
        resourceAttributes: {},
        metricsBearerToken: Option.none(),
        mongodbUri: Option.none(),
        regions: DagMetrics.defaultRegions
      })
    }).pipe(withEnv({})))

  it.effect("reads every variable from the environment", () => readEveryVariable.pipe(withEnv(everyVariable)))

  it.effect("reads them from any ConfigProvider, such as ConfigProvider.fromUnknown", () =>
    readEveryVariable.pipe(Effect.provide(ConfigProvider.layer(ConfigProvider.fromUnknown(everyVariable)))))

  it.effect.each([
    [{ OTLP_GRPC_ENDPOINT: "http://a:1", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:2", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:3" }, "http://a:1"],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:2", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:3" }, "http://b:2"],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "https://c:3" }, "https://c:3"],
    [{ OTLP_GRPC_ENDPOINT: "  ", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:3" }, "http://c:3"]
  ] as const)("OTLP endpoint precedence %#", ([env, expected]) =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Settings.read(Settings.otlpEndpoint), expected)
    }).pipe(withEnv(env)))

  it.effect("a ratio sampler without an argument samples everything; other samplers ignore the argument", () =>
    Effect.gen(function*() {
      const sampler = Settings.read(Settings.sampler)
      assert.deepStrictEqual(yield* sampler.pipe(withEnv({ OTEL_TRACES_SAMPLER: "traceidratio" })), {
        name: "traceidratio",
        ratio: 1
      })
      assert.deepStrictEqual(
        yield* sampler.pipe(withEnv({ OTEL_TRACES_SAMPLER: "always_off", OTEL_TRACES_SAMPLER_ARG: "junk" })),
        { name: "always_off", ratio: 1 }
      )
    }))

  it.effect("PROMETHEUS_BIND accepts :port and port 0", () =>
    Effect.gen(function*() {
      const bind = Settings.read(Settings.metricsBind)
      assert.deepStrictEqual(yield* bind.pipe(withEnv({ PROMETHEUS_BIND: ":9000" })), { host: "0.0.0.0", port: 9000 })
      assert.deepStrictEqual(yield* bind.pipe(withEnv({ PROMETHEUS_BIND: "127.0.0.1:0" })), {
        host: "127.0.0.1",
        port: 0
      })
    }))

  it.effect("OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs, percent-decoded, blanks trimmed", () =>
    Effect.gen(function*() {
      const attributes = Settings.read(Settings.resourceAttributes)
      assert.deepStrictEqual(yield* attributes.pipe(withEnv({ OTEL_RESOURCE_ATTRIBUTES: "a=b,c=d%20e" })), {
        a: "b",
        c: "d e"
      })
      assert.deepStrictEqual(
        yield* attributes.pipe(withEnv({ OTEL_RESOURCE_ATTRIBUTES: " team = dag , k%3D1=x%2Cy" })),
        { team: "dag", "k=1": "x,y" }
      )
    }))

  const bad: ReadonlyArray<readonly [Record<string, string>, string]> = [
    [
      { PROMETHEUS_BIND: "8000" },
      "PROMETHEUS_BIND=\"8000\" is not valid: expected host:port with a port from 0 to 65535, such as 0.0.0.0:8000"
    ],
    [
      { PROMETHEUS_BIND: "localhost:70000" },
      "PROMETHEUS_BIND=\"localhost:70000\" is not valid: expected host:port with a port from 0 to 65535, such as 0.0.0.0:8000"
    ],
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4317" },
      "OTEL_EXPORTER_OTLP_ENDPOINT=\"localhost:4317\" is not valid: expected an http(s) URL such as http://localhost:4317"
    ],
    [
      { OTLP_GRPC_ENDPOINT: "grpc://collector:4317" },
      "OTLP_GRPC_ENDPOINT=\"grpc://collector:4317\" is not valid: expected an http(s) URL such as http://localhost:4317"
    ],
    [
      { OTEL_TRACES_SAMPLER: "sometimes" },
      "OTEL_TRACES_SAMPLER=\"sometimes\" is not valid: expected one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio"
    ],
    [
      { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "1.5" },
      "OTEL_TRACES_SAMPLER_ARG=\"1.5\" is not valid: expected a number from 0 to 1"
    ],
    [
      { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "half" },
      "OTEL_TRACES_SAMPLER_ARG=\"half\" is not valid: expected a number from 0 to 1"
    ],
    [{ OTEL_SDK_DISABLED: "yes please" }, "OTEL_SDK_DISABLED=\"yes please\" is not valid: expected true or false"],
    [
      { OTEL_SERVICE_NAME: "a\u0007b" },
      "OTEL_SERVICE_NAME=\"a\\u0007b\" is not valid: expected a name of at most 255 characters without control characters"
    ],
    [
      { OTEL_RESOURCE_ATTRIBUTES: "novalue" },
      "OTEL_RESOURCE_ATTRIBUTES=\"novalue\" is not valid: expected comma-separated key=value pairs, percent-encoded, such as service.version=1.2.0,team=dag"
    ],
    [
      { DAG_REGIONS: "eu,,us" },
      "DAG_REGIONS=\"eu,,us\" is not valid: expected a comma-separated list of lowercase region names (letters, digits, '-'; at most 32 characters each)"
    ],
    [
      { DAG_REGIONS: "EU" },
      "DAG_REGIONS=\"EU\" is not valid: expected a comma-separated list of lowercase region names (letters, digits, '-'; at most 32 characters each)"
    ]
  ]

  it.effect.each(bad)("a bad value fails with one line naming variable, value and what is accepted: %#", ([env, line]) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Settings.read(all))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.variable, Object.keys(env).at(-1))
      assert.strictEqual(error.message, line)
      assert.notInclude(error.message, "\n")
      assert.strictEqual(error.stack, `InvalidConfig: ${line}`)
    }).pipe(withEnv(env)))
})

describe("DagMetrics.layerConfig", () => {
  it.effect("keeps the regions DAG_REGIONS names; any other region is other", () =>
    Effect.gen(function*() {
      const dag = yield* DagMetrics.DagMetrics
      assert.deepStrictEqual(["eu", "us-2", "eu-central", "mars"].map(dag.region), ["eu", "us-2", "other", "other"])
    }).pipe(
      Effect.provide(DagMetrics.layerConfig().pipe(Layer.provide(Metrics.layerTest))),
      withEnv({ DAG_REGIONS: "eu,us-2" })
    ))

  it.effect("a bad DAG_REGIONS fails the layer at build with the one-line InvalidConfig", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(DagMetrics.layerConfig()).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.variable, "DAG_REGIONS")
    }).pipe(Effect.provide(Metrics.layerTest), withEnv({ DAG_REGIONS: "eu,,us" })))
})

describe("Settings.fromConfigError", () => {
  it.effect("a plain Effect config error becomes one line naming the variable", () =>
    Effect.gen(function*() {
      const configError = yield* Effect.flip(Config.Port("PORT"))
      const error = Settings.fromConfigError(configError)
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.variable, "PORT")
      assert.match(error.message, /^PORT is not valid: \S/)
      assert.notInclude(error.message, "\n")
      assert.strictEqual(error.stack, `InvalidConfig: ${error.message}`)
      // Settings.read says the same of a plain Config.
      assert.deepStrictEqual(yield* Effect.flip(Settings.read(Config.Port("PORT"))), error)
    }).pipe(withEnv({ PORT: "abc" })))

  it.effect("a required variable that is not set is said to be not set, in one line", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Settings.read(Config.String("REQUIRED_URL")))
      assert.strictEqual(error.message, "REQUIRED_URL is not set: Expected string")
      assert.strictEqual(error.stack, `InvalidConfig: ${error.message}`)
    }).pipe(withEnv({})))
})

describe("Settings.setting and Settings.optional", () => {
  const rate = Settings.setting("RATE", 10, { ...Settings.positive, shown: (text) => `<${text.length} chars>` })

  it.effect("the fallback when unset or blank, the parsed value when accepted", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Settings.read(rate).pipe(withEnv({})), 10)
      assert.strictEqual(yield* Settings.read(rate).pipe(withEnv({ RATE: "   " })), 10)
      assert.strictEqual(yield* Settings.read(rate).pipe(withEnv({ RATE: " 2.5 " })), 2.5)
      const ratio = Settings.optional("SHARE", Settings.ratio)
      assert.deepStrictEqual(yield* Settings.read(ratio).pipe(withEnv({})), Option.none())
      assert.deepStrictEqual(yield* Settings.read(ratio).pipe(withEnv({ SHARE: "0.5" })), Option.some(0.5))
    }))

  it.effect("a rejected value names the variable, shows the value as `shown` says, and what is accepted", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Settings.read(rate))
      assert.strictEqual(error.message, "RATE=\"<4 chars>\" is not valid: expected a number above 0")
    }).pipe(withEnv({ RATE: "-1.5" })))
})

describe("Settings.mongodbUri", () => {
  it.effect("is None when unset and the URI when valid", () =>
    Effect.gen(function*() {
      const uri = Settings.read(Settings.mongodbUri)
      assert.isTrue(Option.isNone(yield* uri.pipe(withEnv({}))))
      assert.deepStrictEqual(
        yield* uri.pipe(withEnv({ MONGODB_URI: "mongodb://127.0.0.1:27017/dag" })),
        Option.some("mongodb://127.0.0.1:27017/dag")
      )
    }))

  it.effect("a bad URI is rejected without showing its credentials", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Settings.read(Settings.mongodbUri))
      assert.strictEqual(
        error.message,
        "MONGODB_URI=\"postgres://***@db:5432\" is not valid: expected a mongodb:// or mongodb+srv:// connection string"
      )
      assert.notInclude(error.message, "hunter2")
    }).pipe(withEnv({ MONGODB_URI: "postgres://admin:hunter2@db:5432" })))
})

describe("Settings.redactCredentials", () => {
  it("hides the user info of every URL in a text, up to the last @ of the authority", () => {
    assert.strictEqual(
      Settings.redactCredentials("failed: mongodb://u:p@ss@h1:1,h2:2/dag?x=1 and mongodb+srv://a:b@c.example/ then"),
      "failed: mongodb://***@h1:1,h2:2/dag?x=1 and mongodb+srv://***@c.example/ then"
    )
    assert.strictEqual(Settings.redactCredentials("mongodb://127.0.0.1:27017/dag"), "mongodb://127.0.0.1:27017/dag")
  })
})

describe("Settings.formatAddress", () => {
  it("writes host:port, an IPv6 host in brackets", () => {
    assert.strictEqual(Settings.formatAddress("127.0.0.1", 9464), "127.0.0.1:9464")
    assert.strictEqual(Settings.formatAddress("::1", 9464), "[::1]:9464")
    assert.deepStrictEqual(Settings.parseBind(Settings.formatAddress("::1", 9464)), { host: "::1", port: 9464 })
  })
})
