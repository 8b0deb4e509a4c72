# Where the project's own PostgreSQL cluster lives and how to run its tools.
# Sourced by start.sh, stop.sh and ../status.sh, never run.
# shellcheck shell=bash
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_PORT=${PG_PORT:-35432}
# shellcheck disable=SC2034  # used by the scripts that source this file
PG_DB=adapters
# The chosen cluster folder is recorded here, since it may live outside the repo.
PG_RECORD="$VAR_DIR/postgres.dir"
# Names this stack: the repository's, or (another VAR_DIR, another stack) that folder's.
if [[ $VAR_DIR == "$REPO/var" ]]; then
  STACK_HASH=$(printf '%s' "$REPO" | sha256sum | cut -c1-8)
else
  STACK_HASH=$(printf '%s' "$VAR_DIR" | sha256sum | cut -c1-8)
fi
# Every process of ours carries this in its title, which lets stop.sh and down.sh find
# them all, even after a fault test killed the postmaster; another stack's are not ours.
PG_CLUSTER_NAME="adapter-promotion-$STACK_HASH"

# PostgreSQL refuses to run as root: run its tools as the postgres user then. From /,
# because that user may not be allowed into the caller's working directory.
as_pg() {
  if ((EUID == 0)); then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# The recorded cluster folder, or nothing and status 1.
recorded_base() {
  local base
  base=$(cat "$PG_RECORD" 2>/dev/null) && [[ -d $base/data ]] && printf '%s\n' "$base"
}

# The postmaster's pid from its pid file, if that process still lives.
postmaster_pid() {
  local pid
  pid=$(head -n 1 "$1/data/postmaster.pid" 2>/dev/null) && [[ -n $pid ]] &&
    is_alive "$pid" && printf '%s\n' "$pid"
}

# Every process of the cluster in folder $1: the postmaster and its children.
all_pg_pids() {
  { pids_matching "$PG_BIN/postgres -D $1/data"; pids_matching "postgres: $PG_CLUSTER_NAME: "; } | sort -un
}
