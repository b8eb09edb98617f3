/**
 * Alertmanager (Debian's `prometheus-alertmanager`) on a loopback port with a
 * temporary data directory and no cluster listener, and its `amtool`: what
 * receives the alerts of the Prometheus of the tests and of `npm start`, and
 * routes them to their receivers.
 */
import { writeFile } from "node:fs/promises"
import { join } from "node:path"
import { type CommandResult, freePort, requireOnPath, runCommand, startInTempDir } from "./Process.ts"

/** What a {@link startAlertmanager} runs with: `config` or `configFile`. */
export interface AlertmanagerOptions {
  /** The configuration: a whole alertmanager.yml, as an object. */
  readonly config?: object
  /** The configuration file to load instead (e.g. dashboards/alertmanager/alertmanager.yml). */
  readonly configFile?: string
  /** The loopback port to listen on; a free one when absent. */
  readonly port?: number
}

/** An Alertmanager server. */
export interface Alertmanager {
  /** Base URL, `http://127.0.0.1:<port>` (`/api/v2/alerts`, `/api/v2/status`, `/-/reload`). */
  readonly url: string
  /** `127.0.0.1:<port>`, as a Prometheus `alerting.alertmanagers` target names it. */
  readonly address: string
  /** The Alertmanager version reported by `/api/v2/status`, e.g. "0.25.0". */
  readonly version: string
  /** The configuration file it was started with. */
  readonly configFile: string
  /** Stops the process and deletes its temp dir. */
  stop(): Promise<void>
}

/** Debian names the binary `prometheus-alertmanager`; upstream's release names it `alertmanager`. */
const binary = () => {
  try {
    return requireOnPath("prometheus-alertmanager")
  } catch {
    return requireOnPath("alertmanager")
  }
}

/** Whether an Alertmanager binary is on PATH (`npm run provision` installs Debian's). */
export const alertmanagerInstalled = (): boolean => {
  try {
    binary()
    return true
  } catch {
    return false
  }
}

/**
 * Starts Alertmanager with `options.config` (or `options.configFile`) on 127.0.0.1, its data in a fresh temporary
 * directory, no clustering.
 */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<Alertmanager> {
  const port = options.port ?? await freePort()
  const url = `http://127.0.0.1:${port}`
  const configFile = (dir: string) => options.configFile ?? join(dir, "alertmanager.yml")
  return startInTempDir("Alertmanager", async (dir) => {
    // JSON is YAML.
    if (options.configFile === undefined) await writeFile(configFile(dir), JSON.stringify(options.config ?? {}, null, 2))
    return {
      binary: binary(),
      args: [
        `--config.file=${configFile(dir)}`,
        `--storage.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--cluster.listen-address=",
        "--log.level=warn"
      ],
      readyUrl: `${url}/-/ready`
    }
  }, async (dir) => {
    const status = (await (await fetch(`${url}/api/v2/status`)).json()) as { versionInfo: { version: string } }
    return { url, address: `127.0.0.1:${port}`, version: status.versionInfo.version, configFile: configFile(dir) }
  })
}

/** Runs `amtool <args>` (e.g. `["check-config", file]`); resolves with its exit code and output. */
export function amtool(args: ReadonlyArray<string>): Promise<CommandResult> {
  return runCommand(requireOnPath("amtool"), args)
}
