# Helpers shared by the infra/ scripts. Sourced, never run.
# shellcheck shell=bash

# The repository root, wherever it was cloned: everything we own lives under it
# (var/, .cache/), except a PostgreSQL data dir the postgres user could not reach.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Where this stack's state lives. Another VAR_DIR is another stack: a second Kafka cluster
# (say VAR_DIR=var/faults3 KAFKA_PORT_BASE=49092 BROKERS=3) that up/down/stop scripts run
# with that VAR_DIR find, start and stop, never touching the one in var/ (nor it, them).
VAR_DIR=${VAR_DIR:-$REPO/var}
[[ $VAR_DIR == /* ]] || VAR_DIR="$PWD/$VAR_DIR"
while [[ $VAR_DIR == */ && $VAR_DIR != / ]]; do VAR_DIR=${VAR_DIR%/}; done
export REPO VAR_DIR

say() { printf '[infra] %s\n' "$*"; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

# Seconds since $1 (an $EPOCHREALTIME), one decimal.
elapsed_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# True when something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp: no nc needed).
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# True when process $1 exists and is not a zombie (an exited child its parent has not
# reaped yet: kill -0 still succeeds on those, and a container's pid 1 may be slow).
is_alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# True when process $1 runs and its command line contains the fixed string $2;
# the second check keeps a recycled pid from being mistaken for ours.
pid_matches() {
  local pid=$1 needle=$2 args
  [[ -n $pid ]] || return 1
  # Read the NUL-separated arguments without a subprocess: down.sh scans every pid.
  mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
  [[ "${args[*]}" == *"$needle"* ]]
}

# Pids of every process whose command line contains the fixed string $1.
pids_matching() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [[ $pid != "$$" && $pid != "$BASHPID" ]] || continue
    pid_matches "$pid" "$1" && printf '%s\n' "$pid"
  done
  return 0
}

# Wait until none of the given pids is alive; false if any survives $1 seconds.
wait_gone() {
  local timeout=$1 pid alive
  shift
  local deadline=$((SECONDS + timeout))
  while :; do
    alive=0
    for pid in "$@"; do is_alive "$pid" && alive=1; done
    ((alive)) || return 0
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# SIGTERM, wait up to $1 seconds, then SIGKILL whatever is left. Prints what it did.
terminate() {
  local timeout=$1 pid
  shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  if ! wait_gone "$timeout" "$@"; then
    for pid in "$@"; do
      if is_alive "$pid"; then
        say "pid $pid ignored SIGTERM for ${timeout}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
    wait_gone 10 "$@" || die "could not stop pids: $*"
  fi
}
