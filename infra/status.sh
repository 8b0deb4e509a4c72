#!/usr/bin/env bash
# Print what of the local infrastructure runs. Exit 0 when all of it runs, else 1.
set -euo pipefail
# shellcheck source=kafka/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/kafka/common.sh"
# shellcheck source=postgres/common.sh
source "$REPO/infra/postgres/common.sh"
# shellcheck source=prometheus/common.sh
source "$REPO/infra/prometheus/common.sh"

ok=1
if [[ -f $LAYOUT_FILE ]]; then
  load_layout
  for ((id = 1; id <= BROKERS; id++)); do
    port=$(broker_port "$id")
    if pid=$(node_pid "$id"); then
      state="running (pid $pid)"
      port_open "$port" || state+=", port $port not accepting yet"
    else
      state="stopped"
      ok=0
    fi
    printf 'kafka node %s  127.0.0.1:%s  %s\n' "$id" "$port" "$state"
  done
else
  printf 'kafka       no cluster yet\n'
  ok=0
fi

if base=$(recorded_base); then
  if pid=$(postmaster_pid "$base"); then
    printf 'postgres    127.0.0.1:%s  running (pid %s, %s)\n' \
      "$(sed -n 4p "$base/data/postmaster.pid")" "$pid" "$base/data"
  else
    printf 'postgres    stopped (%s)\n' "$base/data"
    ok=0
  fi
else
  printf 'postgres    no cluster yet\n'
  ok=0
fi

if pid=$(prometheus_pid); then
  state="running (pid $pid)"
  port_open "$PROMETHEUS_PORT" || state+=", port $PROMETHEUS_PORT not accepting yet"
  printf 'prometheus  127.0.0.1:%s  %s\n' "$PROMETHEUS_PORT" "$state"
else
  printf 'prometheus  stopped\n'
  ok=0
fi

[[ -f $VAR_DIR/infra.env ]] && grep '^export' "$VAR_DIR/infra.env"
((ok))
