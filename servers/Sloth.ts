/**
 * Sloth (github.com/slok/sloth), the SLO generator: from a `prometheus/v1`
 * SLO spec it writes the recording rules of each SLI over every window and the
 * multi-window multi-burn-rate alerts. scripts/provision.sh builds the version
 * pinned in servers/sloth/go.mod into the cache.
 */
import { existsSync } from "node:fs"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { slothBinary, slothVersion } from "./Cache.ts"
import { makeTempDir, removeTempDir, runCommand } from "./Process.ts"

/** Alert windows other than Sloth's own 30-day ones: an `AlertWindows` document (YAML) and its SLO period. */
export interface SlothWindows {
  readonly period: string
  readonly yaml: string
}

/**
 * The Prometheus rule file Sloth generates from the SLO spec in `specFile`, with Sloth's 30-day windows or `windows`;
 * rejects with Sloth's own message when it refuses the spec.
 */
export async function slothGenerate(specFile: string, windows?: SlothWindows): Promise<string> {
  if (!existsSync(slothBinary)) {
    throw new Error(`Sloth binary ${slothBinary} not found: run "bash scripts/provision.sh" (builds Sloth ${slothVersion})`)
  }
  const dir = windows === undefined ? undefined : await makeTempDir("sloth")
  try {
    const custom: Array<string> = []
    if (dir !== undefined && windows !== undefined) {
      await mkdir(join(dir, "windows"))
      await writeFile(join(dir, "windows", "windows.yaml"), windows.yaml)
      custom.push(`--slo-period-windows-path=${join(dir, "windows")}`, `--default-slo-period=${windows.period}`)
    }
    const result = await runCommand(slothBinary, ["generate", "--no-log", `--input=${specFile}`, "--out=-", ...custom])
    if (result.code !== 0) throw new Error(`sloth generate ${specFile} exited ${result.code}: ${result.stderr}`)
    return result.stdout
  } finally {
    if (dir !== undefined) await removeTempDir(dir)
  }
}
