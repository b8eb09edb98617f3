/** Smoke tests of the real servers that servers/Servers.ts starts. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { setTimeout as sleep } from "node:timers/promises"
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-grpc"
import { resourceFromAttributes } from "@opentelemetry/resources"
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { MongoClient } from "mongodb"
import { describe, expect, inject, it } from "vitest"
import { promtool, startFerretDB, startPrometheus } from "../../servers/Servers.ts"

const metricsText = "# HELP demo_total A demo counter.\n# TYPE demo_total counter\ndemo_total 7\n"

describe("test servers", () => {
  it("MongoDB: inserts a document and reads it back", async () => {
    const client = new MongoClient(inject("mongodbUri"), { serverSelectionTimeoutMS: 5_000 })
    try {
      const collection = client.db("smoke").collection<{ _id: string; n: number }>(`docs_${Date.now()}`)
      await collection.insertOne({ _id: "a", n: 42 })
      expect(await collection.findOne({ _id: "a" })).toEqual({ _id: "a", n: 42 })
      await collection.drop()
    } finally {
      await client.close()
    }
  })

  it("FerretDB: data survives stop() and start() on the same port", { timeout: 30_000 }, async () => {
    const ferretdb = await startFerretDB()
    const client = new MongoClient(ferretdb.uri, { serverSelectionTimeoutMS: 5_000 })
    try {
      const collection = client.db("smoke").collection<{ _id: string }>("restart")
      await collection.insertOne({ _id: "before" })
      await ferretdb.stop()
      const probe = new MongoClient(ferretdb.uri, { serverSelectionTimeoutMS: 500 })
      await expect(probe.db("admin").command({ ping: 1 })).rejects.toThrow(/./)
      await probe.close()
      await ferretdb.start()
      expect(await collection.find().toArray()).toEqual([{ _id: "before" }])
    } finally {
      await client.close()
      await ferretdb.dispose()
    }
  })

  it("Jaeger: a span sent over OTLP gRPC shows up in the query API", { timeout: 30_000 }, async () => {
    const service = `smoke-${Date.now()}`
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ "service.name": service }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: inject("otlpEndpoint") }))]
    })
    const span = provider.getTracer("smoke").startSpan("smoke-span")
    span.end()
    await provider.shutdown()

    const queryUrl = inject("jaegerQueryUrl")
    let services: unknown
    for (let attempt = 0; attempt < 50; attempt++) {
      const response = await fetch(`${queryUrl}/api/services`)
      expect(response.status).toBe(200)
      services = ((await response.json()) as { data: unknown }).data
      if (Array.isArray(services) && services.includes(service)) break
      await sleep(100)
    }
    expect(services).toContain(service)

    const trace = await fetch(`${queryUrl}/api/traces/${span.spanContext().traceId}`)
    expect(trace.status).toBe(200)
    const body = (await trace.json()) as { data: Array<{ spans: Array<{ operationName: string }> }> }
    expect(body.data[0]?.spans.map((s) => s.operationName)).toEqual(["smoke-span"])
  })

  it("Prometheus: scrapes a /metrics endpoint", { timeout: 30_000 }, async () => {
    const target = createServer((request, response) => {
      response.writeHead(request.url === "/metrics" ? 200 : 404, { "content-type": "text/plain; version=0.0.4" })
      response.end(request.url === "/metrics" ? metricsText : "")
    })
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.1", resolve))
    const prometheus = await startPrometheus({
      scrapeTargets: [`127.0.0.1:${(target.address() as AddressInfo).port}`]
    })
    try {
      let value: string | undefined
      for (let attempt = 0; attempt < 100 && value === undefined; attempt++) {
        const response = await fetch(`${prometheus.url}/api/v1/query?query=demo_total`)
        const body = (await response.json()) as { data: { result: Array<{ value: [number, string] }> } }
        value = body.data.result[0]?.value[1]
        if (value === undefined) await sleep(200)
      }
      expect(value).toBe("7")
    } finally {
      await prometheus.stop()
      target.close()
    }
  })

  it("promtool accepts the exposition text", async () => {
    expect(await promtool(["check", "metrics"], metricsText)).toEqual({ code: 0, stdout: "", stderr: "" })
  })
})
