/**
 * Where scripts/provision.sh puts the server binaries, and which versions.
 * Keep in sync with that script and with servers/<name>/go.mod.
 */
import { homedir } from "node:os"
import { join } from "node:path"

/** FerretDB release pinned in servers/ferretdb/go.mod. */
export const ferretdbVersion = "v1.24.2"

/** Jaeger (v2 binary, Go module version) pinned in servers/jaeger/go.mod. */
export const jaegerVersion = "v1.76.0"

/** Cache root: $DAG_OBS_CACHE, else $XDG_CACHE_HOME/dag-observability, else ~/.cache/dag-observability. */
export const cacheDir =
  process.env.DAG_OBS_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "dag-observability")

/** The FerretDB binary built by scripts/provision.sh. */
export const ferretdbBinary = join(cacheDir, `ferretdb-${ferretdbVersion}`, "ferretdb")

/** The Jaeger v2 binary built by scripts/provision.sh. */
export const jaegerBinary = join(cacheDir, `jaeger-${jaegerVersion}`, "jaeger")
