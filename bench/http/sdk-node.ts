/**
 * Contender (c) of `bench/http.ts`, loaded with `--import` before the app as
 * the OpenTelemetry docs ask: the ES-module loader hook, then `NodeSDK` with
 * the HTTP instrumentation. Spans go through the same batch processor as the
 * other traced contender, to an exporter that counts them.
 */
import { register } from "node:module"
import { HttpInstrumentation } from "@opentelemetry/instrumentation-http"
import { NodeSDK } from "@opentelemetry/sdk-node"
import { countingProcessor, makeTally } from "../support.ts"

// Without this hook, an ES-module app's `node:http` is never patched and no server span is recorded.
if (process.env["BENCH_NO_HOOK"] !== "1") register("@opentelemetry/instrumentation/hook.mjs", import.meta.url)

/** What the exporter saw. */
export const tally = makeTally()

/** The SDK's batch processor, flushed before a report. */
export const processor = countingProcessor(tally)

const sdk = new NodeSDK({
  serviceName: "bench-sdk-node",
  spanProcessors: [processor],
  instrumentations: [new HttpInstrumentation()]
})
sdk.start()
