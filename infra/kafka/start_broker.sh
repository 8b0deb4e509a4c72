#!/usr/bin/env bash
# Start node ID of the existing cluster again (after kill_broker.sh) and wait until the
# cluster lists all its brokers. Usage: infra/kafka/start_broker.sh ID
set -euo pipefail
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

id=${1:?usage: start_broker.sh ID}
load_layout
check_node_id "$id"
launch_node "$id"
wait_ready "$id"
