/**
 * The top frames of a V8 CPU profile (`node --cpu-prof`) by self time, and self time by package, as Markdown tables.
 *
 * Run: `node bench/profile-top.ts <file.cpuprofile> [frames]`.
 */
import { readFileSync } from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
}

interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

const [file, count = "20"] = process.argv.slice(2)
if (file === undefined) throw new Error("usage: profile-top.ts <file.cpuprofile> [frames]")
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const selfMicros = new Map<number, number>()
profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
const totalMicros = [...selfMicros.values()].reduce((sum, value) => sum + value, 0)

/** Where a frame's code lives: its package under node_modules, the project's own folder, Node, or V8's own entries. */
const owner = ({ functionName, url }: Node["callFrame"]): string => {
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (match !== null) return match[1]!
  if (url === "" && functionName.startsWith("(")) return functionName
  if (url.startsWith("node:") || url === "") return "(node built-ins)"
  const project = /\/(src|bench|examples)\//.exec(url)
  return project === null ? url : `project ${project[1]}/`
}

const short = (url: string) =>
  url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(src|bench|examples)\//, "$1/")

const frames = new Map<string, number>()
const packages = new Map<string, number>()
for (const [id, micros] of selfMicros) {
  const frame = byId.get(id)!.callFrame
  const name = `${frame.functionName || "(anonymous)"} ${short(frame.url)}:${frame.lineNumber + 1}`
  frames.set(name, (frames.get(name) ?? 0) + micros)
  packages.set(owner(frame), (packages.get(owner(frame)) ?? 0) + micros)
}

const table = (title: string, rows: Map<string, number>, limit: number) => {
  console.log(`| ${title} | self ms | share |`)
  console.log("|---|---|---|")
  for (const [name, micros] of [...rows].toSorted((a, b) => b[1] - a[1]).slice(0, limit)) {
    console.log(`| \`${name}\` | ${(micros / 1000).toFixed(0)} | ${((100 * micros) / totalMicros).toFixed(1)}% |`)
  }
  console.log()
}

console.log(`${file}: ${(totalMicros / 1000).toFixed(0)} ms sampled`)
console.log()
table("frame", frames, Number(count))
table("package", packages, 15)
