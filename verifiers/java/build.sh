#!/usr/bin/env bash
# Build the Java log verifier (logcheck): fetch its jars from Maven Central into
# .cache/verifier-java/libs (cached by the pom's sha256), compile the sources with javac
# into build/verifier-java/classes and jar them as build/verifier-java/logcheck.jar
# (skipped when the sources' sha256 matches the last build). Quiet on success.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$here/../.." && pwd)

die() { printf '[logcheck] error: %s\n' "$*" >&2; exit 1; }

pom="$here/pom.xml"
cache="$REPO/.cache/verifier-java"
libs="$cache/libs"
libs_stamp="$cache/libs.sha256"
out="$REPO/build/verifier-java"
classes="$out/classes"
jar="$out/logcheck.jar"
src_stamp="$out/sources.sha256"

# 1. The jars, fetched once per pom.xml.
want=$(sha256sum "$pom" | cut -d' ' -f1)
if [[ ! -d $libs || ! -f $libs_stamp || $(<"$libs_stamp") != "$want" ]]; then
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install maven)"
  mkdir -p "$cache"
  # Copy into a scratch folder and swap it in, so an interrupted fetch never leaves a
  # half-filled libs folder behind a valid stamp. Maven's output goes to a log, shown only
  # on failure.
  rm -rf "$libs.tmp"
  mvn -B -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$libs.tmp" >"$cache/mvn.log" 2>&1 ||
    { tail -n 40 "$cache/mvn.log" >&2; die "Maven could not fetch the jars (log: $cache/mvn.log)"; }
  ls "$libs.tmp"/avro-*.jar "$libs.tmp"/kafka-clients-*.jar >/dev/null 2>&1 ||
    die "Maven ran but copied no avro or kafka-clients jar"
  rm -rf "$libs" "$cache/target"
  mv "$libs.tmp" "$libs"
  printf '%s\n' "$want" >"$libs_stamp"
fi

# 2. The classes and the jar, rebuilt when a source (or the libs) changed.
command -v javac >/dev/null || die "javac not found: install a JDK 17 or later"
mapfile -t sources < <(cd "$here" && find src/main/java -name '*.java' | LC_ALL=C sort)
[[ ${#sources[@]} -gt 0 ]] || die "no sources under $here/src/main/java"
have=$( (cd "$here" && sha256sum "${sources[@]}"; printf '%s\n' "$want") | sha256sum | cut -d' ' -f1)
if [[ -f $jar && -f $src_stamp && $(<"$src_stamp") == "$have" ]]; then
  exit 0
fi
rm -rf "$classes" "$jar" "$src_stamp"
mkdir -p "$classes"
(cd "$here" && javac --release 17 -encoding UTF-8 -Xlint:all -Xlint:-serial -Werror \
  -cp "$libs/*" -d "$classes" "${sources[@]}") >"$out/javac.log" 2>&1 ||
  { cat "$out/javac.log" >&2; die "javac failed"; }
jar --create --file "$jar" --main-class adapters.logcheck.Main -C "$classes" . ||
  die "could not write $jar"
printf '%s\n' "$have" >"$src_stamp"
