/**
 * Where scripts/provision.sh puts the server binaries, and which versions.
 * Keep in sync with that script and with servers/<name>/go.mod.
 */
import { createHash } from "node:crypto"
import { readFileSync } from "node:fs"
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

/** OpenTelemetry Collector release whose modules servers/otelcol/go.mod pins (the builder manifest's version). */
export const otelcolVersion = "v0.161.0"

/**
 * The first 8 hex digits of the SHA-256 of servers/otelcol/go.mod followed by
 * components.go: part of the collector's cache key, so that a component added
 * at the same release builds a new binary instead of reusing the cached one.
 */
export const otelcolBuild = createHash("sha256")
  .update(readFileSync(new URL("./otelcol/go.mod", import.meta.url)))
  .update(readFileSync(new URL("./otelcol/components.go", import.meta.url)))
  .digest("hex")
  .slice(0, 8)

/** The collector: $OTELCOL_BINARY (one of your own), else the one scripts/provision.sh builds. */
export const otelcolBinary = process.env.OTELCOL_BINARY ||
  join(cacheDir, `otelcol-${otelcolVersion}-${otelcolBuild}`, "otelcol")

/** The Sloth release pinned in servers/sloth/go.mod. */
export const slothVersion = "v0.16.0"

/** The Sloth binary: $SLOTH_BINARY (one of your own), else the one scripts/provision.sh builds. */
export const slothBinary = process.env.SLOTH_BINARY || join(cacheDir, `sloth-${slothVersion}`, "sloth")
