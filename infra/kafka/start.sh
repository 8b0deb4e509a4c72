#!/usr/bin/env bash
# Start a local KRaft Kafka cluster from the Maven Central jars and wait until it serves.
#   BROKERS=1|3 (default 1)    combined broker+controller nodes, node.id 1..N
#   KAFKA_PORT_BASE (39092)    node N: PLAINTEXT base+N-1, CONTROLLER base+100+N-1
#   KAFKA_START_TIMEOUT (120)  seconds to wait for readiness
# Data and logs under var/kafka/node-<id>/. Idempotent: running nodes are left alone.
# Another BROKERS or KAFKA_PORT_BASE than the existing cluster's makes a new, empty
# cluster (the controller quorum is fixed at format time).
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

"$REPO/infra/kafka/fetch.sh"
resolve_layout
ids=()
for ((id = 1; id <= BROKERS; id++)); do ids+=("$id"); done
format_nodes "${ids[@]}"
for id in "${ids[@]}"; do launch_node "$id"; done
wait_ready "${ids[@]}"
say "kafka up: $(bootstrap_servers)"
