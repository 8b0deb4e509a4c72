#!/usr/bin/env bash
# Stop one node of the cluster, for fault tests. Default SIGKILL: a crash, no controlled
# shutdown. --term: a clean shutdown instead. Usage: infra/kafka/kill_broker.sh [--term] ID
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

signal=KILL
if [[ ${1:-} == --term ]]; then
  signal=TERM
  shift
fi
id=${1:?usage: kill_broker.sh [--term] ID}
load_layout
check_node_id "$id"
if ! pid=$(node_pid "$id"); then
  say "kafka node $id is not running"
  exit 0
fi
kill "-$signal" "$pid"
wait_gone 30 "$pid" || die "kafka node $id (pid $pid) still runs 30 s after SIG$signal"
# A JVM's main thread can be a zombie while its other threads still exit and hold the
# sockets: the node is down only once its port refuses connections.
port=$(broker_port "$id")
for _ in $(seq 100); do
  port_open "$port" || break
  sleep 0.1
done
port_open "$port" && die "kafka node $id (pid $pid) is gone but port $port still accepts"
rm -f "$(pid_file "$id")"
say "kafka node $id (pid $pid) stopped with SIG$signal"
