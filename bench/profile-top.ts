/**
 * The top frames of a V8 CPU profile (`node --cpu-prof`) by self time, and self time by package, as Markdown tables;
 * or, given the number of requests each profile served and a second profile, each frame's and package's self time per
 * request in both and the difference (what the first costs over the second).
 *
 * Run: `node bench/profile-top.ts <file.cpuprofile> [frames]`, or
 * `node bench/profile-top.ts <file.cpuprofile> <requests> --against <base.cpuprofile> <requests> [frames]`.
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

/** Self time in microseconds by frame and by package, and in all. */
const selfTimes = (file: string) => {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const selfMicros = new Map<number, number>()
  profile.samples.forEach((id, i) => selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const frames = new Map<string, number>()
  const packages = new Map<string, number>()
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)!.callFrame
    const name = `${frame.functionName || "(anonymous)"} ${short(frame.url)}:${frame.lineNumber + 1}`
    frames.set(name, (frames.get(name) ?? 0) + micros)
    packages.set(owner(frame), (packages.get(owner(frame)) ?? 0) + micros)
  }
  return { frames, packages, total: [...selfMicros.values()].reduce((sum, value) => sum + value, 0) }
}

const table = (title: string, rows: Map<string, number>, total: number, limit: number) => {
  console.log(`| ${title} | self ms | share |`)
  console.log("|---|---|---|")
  for (const [name, micros] of [...rows].toSorted((a, b) => b[1] - a[1]).slice(0, limit)) {
    console.log(`| \`${name}\` | ${(micros / 1000).toFixed(0)} | ${((100 * micros) / total).toFixed(1)}% |`)
  }
  console.log()
}

/** Per request in `file` and in `base`, and the difference, largest first. */
const difference = (title: string, file: Map<string, number>, perFile: number, base: Map<string, number>, perBase: number, limit: number) => {
  console.log(`| ${title} | µs/request, base | µs/request | difference |`)
  console.log("|---|---|---|---|")
  const rows = [...new Set([...file.keys(), ...base.keys()])].map((name) => {
    const [mine, theirs] = [(file.get(name) ?? 0) / perFile, (base.get(name) ?? 0) / perBase]
    return { name, mine, theirs, over: mine - theirs }
  })
  for (const row of rows.toSorted((a, b) => b.over - a.over).slice(0, limit)) {
    console.log(`| \`${row.name}\` | ${row.theirs.toFixed(1)} | ${row.mine.toFixed(1)} | ${row.over.toFixed(1)} |`)
  }
  console.log()
}

const args = process.argv.slice(2)
const against = args.indexOf("--against")
if (args[0] === undefined || (against !== -1 && against !== 2)) {
  throw new Error("usage: profile-top.ts <file.cpuprofile> [frames] | <file> <requests> --against <base> <requests> [frames]")
}
const mine = selfTimes(args[0])
if (against === -1) {
  console.log(`${args[0]}: ${(mine.total / 1000).toFixed(0)} ms sampled`)
  console.log()
  table("frame", mine.frames, mine.total, Number(args[1] ?? 20))
  table("package", mine.packages, mine.total, 15)
} else {
  const [perMine, baseFile, perBase, count = "30"] = [Number(args[1]), args[3], Number(args[4]), args[5]]
  if (baseFile === undefined || !(perMine > 0) || !(perBase > 0)) throw new Error("requests must be positive numbers")
  const base = selfTimes(baseFile)
  console.log(`${args[0]} (${perMine} requests) over ${baseFile} (${perBase} requests)`)
  console.log()
  difference("package", mine.packages, perMine, base.packages, perBase, 15)
  difference("frame", mine.frames, perMine, base.frames, perBase, Number(count))
}
