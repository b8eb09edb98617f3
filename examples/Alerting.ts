/**
 * The launcher's alerting (examples/network.ts): the rule files its
 * Prometheus loads — the shipped rules and the SLOs' that Sloth generated —
 * and an Alertmanager beside it, on 127.0.0.1:9093 when free, with the
 * shipped routing (dashboards/alertmanager/alertmanager.yml). Each can be
 * replaced: `DAG_NETWORK_RULES` (rule files, comma-separated),
 * `DAG_NETWORK_ALERTMANAGER_CONFIG` (a config with your receivers) and
 * `DAG_NETWORK_PROMETHEUS_INTERVAL` (scrape and evaluation interval, 5s); the
 * alerting integration test runs them 60 times faster that way.
 */
import { fileURLToPath } from "node:url"
import { Effect, Option } from "effect"
import { withAlertmanagers } from "../dashboards/src/alertmanager.ts"
import { ruleFiles } from "../dashboards/src/rules.ts"
import { alertmanagerInstalled, preferredPort, startAlertmanager } from "../servers/Servers.ts"
import { Settings } from "../src/index.ts"

const shipped = (path: string) => fileURLToPath(new URL(`../dashboards/${path}`, import.meta.url))

const settings = Settings.read({
  rules: Settings.optional("DAG_NETWORK_RULES", {
    expected: "rule files, comma-separated",
    parse: (text) => {
      const files = text.split(",").map((file) => file.trim())
      return files.every((file) => file !== "") ? files : undefined
    }
  }),
  alertmanagerConfig: Settings.optional("DAG_NETWORK_ALERTMANAGER_CONFIG", {
    expected: "an Alertmanager config file",
    parse: (text) => text === "" ? undefined : text
  }),
  interval: Settings.setting("DAG_NETWORK_PROMETHEUS_INTERVAL", "5s", {
    expected: "a Prometheus duration (1s, 5s, 1m)",
    parse: (text) => /^[1-9]\d*(?:ms|s|m)$/.test(text) ? text : undefined
  })
})

/**
 * Starts Alertmanager when one is installed (stopped with the scope) and says what the launcher's Prometheus loads:
 * `rules`, its `interval`, and `configure` to point a prometheus.yml (as an object) at the Alertmanager.
 */
export const alerting = Effect.gen(function*() {
  const config = yield* settings
  const rules = Option.getOrElse(config.rules, () => ruleFiles.map((file) => shipped(`prometheus/${file}`)))
  const configFile = Option.getOrElse(config.alertmanagerConfig, () => shipped("alertmanager/alertmanager.yml"))
  const base = { rules, interval: config.interval }
  if (!alertmanagerInstalled()) {
    return { ...base, configure: <C extends object>(c: C) => c, description: "not started (run `npm run provision`)" }
  }
  const port = yield* Effect.promise(() => preferredPort(9093))
  const alertmanager = yield* Effect.acquireRelease(
    Effect.promise(() => startAlertmanager({ configFile, port })),
    (started) => Effect.promise(() => started.stop())
  )
  return {
    ...base,
    configure: <C extends object>(c: C) => withAlertmanagers(c, [alertmanager.address]),
    description: `${alertmanager.url} (Alertmanager ${alertmanager.version}) routing Prometheus's alerts by ` +
      `${configFile}; list them: amtool --alertmanager.url=${alertmanager.url} alert query`
  }
})
