import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Option } from "effect"
import { Config } from "../src/index.ts"

const withEnv = (env: Record<string, string>) => Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env })))

describe("Config.settings", () => {
  it.effect("defaults: the program's name, localhost:4317, 0.0.0.0:8000, parentbased_always_on, tracing on", () =>
    Effect.gen(function*() {
      const settings = yield* Config.settings("sending-dag")
      assert.deepStrictEqual(settings, {
        serviceName: "sending-dag",
        otlpEndpoint: "http://localhost:4317",
        metricsBind: { host: "0.0.0.0", port: 8000 },
        sampler: { name: "parentbased_always_on", ratio: 1 },
        sdkDisabled: false,
        regions: Config.defaultRegions
      })
    }).pipe(withEnv({})))

  it.effect("reads every variable", () =>
    Effect.gen(function*() {
      const settings = yield* Config.settings("sending-dag")
      assert.deepStrictEqual(settings, {
        serviceName: "dag-a",
        otlpEndpoint: "http://collector:4317",
        metricsBind: { host: "::1", port: 9464 },
        sampler: { name: "parentbased_traceidratio", ratio: 0.25 },
        sdkDisabled: true,
        regions: ["eu", "us-2"]
      })
    }).pipe(withEnv({
      OTEL_SERVICE_NAME: "dag-a",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
      PROMETHEUS_BIND: "[::1]:9464",
      OTEL_TRACES_SAMPLER: "ParentBased_TraceIdRatio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
      OTEL_SDK_DISABLED: "TRUE",
      DAG_REGIONS: "eu, us-2,eu"
    })))

  it.effect.each([
    [{ OTLP_GRPC_ENDPOINT: "http://a:1", OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:2", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:3" }, "http://a:1"],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://b:2", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:3" }, "http://b:2"],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: "https://c:3" }, "https://c:3"],
    [{ OTLP_GRPC_ENDPOINT: "  ", OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:3" }, "http://c:3"]
  ] as const)("OTLP endpoint precedence %#", ([env, expected]) =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Config.otlpEndpoint, expected)
    }).pipe(withEnv(env)))

  it.effect("a ratio sampler without an argument samples everything; other samplers ignore the argument", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Config.sampler.pipe(withEnv({ OTEL_TRACES_SAMPLER: "traceidratio" })), {
        name: "traceidratio",
        ratio: 1
      })
      assert.deepStrictEqual(
        yield* Config.sampler.pipe(withEnv({ OTEL_TRACES_SAMPLER: "always_off", OTEL_TRACES_SAMPLER_ARG: "junk" })),
        { name: "always_off", ratio: 1 }
      )
    }))

  it.effect("PROMETHEUS_BIND accepts :port and port 0", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* Config.metricsBind.pipe(withEnv({ PROMETHEUS_BIND: ":9000" })), {
        host: "0.0.0.0",
        port: 9000
      })
      assert.deepStrictEqual(yield* Config.metricsBind.pipe(withEnv({ PROMETHEUS_BIND: "127.0.0.1:0" })), {
        host: "127.0.0.1",
        port: 0
      })
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
      const error = yield* Effect.flip(Config.settings("x"))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.message, line)
      assert.notInclude(error.message, "\n")
    }).pipe(withEnv(env)))
})

describe("Config.mongodbUri", () => {
  it.effect("is None when unset and the URI when valid", () =>
    Effect.gen(function*() {
      assert.isTrue(Option.isNone(yield* Config.mongodbUri.pipe(withEnv({}))))
      assert.deepStrictEqual(
        yield* Config.mongodbUri.pipe(withEnv({ MONGODB_URI: "mongodb://127.0.0.1:27017/dag" })),
        Option.some("mongodb://127.0.0.1:27017/dag")
      )
    }))

  it.effect("a bad URI is rejected without showing its credentials", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Config.mongodbUri)
      assert.strictEqual(
        error.message,
        "MONGODB_URI=\"postgres://***@db:5432\" is not valid: expected a mongodb:// or mongodb+srv:// connection string"
      )
      assert.notInclude(error.message, "hunter2")
    }).pipe(withEnv({ MONGODB_URI: "postgres://admin:hunter2@db:5432" })))
})

describe("Config.redactCredentials", () => {
  it("hides the user info of every URL in a text, up to the last @ of the authority", () => {
    assert.strictEqual(
      Config.redactCredentials("failed: mongodb://u:p@ss@h1:1,h2:2/dag?x=1 and mongodb+srv://a:b@c.example/ then"),
      "failed: mongodb://***@h1:1,h2:2/dag?x=1 and mongodb+srv://***@c.example/ then"
    )
    assert.strictEqual(Config.redactCredentials("mongodb://127.0.0.1:27017/dag"), "mongodb://127.0.0.1:27017/dag")
  })
})
