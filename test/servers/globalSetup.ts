/**
 * Vitest globalSetup: starts FerretDB and Jaeger once per run and provides
 * their addresses to the tests (`inject("mongodbUri")`, ...). Set MONGODB_URI,
 * or OTEL_EXPORTER_OTLP_ENDPOINT and JAEGER_QUERY_URL together, to use your own
 * servers instead. Prometheus is started per test with `startPrometheus`.
 */
import type { TestProject } from "vitest/node"
import { startFerretDB, startJaeger } from "../../servers/Servers.ts"

declare module "vitest" {
  export interface ProvidedContext {
    /** MongoDB connection string (FerretDB started here, or MONGODB_URI). */
    mongodbUri: string
    /** Version of the server behind `mongodbUri`, or "external". */
    mongodbVersion: string
    /** OTLP gRPC endpoint, `http://127.0.0.1:<port>` (or OTEL_EXPORTER_OTLP_ENDPOINT). */
    otlpEndpoint: string
    /** Jaeger HTTP query API base URL (or JAEGER_QUERY_URL). */
    jaegerQueryUrl: string
    /** Version of the Jaeger behind `jaegerQueryUrl`, or "external". */
    jaegerVersion: string
  }
}

/** Starts the shared servers (or takes them from the environment) and returns the teardown that stops them. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const env = process.env
  if ((env.OTEL_EXPORTER_OTLP_ENDPOINT === undefined) !== (env.JAEGER_QUERY_URL === undefined)) {
    throw new Error("set both OTEL_EXPORTER_OTLP_ENDPOINT and JAEGER_QUERY_URL to use your own Jaeger, or neither")
  }
  const [ferretdb, jaeger] = await Promise.allSettled([
    env.MONGODB_URI === undefined ? startFerretDB() : undefined,
    env.JAEGER_QUERY_URL === undefined ? startJaeger() : undefined
  ])
  const teardown = async (): Promise<void> => {
    if (ferretdb.status === "fulfilled") await ferretdb.value?.dispose()
    if (jaeger.status === "fulfilled") await jaeger.value?.stop()
  }
  if (ferretdb.status === "rejected" || jaeger.status === "rejected") {
    await teardown()
    const errors: unknown[] = [ferretdb, jaeger].flatMap((result) =>
      result.status === "rejected" ? [result.reason] : []
    )
    throw new Error(errors.map((error) => (error instanceof Error ? error.message : String(error))).join("\n"), {
      cause: errors[0]
    })
  }

  const mongo = ferretdb.value
  project.provide("mongodbUri", mongo?.uri ?? String(env.MONGODB_URI))
  project.provide("mongodbVersion", mongo === undefined ? "external" : `FerretDB ${mongo.version}`)
  project.provide("otlpEndpoint", jaeger.value?.otlpEndpoint ?? String(env.OTEL_EXPORTER_OTLP_ENDPOINT))
  project.provide("jaegerQueryUrl", jaeger.value?.queryUrl ?? String(env.JAEGER_QUERY_URL))
  project.provide("jaegerVersion", jaeger.value === undefined ? "external" : `Jaeger ${jaeger.value.version}`)

  console.log(
    `mongodb: ${mongo === undefined ? "MONGODB_URI (external)" : `FerretDB ${mongo.version} at ${mongo.uri}`}`
  )
  console.log(
    `jaeger:  ${jaeger.value === undefined ? "JAEGER_QUERY_URL (external)" : `Jaeger ${jaeger.value.version}, OTLP ${jaeger.value.otlpEndpoint}, query ${jaeger.value.queryUrl}`}`
  )
  return teardown
}
