/**
 * The library as a user gets it: `npm pack` (which builds `dist/`), then the
 * tarball installed into a fresh project outside the repository together with
 * the newest `@opentelemetry/api` 1.x and the newest `effect` the peer range
 * admits. In that project: one copy of each peer, every TypeScript block of
 * README.md type-checks, importing the package root loads neither `mongodb`
 * nor `@grpc/grpc-js`, a plain HTTP app (fixtures/hello.ts, public exports
 * only) serves its own metric families and none of the DAG's, OpenTelemetry
 * code in its handler sees the Effect span, a taken `/metrics` port stops it
 * with one line, and the README's specs pass under `@effect/vitest`.
 *
 * Needs the npm registry (the packages are taken from npm's cache when there).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { once } from "node:events"
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, assert, beforeAll, describe, it } from "vitest"
import { promtool } from "../../servers/Servers.ts"
import { readmeBlocks } from "./Readme.ts"

const repo = fileURLToPath(new URL("../../", import.meta.url))
const manifest = JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as {
  readonly peerDependencies: Readonly<Record<string, string>>
}

interface Run {
  readonly code: number
  readonly output: string
}

/** Runs `command` in `cwd` to its end; its exit code and everything it printed. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> =>
  new Promise((resolve) => {
    execFile(command, [...args], { cwd, env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : 1, output: stdout + stderr }))
  })

const succeed = async (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> => {
  const result = await run(command, args, cwd)
  if (result.code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${result.code}:\n${result.output}`)
  return result.output
}

/** Every installed copy of package `name` below `dir`'s `node_modules`, nested ones included. */
const copiesOf = (dir: string, name: string): ReadonlyArray<string> => {
  const modules = join(dir, "node_modules")
  if (!existsSync(modules)) return []
  const here = existsSync(join(modules, name, "package.json")) ? [join(modules, name)] : []
  const nested = readdirSync(modules).flatMap((entry) =>
    entry.startsWith("@")
      ? readdirSync(join(modules, entry)).map((scoped) => join(modules, entry, scoped))
      : [join(modules, entry)]
  )
  return [...here, ...nested.flatMap((child) => copiesOf(child, name))]
}

/** The plain HTTP app, written against the published package only (kept out of the repository's own typecheck). */
const fixture = fileURLToPath(new URL("./fixtures/hello.ts", import.meta.url))

let project = ""
let newestApi = ""
const packs = mkdtempSync(join(tmpdir(), "dag-observability-pack-"))

beforeAll(async () => {
  project = mkdtempSync(join(tmpdir(), "dag-observability-consumer-"))
  const tarball = (await succeed("npm", ["pack", "--silent", "--pack-destination", packs], repo)).trim().split("\n").at(-1)!
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  const peers = manifest.peerDependencies
  const versions = await succeed("npm", ["view", `@opentelemetry/api@${peers["@opentelemetry/api"]}`, "version", "--json"], project)
  newestApi = [JSON.parse(versions) as string | ReadonlyArray<string>].flat().at(-1)!
  await succeed("npm", [
    "install",
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    join(packs, tarball),
    `effect@${peers["effect"]}`,
    `@effect/platform-node@${peers["@effect/platform-node"]}`,
    `@effect/opentelemetry@${peers["@effect/opentelemetry"]}`,
    `@opentelemetry/api@${newestApi}`,
    "@effect/vitest@^4",
    "vitest@^5",
    "@types/node@^24"
  ], project)
}, 600_000)

afterAll(() => {
  for (const dir of [project, packs]) if (dir !== "") rmSync(dir, { recursive: true, force: true })
})

const installedVersion = (name: string): string =>
  (JSON.parse(readFileSync(join(project, "node_modules", name, "package.json"), "utf8")) as { version: string }).version

describe("the packed library in a fresh project", () => {
  it("ships dist/ with types and LICENSE, and installs one copy of each peer and of the OpenTelemetry SDK", async () => {
    const installed = join(project, "node_modules", "dag-observability")
    for (const file of ["dist/index.js", "dist/index.d.ts", "dist/dag/index.js", "LICENSE", "proto/poh.proto"]) {
      assert.isTrue(existsSync(join(installed, file)), `${file} is in the tarball`)
    }
    for (const peer of ["effect", "@opentelemetry/api", "@effect/platform-node", "@effect/opentelemetry"]) {
      assert.deepStrictEqual(copiesOf(project, peer), [join(project, "node_modules", peer)], `one copy of ${peer}`)
    }
    assert.strictEqual(installedVersion("@opentelemetry/api"), newestApi, "the newest @opentelemetry/api the peer range admits")
    // Two copies of the SDK would load twice and make the MongoDB and gRPC spans with another copy than Effect's.
    for (const sdk of ["@opentelemetry/sdk-trace", "@opentelemetry/sdk-trace-base", "@opentelemetry/core"]) {
      assert.deepStrictEqual(copiesOf(project, sdk), [join(project, "node_modules", sdk)], `one copy of ${sdk}`)
    }
  })

  it("type-checks every TypeScript block of README.md, and the fixture app", async () => {
    const blocks = readmeBlocks(join(repo, "README.md"))
    assert.isAtLeast(blocks.length, 4)
    for (const block of blocks) writeFileSync(join(project, block.file), block.code)
    copyFileSync(fixture, join(project, "hello.ts"))
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2024",
          lib: ["ES2024"],
          module: "NodeNext",
          moduleResolution: "NodeNext",
          types: ["node"],
          strict: true,
          exactOptionalPropertyTypes: true,
          skipLibCheck: true,
          noEmit: true
        },
        include: [...blocks.map((block) => block.file), "hello.ts"]
      })
    )
    const result = await run(join(repo, "node_modules", ".bin", "tsc"), ["-p", project], project)
    const where = blocks.map((block) => `${block.file} = README.md line ${block.line}`).join("\n")
    assert.strictEqual(result.code, 0, `${result.output}\n${where}`)
  })

  it("loads neither mongodb nor @grpc/grpc-js when the package root is imported", async () => {
    writeFileSync(
      join(project, "imports.ts"),
      [
        "import { registerHooks } from \"node:module\"",
        "const loaded: Array<string> = []",
        "registerHooks({ resolve: (specifier, context, next) => { const r = next(specifier, context); loaded.push(r.url); return r } })",
        "await import(\"dag-observability\")",
        "console.log(JSON.stringify(loaded))"
      ].join("\n")
    )
    const loaded = JSON.parse(await succeed(process.execPath, ["imports.ts"], project)) as ReadonlyArray<string>
    assert.isTrue(loaded.some((url) => url.includes("/node_modules/dag-observability/dist/index.js")))
    assert.isTrue(loaded.some((url) => url.includes("/node_modules/effect/")))
    assert.deepStrictEqual(loaded.filter((url) => /\/node_modules\/(mongodb|bson|@grpc\/)/.test(url)), [])
  })

  it("runs the README's specs with ObservabilityTest", async () => {
    const specs = readmeBlocks(join(repo, "README.md")).filter((block) => block.file.endsWith(".test.ts"))
    assert.isAtLeast(specs.length, 1)
    for (const block of specs) writeFileSync(join(project, block.file), block.code)
    const result = await run(process.execPath, [
      join(project, "node_modules", "vitest", "vitest.mjs"),
      "run",
      "--root",
      project,
      ...specs.map((block) => block.file)
    ], project, { NO_COLOR: "1", FORCE_COLOR: "0" })
    assert.strictEqual(result.code, 0, result.output)
    const declared = specs.reduce((count, block) => count + block.code.split("it.effect(").length - 1, 0)
    assert.match(result.output, new RegExp(`Tests\\s+${declared} passed \\(${declared}\\)`), result.output)
  })
})

/** A started fixture app: its process, what it printed so far, and its exit. */
interface App {
  readonly child: ChildProcess
  readonly output: Array<string>
  readonly exited: Promise<number | null>
}

const start = (env: Record<string, string>): App => {
  copyFileSync(fixture, join(project, "hello.ts"))
  const child = spawn(process.execPath, ["hello.ts"], {
    cwd: project,
    env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })
  const output: Array<string> = []
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.on("data", (chunk: Buffer) => output.push(...chunk.toString().split("\n").filter((line) => line !== "")))
  }
  return { child, output, exited: once(child, "exit").then(([code]) => code as number | null) }
}

/** The first URL a line of `app`'s output gives after `marker`. */
const printedUrl = async (app: App, marker: RegExp): Promise<string> => {
  for (let waited = 0; waited < 20_000; waited += 50) {
    for (const line of app.output) {
      const url = marker.exec(line)?.[1]
      if (url !== undefined) return url
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`no line matching ${marker}:\n${app.output.join("\n")}`)
}

const metricFamilies = (text: string) =>
  new Set(text.split("\n").flatMap((line) => /^# TYPE (\S+) /.exec(line)?.[1] ?? []))

describe("a plain HTTP app on the public exports", () => {
  let app: App | undefined

  afterAll(async () => {
    if (app !== undefined && app.child.exitCode === null) {
      app.child.kill("SIGKILL")
      await app.exited
    }
  })

  it("serves its families and none of the DAG's; OpenTelemetry code sees the Effect span; SIGTERM exits 0", async () => {
    app = start({ PROMETHEUS_BIND: "127.0.0.1:0" })
    const metricsUrl = await printedUrl(app, /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/)
    const base = await printedUrl(app, /Listening on (http:\/\/127\.0\.0\.1:\d+)/)

    const answer = await fetch(`${base}/hello/ada`)
    assert.strictEqual(answer.status, 200)
    const body = await answer.json() as {
      readonly greeting: string
      readonly effect: { readonly traceId: string; readonly spanId: string }
      readonly opentelemetry: { readonly traceId: string; readonly spanId: string } | null
    }
    assert.strictEqual(body.greeting, "hello ada")
    assert.match(body.effect.traceId, /^[0-9a-f]{32}$/)
    assert.deepStrictEqual(body.opentelemetry, body.effect, "@opentelemetry/api sees the Effect span as active")

    const text = await (await fetch(metricsUrl)).text()
    const families = metricFamilies(text)
    for (const family of ["http_server_request_duration_seconds", "otlp_exported_spans_total", "process_cpu_seconds_total"]) {
      assert.isTrue(families.has(family), `${family} is served`)
    }
    assert.isTrue([...families].some((family) => family.startsWith("nodejs_")))
    const dag = [...families].filter((family) =>
      /^(poh_|grpc_|mongodb_|tx_committed|presence_calls|storage_latency)/.test(family)
    )
    assert.deepStrictEqual(dag, [], "no DAG, gRPC or MongoDB family in a plain HTTP app")
    assert.include(text, "http_server_request_duration_seconds_count{method=\"GET\",route=\"/hello/:name\",status_code=\"200\"} 1")
    const check = await promtool(["check", "metrics"], text)
    assert.deepStrictEqual({ code: check.code, output: check.stdout + check.stderr }, { code: 0, output: "" })

    const openMetrics = await (await fetch(metricsUrl, { headers: { accept: "application/openmetrics-text" } })).text()
    assert.include(openMetrics, `trace_id="${body.effect.traceId}"`, "the latency sample's exemplar is the request's trace")

    const taken = metricsUrl.replace(/^http:\/\/|\/metrics$/g, "")
    const second = start({ PROMETHEUS_BIND: taken })
    assert.strictEqual(await second.exited, 1)
    assert.strictEqual(second.output.length, 1, second.output.join("\n"))
    assert.match(second.output[0]!, new RegExp(`cannot serve /metrics on ${taken} \\(PROMETHEUS_BIND\\): .*EADDRINUSE`))

    app.child.kill("SIGTERM")
    assert.strictEqual(await app.exited, 0)
    assert.isTrue(app.output.some((line) => line.includes("greeting ada")))
  })
})
