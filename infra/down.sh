#!/usr/bin/env bash
# Stop the local Kafka cluster, PostgreSQL and Prometheus, then prove that no process of
# ours is left. Exits 0 when nothing ran; non-zero only if something could not be stopped.
set -euo pipefail
# shellcheck source=kafka/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka/common.sh"
# shellcheck source=postgres/common.sh
source "$REPO/infra/postgres/common.sh"
# shellcheck source=prometheus/common.sh
source "$REPO/infra/prometheus/common.sh"

# One up/down at a time (say, parallel test workers each calling up.sh).
mkdir -p "$VAR_DIR"
exec 9>"$VAR_DIR/infra.lock"
flock 9

our_pids() {
  all_kafka_pids
  all_prometheus_pids
  if base=$(recorded_base); then all_pg_pids "$base"; fi
}

mapfile -t before < <(our_pids)
rc=0
# Try each even if one fails, so one stuck service does not keep the others up.
"$REPO/infra/kafka/stop.sh" || rc=1
"$REPO/infra/postgres/stop.sh" || rc=1
"$REPO/infra/prometheus/stop.sh" || rc=1
rm -f "$VAR_DIR/infra.env"

left=()
for pid in "${before[@]}" $(our_pids); do
  if is_alive "$pid"; then left+=("$pid"); fi
done
if ((${#left[@]})); then
  ps -o pid,cmd -p "$(IFS=,; echo "${left[*]}")" >&2 || true
  die "still running after down: ${left[*]}"
fi
# Exited processes stay listed (as zombies) until pid 1 reaps them; give it a moment,
# so that a pgrep right after down.sh shows nothing.
for _ in {1..50}; do
  reaped=1
  for pid in "${before[@]}"; do [[ -e /proc/$pid ]] && reaped=0; done
  ((reaped)) && break
  sleep 0.1
done
if ((${#before[@]})); then
  say "infra down: stopped pids ${before[*]}; none left"
else
  say "infra down: nothing was running"
fi
exit "$rc"
