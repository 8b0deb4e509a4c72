#!/usr/bin/env bash
# Stop the project's PostgreSQL cluster: a fast shutdown (rolls back open sessions),
# an immediate one if that hangs, SIGKILL as the last resort. Exits 0 when nothing runs.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

if ! base=$(recorded_base); then
  say "postgres not running (no cluster recorded in $PG_RECORD)"
  exit 0
fi
mapfile -t pids < <(all_pg_pids "$base")
if ! ((${#pids[@]})); then
  say "postgres not running"
  exit 0
fi
say "stopping postgres (pids ${pids[*]})"
if postmaster_pid "$base" >/dev/null; then
  as_pg "$PG_BIN/pg_ctl" -D "$base/data" -m fast -w -t 30 stop >/dev/null ||
    as_pg "$PG_BIN/pg_ctl" -D "$base/data" -m immediate -w -t 10 stop >/dev/null || true
fi
# Whatever is left (say, backends of a postmaster a fault test killed) gets SIGTERM.
mapfile -t left < <(all_pg_pids "$base")
terminate 10 "${left[@]}"
say "postgres stopped (pids ${pids[*]})"
