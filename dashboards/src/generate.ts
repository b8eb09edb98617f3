/**
 * `npm run dashboards`: writes the generated files of dashboards/ (see
 * files.ts) and says which changed.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { files } from "./files.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))

for (const [path, content] of Object.entries(files)) {
  const file = `${root}${path}`
  const changed = !existsSync(file) || readFileSync(file, "utf8") !== content
  if (changed) writeFileSync(file, content)
  console.log(`${changed ? "wrote    " : "unchanged"} ${path}`)
}
