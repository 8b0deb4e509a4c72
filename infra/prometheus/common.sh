# Where the project's Prometheus lives and how to find it. Sourced by start.sh, stop.sh,
# ../up.sh, ../down.sh and ../status.sh, never run.
# shellcheck shell=bash
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

PROM_ROOT="$REPO/.cache/prometheus/root"
PROM_BIN="$PROM_ROOT/usr/bin/prometheus"
# shellcheck disable=SC2034  # used by the scripts that source this file
PROMTOOL="$PROM_ROOT/usr/bin/promtool"
PROM_DIR="$VAR_DIR/prometheus"
PROM_CONFIG="$PROM_DIR/prometheus.yml"
# Tests and the demo drop one file_sd JSON file each here (targets and their labels,
# `environment` among them); Prometheus re-reads the folder within a second.
PROM_TARGETS="$PROM_DIR/targets"
PROM_PID_FILE="$PROM_DIR/prometheus.pid"
# Below the kernel's ephemeral range (32768+), so no client socket can hold it.
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
# 1 s: a test sees a counter move within about two seconds.
PROMETHEUS_SCRAPE_INTERVAL=${PROMETHEUS_SCRAPE_INTERVAL:-1s}
PROMETHEUS_START_TIMEOUT=${PROMETHEUS_START_TIMEOUT:-60}

prometheus_url() { printf 'http://127.0.0.1:%s\n' "$PROMETHEUS_PORT"; }

# The server's pid, if the one we recorded still runs on our config.
prometheus_pid() {
  local pid
  pid=$(cat "$PROM_PID_FILE" 2>/dev/null) || return 1
  pid_matches "$pid" "--config.file=$PROM_CONFIG" && printf '%s\n' "$pid"
}

# Every Prometheus of this stack, in case a pid file was lost.
all_prometheus_pids() { pids_matching "--config.file=$PROM_CONFIG"; }
