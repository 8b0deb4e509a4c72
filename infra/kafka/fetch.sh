#!/usr/bin/env bash
# Copy the Kafka broker's runtime classpath from Maven Central into .cache/kafka/libs.
# Cached: does nothing when the libs were fetched for this exact pom.xml.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

pom="$REPO/infra/kafka/pom.xml"
cache="$REPO/.cache/kafka"
libs="$cache/libs"
stamp="$cache/libs.sha256"

want=$(sha256sum "$pom" | cut -d' ' -f1)
if [[ -d $libs && -f $stamp && $(<"$stamp") == "$want" ]]; then
  exit 0
fi

command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
say "fetching Kafka jars from Maven Central into $libs"
mkdir -p "$cache"
# Copy into a scratch folder and swap it in, so an interrupted fetch never leaves a
# half-filled libs folder behind a valid stamp.
rm -rf "$libs.tmp"
# Maven's output goes to a log, shown only on failure (its quiet mode still prints
# stray terminal escape codes).
mvn -B -f "$pom" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$libs.tmp" >"$cache/mvn.log" 2>&1 ||
  { tail -n 40 "$cache/mvn.log" >&2; die "Maven could not fetch the Kafka jars (log: $cache/mvn.log)"; }
ls "$libs.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "Maven ran but copied no kafka_2.13 jar"
rm -rf "$libs" "$cache/target"
mv "$libs.tmp" "$libs"
printf '%s\n' "$want" >"$stamp"
say "fetched $(find "$libs" -name '*.jar' | wc -l) jars"
