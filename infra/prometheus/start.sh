#!/usr/bin/env bash
# Start the project's Prometheus on loopback and wait until it is ready.
#   PROMETHEUS_PORT (19090)              where it listens (127.0.0.1 only)
#   PROMETHEUS_SCRAPE_INTERVAL (1s)      how often it scrapes every target
# It scrapes what the file_sd files in var/prometheus/targets/*.json name (each file a list
# of {"targets": ["127.0.0.1:PORT"], "labels": {"environment": ..., "job": ...}}), loads
# infra/prometheus/rules.yml, and takes POST /-/reload (--web.enable-lifecycle). Data in
# var/prometheus/data (kept one day). Idempotent: a running server is left alone.
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/prometheus/fetch.sh"
if pid=$(prometheus_pid); then
  say "prometheus already runs (pid $pid, $(prometheus_url))"
  exit 0
fi
! port_open "$PROMETHEUS_PORT" || die "port $PROMETHEUS_PORT is taken by another process; set PROMETHEUS_PORT"
began=$EPOCHREALTIME
mkdir -p "$PROM_TARGETS" "$PROM_DIR/data"
cat >"$PROM_CONFIG.tmp" <<YAML
# Written by infra/prometheus/start.sh; edit that script, not this file.
global:
  scrape_interval: $PROMETHEUS_SCRAPE_INTERVAL
  scrape_timeout: $PROMETHEUS_SCRAPE_INTERVAL
  evaluation_interval: $PROMETHEUS_SCRAPE_INTERVAL
rule_files:
  - $REPO/infra/prometheus/rules.yml
scrape_configs:
  - job_name: serving
    file_sd_configs:
      - files: ["$PROM_TARGETS/*.json"]
        refresh_interval: 1s
YAML
mv "$PROM_CONFIG.tmp" "$PROM_CONFIG"
"$PROMTOOL" check config "$PROM_CONFIG" >"$PROM_DIR/check.log" 2>&1 ||
  { cat "$PROM_DIR/check.log" >&2; die "promtool rejects $PROM_CONFIG"; }
rm -f "$PROM_PID_FILE"
if [[ -f $PROM_DIR/prometheus.log ]]; then mv "$PROM_DIR/prometheus.log" "$PROM_DIR/prometheus.previous.log"; fi
# setsid: the server outlives this script and a Ctrl-C aimed at the caller. The inner bash
# records its own pid, then becomes the server (exec).
# shellcheck disable=SC2016  # $$ and $@ are the inner bash's
setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$PROM_PID_FILE" \
  "$PROM_BIN" --config.file="$PROM_CONFIG" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
  --web.enable-lifecycle \
  --web.console.templates="$PROM_ROOT/etc/prometheus/consoles" \
  --web.console.libraries="$PROM_ROOT/etc/prometheus/console_libraries" \
  --storage.tsdb.path="$PROM_DIR/data" \
  --storage.tsdb.retention.time=1d \
  </dev/null >"$PROM_DIR/prometheus.log" 2>&1 &
deadline=$((SECONDS + PROMETHEUS_START_TIMEOUT))
until [[ $(curl -fsS "$(prometheus_url)/-/ready" 2>/dev/null) == *Ready* ]]; do
  # The pid file appears as the server starts; once there, a dead pid is a failed start.
  if pid=$(cat "$PROM_PID_FILE" 2>/dev/null) && ! is_alive "$pid"; then
    tail -n 20 "$PROM_DIR/prometheus.log" >&2
    die "prometheus exited while starting (log: $PROM_DIR/prometheus.log)"
  fi
  if ((SECONDS >= deadline)); then
    tail -n 20 "$PROM_DIR/prometheus.log" >&2
    die "prometheus not ready after ${PROMETHEUS_START_TIMEOUT}s (log: $PROM_DIR/prometheus.log)"
  fi
  sleep 0.1
done
say "prometheus up in $(elapsed_since "$began")s: $(prometheus_url) (targets: $PROM_TARGETS/*.json)"
