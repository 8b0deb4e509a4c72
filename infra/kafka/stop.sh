#!/usr/bin/env bash
# Stop every Kafka node this repository started: SIGTERM (a clean shutdown), up to
# 30 s, then SIGKILL. Exits 0 when nothing runs.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The pid files, plus a scan of the process table in case a pid file was lost.
mapfile -t pids < <(all_kafka_pids)
if ((${#pids[@]})); then
  say "stopping kafka (pids ${pids[*]})"
  terminate 30 "${pids[@]}"
  say "kafka stopped (pids ${pids[*]})"
else
  say "kafka not running"
fi
rm -f "$KAFKA_DIR"/node-*.pid
