/**
 * Who is tracing: `Tracing.resourceConfig` completes the program's resource from the environment as OpenTelemetry
 * says (`OTEL_SERVICE_NAME` over the program's name; `OTEL_RESOURCE_ATTRIBUTES` under what the program gives), and
 * the resource reaches every span the SDK records.
 */
import { assert, describe, it } from "@effect/vitest"
import type { ReadableSpan, SpanProcessor } from "@opentelemetry/sdk-trace-base"
import { AlwaysOnSampler } from "@opentelemetry/sdk-trace-base"
import { Effect, Layer } from "effect"
import { Metrics, Settings, Tracing } from "../src/index.ts"
import { withEnv } from "./support/Environment.ts"

const resource = (given: Tracing.Resource | string) => Settings.read(Tracing.resourceConfig(given))

const fromEnvironment = "service.version=1.2.0,deployment.environment.name=prod,team=dag%20core"

describe("Tracing.resourceConfig", () => {
  it.effect("the program's name, unless OTEL_SERVICE_NAME names the service", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* resource("sending-dag").pipe(withEnv({})), {
        serviceName: "sending-dag",
        serviceVersion: undefined,
        attributes: {}
      })
      const named = yield* resource("sending-dag").pipe(withEnv({ OTEL_SERVICE_NAME: "dag-a" }))
      assert.strictEqual(named.serviceName, "dag-a")
      const both = { OTEL_SERVICE_NAME: "dag-a", OTEL_RESOURCE_ATTRIBUTES: "service.name=dag-b" }
      assert.strictEqual((yield* resource({ serviceName: "sending-dag" }).pipe(withEnv(both))).serviceName, "dag-a")
    }))

  it.effect("service.version and other attributes of OTEL_RESOURCE_ATTRIBUTES complete a resource that has none", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* resource({ serviceName: "poh-node" }), {
        serviceName: "poh-node",
        serviceVersion: "1.2.0",
        attributes: { "deployment.environment.name": "prod", team: "dag core" }
      })
    }).pipe(withEnv({ OTEL_RESOURCE_ATTRIBUTES: fromEnvironment })))

  it.effect("the program's own name, serviceVersion and attributes win over OTEL_RESOURCE_ATTRIBUTES", () =>
    Effect.gen(function*() {
      const given = yield* resource({
        serviceName: "poh-node",
        serviceVersion: "2.0.0",
        attributes: { "deployment.environment.name": "staging", "host.role": "sequencer" }
      })
      assert.deepStrictEqual(given, {
        serviceName: "poh-node",
        serviceVersion: "2.0.0",
        attributes: { "deployment.environment.name": "staging", team: "dag core", "host.role": "sequencer" }
      })
    }).pipe(withEnv({ OTEL_RESOURCE_ATTRIBUTES: `${fromEnvironment},service.name=elsewhere` })))

  it.effect("a bad OTEL_RESOURCE_ATTRIBUTES stops Tracing.layerConfig at build with one line naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(Tracing.layerConfig("poh-node")).pipe(Effect.scoped))
      assert.strictEqual(error._tag, "InvalidConfig")
      assert.strictEqual(error.variable, "OTEL_RESOURCE_ATTRIBUTES")
      assert.match(error.message, /^OTEL_RESOURCE_ATTRIBUTES="novalue" is not valid: expected /)
      assert.notInclude(error.message, "\n")
    }).pipe(Effect.provide(Metrics.layerTest), withEnv({ OTEL_RESOURCE_ATTRIBUTES: "novalue" })))
})

describe("the resource on spans", () => {
  it.effect("Tracing.layerProvider puts the completed resource on every span the SDK records", () =>
    Effect.gen(function*() {
      const ended: Array<ReadableSpan> = []
      const recorder: SpanProcessor = {
        onStart: () => undefined,
        onEnd: (span) => void ended.push(span),
        forceFlush: () => Promise.resolve(),
        shutdown: () => Promise.resolve()
      }
      const completed = yield* resource({ serviceName: "poh-node", attributes: { "host.role": "sequencer" } })
      yield* Effect.void.pipe(
        Effect.withSpan("inner"),
        Effect.withSpan("outer"),
        Effect.provide(Tracing.layerProvider(recorder, {
          resource: completed,
          sampler: new AlwaysOnSampler(),
          shutdownTimeout: 0
        }))
      )
      assert.deepStrictEqual(ended.map((span) => span.name), ["inner", "outer"])
      for (const span of ended) {
        assert.deepInclude(span.resource.attributes, {
          "service.name": "dag-a",
          "service.version": "1.2.0",
          "deployment.environment.name": "prod",
          team: "dag core",
          "host.role": "sequencer"
        })
      }
    }).pipe(withEnv({ OTEL_SERVICE_NAME: "dag-a", OTEL_RESOURCE_ATTRIBUTES: fromEnvironment })))
})
