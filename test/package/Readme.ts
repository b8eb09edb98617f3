/**
 * The TypeScript blocks of README.md, as files a user would paste: each
 * ```ts block is one module, numbered in order; a block that runs specs with
 * `@effect/vitest` is a test file.
 */
import { readFileSync } from "node:fs"

/** One ```ts block of the README. */
export interface Block {
  /** The file name to write it under: `readme-<n>.ts`, or `readme-<n>.test.ts` for a spec. */
  readonly file: string
  readonly code: string
  /** The README line its code starts on, for error messages. */
  readonly line: number
}

/** Every ```ts block of the README at `path`. */
export const readmeBlocks = (path: string): ReadonlyArray<Block> => {
  const text = readFileSync(path, "utf8")
  const blocks: Array<Block> = []
  for (const match of text.matchAll(/^```ts\n([\s\S]*?)^```$/gm)) {
    const code = match[1]!
    const line = text.slice(0, match.index).split("\n").length + 1
    const spec = code.includes("from \"@effect/vitest\"")
    blocks.push({ file: `readme-${blocks.length + 1}${spec ? ".test" : ""}.ts`, code, line })
  }
  return blocks
}
