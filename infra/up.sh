#!/usr/bin/env bash
# Start the local Kafka cluster, PostgreSQL and Prometheus, then write var/infra.env for
# other scripts and tests to source. BROKERS=1|3 (default 1) passes through to Kafka; also
# KAFKA_PORT_BASE, PG_PORT, PROMETHEUS_PORT. Idempotent: what already runs is left alone.
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

began=$EPOCHREALTIME
# 9>&-: the servers must not inherit the lock, or it would outlive this script.
"$REPO/infra/kafka/start.sh" 9>&-
"$REPO/infra/postgres/start.sh" 9>&-
# Always on: it starts in about 0.2 s and scrapes nothing until a file_sd file names a target.
"$REPO/infra/prometheus/start.sh" 9>&-

load_layout
# Every principal's Kafka user and ACLs (idempotent: a second run changes nothing).
"$REPO/.venv/bin/python" "$REPO/infra/kafka_access.py" \
  --bootstrap "$(bootstrap_servers)" --credentials "$CREDENTIALS_DIR"
env_file="$VAR_DIR/infra.env"
cat >"$env_file.tmp" <<ENV
# Written by infra/up.sh. Source it to reach the local Kafka, PostgreSQL and Prometheus
# (it scrapes what var/prometheus/targets/*.json name); Kafka and PostgreSQL as the admin
# (topics, users, ACLs); each service and role has its own principal and password file in
# KAFKA_CREDENTIALS_DIR (README: "Credentials").
export KAFKA_BOOTSTRAP_SERVERS=$(bootstrap_servers)
export KAFKA_SASL_USERNAME=admin
export KAFKA_SASL_PASSWORD_FILE=$CREDENTIALS_DIR/admin.password
export KAFKA_CREDENTIALS_DIR=$CREDENTIALS_DIR
export DATABASE_URL=postgresql://postgres@127.0.0.1:$PG_PORT/$PG_DB
export PROMETHEUS_URL=$(prometheus_url)
export PROMETHEUS_TARGETS_DIR=$PROM_TARGETS
ENV
mv "$env_file.tmp" "$env_file"
say "infra up in $(elapsed_since "$began")s; source $env_file:"
grep '^export' "$env_file"
