/**
 * The rules of docs/architecture.md, read from the sources' import
 * statements: the core never imports the DAG, an index never loads an
 * optional peer (even through another module), services have no statics.
 */
import { readdirSync, readFileSync } from "node:fs"
import { dirname, join, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "vitest"

const src = fileURLToPath(new URL("../src/", import.meta.url))

const sources = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : []
  )

/** What `file` loads at run time: every `import`/`export … from` but `import type`/`export type`. */
const loads = (file: string): ReadonlyArray<string> =>
  [...readFileSync(file, "utf8").matchAll(/^(?:import|export)(\s+type\b)?[^;"]*?from\s+"([^"]+)"/gm)]
    .filter((match) => match[1] === undefined)
    .map((match) => match[2]!)
    .map((specifier) => specifier.startsWith(".") ? resolve(dirname(file), specifier) : specifier)

/** Every module `file` loads, directly or through the library's own modules. */
const closure = (file: string, seen = new Set<string>()): Set<string> => {
  for (const loaded of loads(file)) {
    if (seen.has(loaded)) continue
    seen.add(loaded)
    if (loaded.startsWith(src)) closure(loaded, seen)
  }
  return seen
}

const optionalPeers = ["mongodb", "@grpc/grpc-js", "@grpc/proto-loader"]

describe("architecture", () => {
  it("nothing outside src/dag/ imports from it", () => {
    const dag = join(src, "dag")
    const core = sources(src).filter((file) => !file.startsWith(dag))
    assert.isAtLeast(core.length, 10)
    const offending = core.flatMap((file) =>
      loads(file).filter((loaded) => loaded.startsWith(dag)).map((loaded) => `${relative(src, file)} → ${relative(src, loaded)}`)
    )
    assert.deepStrictEqual(offending, [])
  })

  it.each(["index.ts", "dag/index.ts"])("%s loads no optional peer, directly or through a module", (index) => {
    const loaded = [...closure(join(src, index))]
    assert.isTrue(loaded.includes("effect"))
    assert.deepStrictEqual(loaded.filter((module) => optionalPeers.includes(module)), [])
  })

  it("the modules that need an optional peer do load it (so the rule above can fail)", () => {
    for (const module of ["Grpc.ts", "Mongo.ts", "dag/PohGrpc.ts", "dag/PresenceGrpc.ts", "dag/MongoStorage.ts"]) {
      assert.isTrue([...closure(join(src, module))].some((loaded) => optionalPeers.includes(loaded)), module)
    }
  })

  it("every module of the core is a subpath of the package and has its row in docs/architecture.md's module map", () => {
    const root = fileURLToPath(new URL("../", import.meta.url))
    const exported = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      readonly exports: Record<string, unknown>
    }).exports)
    const map = readFileSync(join(root, "docs", "architecture.md"), "utf8")
    const modules = readdirSync(src).filter((file) => file.endsWith(".ts") && file !== "index.ts").map((file) =>
      file.slice(0, -3)
    )
    assert.includeMembers(modules, ["EffectMetrics", "Logging", "OtlpLogs", "Metrics"])
    assert.deepStrictEqual(modules.filter((module) => !exported.includes(`./${module}`)), [], "package.json exports")
    assert.deepStrictEqual(modules.filter((module) => !map.includes(`| \`${module}\` |`)), [], "module map rows")
  })

  it("services have no static members: constructors and layers are module-level", () => {
    const statics = sources(src).flatMap((file) =>
      readFileSync(file, "utf8").split("\n").flatMap((line, n) => /^\s+static\s/.test(line) ? [`${relative(src, file)}:${n + 1}`] : [])
    )
    assert.deepStrictEqual(statics, [])
  })
})
