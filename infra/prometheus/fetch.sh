#!/usr/bin/env bash
# Unpack Debian's Prometheus package (prometheus and promtool) into .cache/prometheus: no
# root, no install, no service. Cached: does nothing when the pinned version is unpacked.
#   PROMETHEUS_DEB_VERSION  the package version to fetch (default below; bookworm's)
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

version=${PROMETHEUS_DEB_VERSION:-2.42.0+ds-5+deb12u1}
cache="$REPO/.cache/prometheus"
stamp="$cache/version"

if [[ -x $cache/root/usr/bin/prometheus && -x $cache/root/usr/bin/promtool &&
  -f $stamp && $(<"$stamp") == "$version" ]]; then
  exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found: Prometheus comes from Debian's packages"
say "fetching Debian's prometheus $version into $cache"
began=$EPOCHREALTIME
mkdir -p "$cache"
# A scratch folder swapped in at the end, so an interrupted fetch never leaves a
# half-unpacked tree behind a valid stamp.
work=$(mktemp -d "$cache/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
# apt drops to the _apt user to download; that user cannot write our folder (apt then
# warns and downloads as us): give it one it can.
chmod 755 "$work"
(cd "$work" && apt-get download -q "prometheus=$version") >"$cache/apt.log" 2>&1 ||
  { cat "$cache/apt.log" >&2; die "apt-get could not download prometheus=$version (run apt-get update?)"; }
deb=$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' -print -quit)
[[ -n $deb ]] || die "apt-get ran but left no prometheus .deb (log: $cache/apt.log)"
dpkg-deb -x "$deb" "$work/root"
"$work/root/usr/bin/prometheus" --version >/dev/null 2>&1 || die "the unpacked prometheus does not run"
"$work/root/usr/bin/promtool" --version >/dev/null 2>&1 || die "the unpacked promtool does not run"
rm -rf "$cache/root"
mv "$work/root" "$cache/root"
printf '%s\n' "$version" >"$stamp"
say "prometheus $version unpacked in $(elapsed_since "$began")s: $cache/root/usr/bin/{prometheus,promtool}"
