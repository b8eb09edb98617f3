/**
 * The SLO rules: Sloth run on the committed spec (dashboards/slo/dag.yaml),
 * with its own 30-day windows for dashboards/prometheus/rules-slo.yml, or
 * with every window divided by a time scale for the alerting integration
 * test.
 */
import { fileURLToPath } from "node:url"
import { slothGenerate } from "../../servers/Sloth.ts"
import { scaled } from "./durations.ts"
import { alertWindows, period } from "./slos.ts"
import { stringify, type Yaml } from "./yaml.ts"

/** The committed Sloth spec. */
export const sloSpecFile = fileURLToPath(new URL("../slo/dag.yaml", import.meta.url))

/** Where `npm run dashboards` writes Sloth's rules for it, relative to the repository. */
export const sloRulesPath = "dashboards/prometheus/rules-slo.yml"

/** Sloth's rule file for the committed spec; with `scale`, every window (and the period) divided by it. */
export const sloRules = (scale = 1): Promise<string> =>
  slothGenerate(
    sloSpecFile,
    scale === 1 ? undefined : { period: scaled(period, scale), yaml: stringify(alertWindows(scale) as Yaml) }
  )
