#!/usr/bin/env bash
# Provisions the real servers that the integration tests start on loopback:
#   FerretDB (SQLite backend), Jaeger v2 and an OpenTelemetry Collector, built
#   from the pinned Go modules in servers/<name>/go.mod into a cache outside the
#   repo, Sloth (the SLO rule generator) likewise, and Debian's Prometheus
#   (prometheus + promtool) and Alertmanager (prometheus-alertmanager + amtool).
#   Idempotent: a run with everything cached takes ~0.1 s.
# Keep the versions and the cache rule in sync with servers/Cache.ts and
# servers/Sloth.ts.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${DAG_OBS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dag-observability}"
ferretdb_version=v1.24.2
jaeger_version=v1.76.0
otelcol_version=v0.161.0
sloth_version=v0.16.0
# The collector's cache key also hashes its module and component list, so that
# a component added at the same release builds a new binary (servers/Cache.ts).
otelcol_key="$otelcol_version-$(cat "$repo/servers/otelcol/go.mod" "$repo/servers/otelcol/components.go" |
  sha256sum | cut -c1-8)"

# build NAME KEY MODULE VERSION PACKAGE [GO BUILD FLAGS...]: go-builds PACKAGE
# from servers/NAME into $cache/NAME-KEY/NAME unless that binary is already
# there; servers/NAME/go.mod must pin MODULE at VERSION.
build() {
  local name=$1 key=$2 module=$3 version=$4 package=$5
  shift 5
  local out="$cache/$name-$key/$name"
  [[ -x $out ]] && return
  command -v go >/dev/null || { echo "provision: Go is needed to build $name" >&2; exit 1; }
  grep -Eq "^\s+$module $version( |\$)" "$repo/servers/$name/go.mod" ||
    { echo "provision: servers/$name/go.mod does not pin $module $version" >&2; exit 1; }
  echo "provision: building $name $version (several minutes the first time)" >&2
  mkdir -p "$(dirname "$out")"
  (cd "$repo/servers/$name" && go build -mod=readonly -trimpath "$@" -o "$out.partial" "$package")
  mv "$out.partial" "$out"
}

# ferretdb_modfile DIR: FerretDB panics at start-up unless its module holds
# build/version/version.txt, which the published module lacks. Writes DIR/go.mod
# (for go build -modfile) replacing the module with a copy in DIR that has it.
ferretdb_modfile() {
  local dir=$1 src
  src="$(cd "$repo/servers/ferretdb" && go mod download github.com/FerretDB/FerretDB &&
    go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)"
  cp -r "$src" "$dir/FerretDB"
  chmod -R u+w "$dir/FerretDB"
  echo "$ferretdb_version" >"$dir/FerretDB/build/version/version.txt"
  cp "$repo/servers/ferretdb/go.mod" "$repo/servers/ferretdb/go.sum" "$dir/"
  go mod edit -replace="github.com/FerretDB/FerretDB=$dir/FerretDB" "$dir/go.mod"
}

# install_debian PACKAGE COMMAND...: installs Debian's PACKAGE unless every
# COMMAND is on PATH, and stops the service that the package may have started
# (named like the package): the tests start their own instances.
install_debian() {
  local package=$1
  shift
  local missing=0 command
  for command in "$@"; do command -v "$command" >/dev/null || missing=1; done
  ((missing)) || return 0
  local sudo=()
  [[ $(id -u) == 0 ]] || sudo=(sudo)
  echo "provision: installing Debian's $package" >&2
  "${sudo[@]}" apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "$package" >/dev/null
  if [[ -d /run/systemd/system ]]; then
    "${sudo[@]}" systemctl disable --now "$package.service" >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/$package ]]; then
    "${sudo[@]}" "/etc/init.d/$package" stop >/dev/null 2>&1 || true
  fi
}

# Users who point the tests at their own servers need not build ours.
if [[ -n ${MONGODB_URI:-} ]]; then
  echo "ferretdb   skipped: MONGODB_URI is set"
elif [[ ! -x $cache/ferretdb-$ferretdb_version/ferretdb ]]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  ferretdb_modfile "$work"
  build ferretdb "$ferretdb_version" github.com/FerretDB/FerretDB "$ferretdb_version" github.com/FerretDB/FerretDB/cmd/ferretdb \
    -modfile="$work/go.mod"
fi
if [[ -n ${JAEGER_QUERY_URL:-} ]]; then
  echo "jaeger     skipped: JAEGER_QUERY_URL is set"
else
  build jaeger "$jaeger_version" github.com/jaegertracing/jaeger "$jaeger_version" github.com/jaegertracing/jaeger/cmd/jaeger \
    -ldflags="-X github.com/jaegertracing/jaeger/internal/version.latestVersion=$jaeger_version"
fi
# servers/otelcol holds the collector builder's output for builder-config.yaml
# (main.go, components.go, go.mod with the load_balancing exporter's replace).
if [[ -n ${OTELCOL_BINARY:-} ]]; then
  echo "otelcol    skipped: OTELCOL_BINARY is set"
else
  build otelcol "$otelcol_key" go.opentelemetry.io/collector/otelcol "$otelcol_version" .
fi
# servers/sloth/go.mod pins Sloth as a tool; its version is stamped in as its
# release build does (it says "dev" otherwise, in every rule it generates).
if [[ -n ${SLOTH_BINARY:-} ]]; then
  echo "sloth      skipped: SLOTH_BINARY is set"
else
  build sloth "$sloth_version" github.com/slok/sloth "$sloth_version" github.com/slok/sloth/cmd/sloth \
    -ldflags="-X github.com/slok/sloth/internal/info.Version=$sloth_version"
fi
install_debian prometheus prometheus promtool
install_debian prometheus-alertmanager prometheus-alertmanager amtool

[[ -n ${MONGODB_URI:-} ]] || echo "ferretdb   $ferretdb_version  $cache/ferretdb-$ferretdb_version/ferretdb"
[[ -n ${JAEGER_QUERY_URL:-} ]] || echo "jaeger     $jaeger_version  $cache/jaeger-$jaeger_version/jaeger"
[[ -n ${OTELCOL_BINARY:-} ]] || echo "otelcol    $otelcol_version  $cache/otelcol-$otelcol_key/otelcol"
echo "prometheus $(prometheus --version 2>&1 | awk 'NR==1 {print $3}')  $(command -v prometheus)"
echo "promtool   $(promtool --version 2>&1 | awk 'NR==1 {print $3}')  $(command -v promtool)"
[[ -n ${SLOTH_BINARY:-} ]] || echo "sloth      $sloth_version  $cache/sloth-$sloth_version/sloth"
echo "alertmanager $(prometheus-alertmanager --version 2>&1 | awk 'NR==1 {print $3}')  $(command -v prometheus-alertmanager)"
echo "amtool     $(amtool --version 2>&1 | awk 'NR==1 {print $3}')  $(command -v amtool)"
