#!/usr/bin/env bash
# Stop the project's Prometheus: SIGTERM (it flushes its head block), up to 30 s, then
# SIGKILL. Exits 0 when it does not run. Its data and the targets folder are kept.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

mapfile -t pids < <(all_prometheus_pids)
if ((${#pids[@]})); then
  terminate 30 "${pids[@]}"
  say "prometheus stopped (pids ${pids[*]})"
else
  say "prometheus not running"
fi
rm -f "$PROM_PID_FILE"
