/**
 * `npm run dashboards`: writes the generated files of dashboards/ (see
 * files.ts), then has Sloth generate the SLO rules from the spec just written
 * (sloRules.ts), and says which changed.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { files } from "./files.ts"
import { sloRules, sloRulesPath } from "./sloRules.ts"

const root = fileURLToPath(new URL("../../", import.meta.url))

const write = (path: string, content: string) => {
  const file = `${root}${path}`
  const changed = !existsSync(file) || readFileSync(file, "utf8") !== content
  if (changed) writeFileSync(file, content)
  console.log(`${changed ? "wrote    " : "unchanged"} ${path}`)
}

for (const [path, content] of Object.entries(files)) write(path, content)
write(sloRulesPath, await sloRules())
