# Kafka layout and per-node helpers shared by start.sh, stop.sh, start_broker.sh,
# kill_broker.sh. Sourced, never run.
# shellcheck shell=bash
# shellcheck source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

KAFKA_DIR="$VAR_DIR/kafka"
KAFKA_LIBS="$REPO/.cache/kafka/libs"
LAYOUT_FILE="$KAFKA_DIR/cluster.env"
# Passwords of the brokers' own principals and of every client principal, one file each
# (mode 0600). Clients authenticate with SASL/SCRAM-SHA-512; the controllers with PLAIN
# (KRaft cannot use SCRAM there: the credentials live in the metadata they serve).
CREDENTIALS_DIR="$KAFKA_DIR/credentials"
# A cluster formatted before authentication was on has no SCRAM users: it is remade.
AUTH_LAYOUT=scram-acl-1
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
# Named as in Kafka's own bin/kafka-run-class.sh. C1 JIT only: on 2 cores, C2 compiling
# in three JVMs at once nearly doubles the start time (12 s -> 7 s for 3 nodes); a
# benchmark of broker throughput can set KAFKA_JVM_PERFORMANCE_OPTS=-XX:+UseG1GC.
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m}
KAFKA_JVM_PERFORMANCE_OPTS=${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseG1GC -XX:TieredStopAtLevel=1}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-120}

node_dir() { printf '%s/node-%s' "$KAFKA_DIR" "$1"; }
pid_file() { printf '%s/node-%s.pid' "$KAFKA_DIR" "$1"; }
broker_port() { echo $((PORT_BASE + $1 - 1)); }
controller_port() { echo $((PORT_BASE + 100 + $1 - 1)); }

bootstrap_servers() {
  local id out=""
  for ((id = 1; id <= BROKERS; id++)); do out+="${out:+,}127.0.0.1:$(broker_port "$id")"; done
  printf '%s\n' "$out"
}

# The pid of node $1 if it runs (per its pid file), else nothing and status 1.
node_pid() {
  local pid
  pid=$(cat "$(pid_file "$1")" 2>/dev/null) || return 1
  pid_matches "$pid" "kafka.Kafka $(node_dir "$1")/server.properties" && printf '%s\n' "$pid"
}

# Every broker JVM started from this repository, pid file or not (a deleted pid file
# must not hide a running broker from stop.sh).
all_kafka_pids() { pids_matching "kafka.Kafka $KAFKA_DIR/node-"; }

# Read the layout of the existing cluster: BROKERS, PORT_BASE, CLUSTER_ID.
load_layout() {
  [[ -f $LAYOUT_FILE ]] || die "no Kafka cluster in $KAFKA_DIR yet: run infra/kafka/start.sh"
  # shellcheck source=/dev/null
  source "$LAYOUT_FILE"
}

check_node_id() {
  [[ $1 =~ ^[1-9]$ ]] && (($1 <= BROKERS)) && return 0
  die "node id must be 1..$BROKERS, got '$1'"
}

# What `kafka-storage.sh random-uuid` prints (16 random bytes, base64url, unpadded),
# without starting a JVM. Like Kafka, never one starting with '-': it reads as a flag.
new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    [[ $id == -* ]] || break
  done
  printf '%s\n' "$id"
}

# Settle the layout for start.sh from env BROKERS / KAFKA_PORT_BASE. The controller
# quorum is written into each node's storage at format time, so another broker count
# or port set means a new cluster: the old one is wiped (only when none of it runs).
resolve_layout() {
  local want_brokers=${BROKERS:-1} want_base=${KAFKA_PORT_BASE:-39092} AUTH=none
  [[ $want_brokers =~ ^[1-9]$ ]] || die "BROKERS must be 1..9, got '$want_brokers'"
  [[ $want_base =~ ^[0-9]+$ ]] || die "KAFKA_PORT_BASE must be a port number"
  if [[ -f $LAYOUT_FILE ]]; then
    # shellcheck source=/dev/null
    source "$LAYOUT_FILE"
    if [[ $BROKERS == "$want_brokers" && $PORT_BASE == "$want_base" && $AUTH == "$AUTH_LAYOUT" ]]; then
      return 0
    fi
    [[ -z $(all_kafka_pids) ]] ||
      die "a $BROKERS-broker cluster on ports from $PORT_BASE runs: stop it (infra/kafka/stop.sh) first"
    say "layout changed ($BROKERS brokers from port $PORT_BASE, auth $AUTH -> $want_brokers from $want_base, auth $AUTH_LAYOUT): new cluster, wiping $KAFKA_DIR"
    rm -rf "$KAFKA_DIR"
  fi
  BROKERS=$want_brokers PORT_BASE=$want_base
  mkdir -p "$KAFKA_DIR"
  CLUSTER_ID=$(new_cluster_id)
  printf 'BROKERS=%s\nPORT_BASE=%s\nCLUSTER_ID=%s\nAUTH=%s\n' "$BROKERS" "$PORT_BASE" "$CLUSTER_ID" "$AUTH_LAYOUT" >"$LAYOUT_FILE"
}

# The password of principal $1, made (32 hex digits, mode 0600) the first time it is asked.
password_of() {
  local file="$CREDENTIALS_DIR/$1.password"
  if [[ ! -s $file ]]; then
    mkdir -p "$CREDENTIALS_DIR"
    chmod 700 "$CREDENTIALS_DIR"
    (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$file.tmp" && mv "$file.tmp" "$file")
  fi
  cat "$file"
}

write_props() {
  local id=$1 dir voters="" n rf min_isr controller_pw broker_pw
  dir=$(node_dir "$id")
  for ((n = 1; n <= BROKERS; n++)); do voters+="${voters:+,}$n@127.0.0.1:$(controller_port "$n")"; done
  # Three brokers: every internal topic on all three, a write needs two of them.
  rf=$((BROKERS < 3 ? BROKERS : 3))
  min_isr=$((rf >= 3 ? 2 : 1))
  controller_pw=$(password_of controller)
  broker_pw=$(password_of broker)
  mkdir -p "$dir/data" "$dir/logs"
  (umask 077 && : >"$dir/server.properties")  # it holds the brokers' passwords
  cat >"$dir/server.properties" <<PROPS
# Written by infra/kafka/start.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=SASL_PLAINTEXT://127.0.0.1:$(broker_port "$id"),CONTROLLER://127.0.0.1:$(controller_port "$id")
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$(broker_port "$id")
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_PLAINTEXT
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
log.dirs=$dir/data

# Every client authenticates (SCRAM-SHA-512) and every request is authorised: nothing is
# allowed where no ACL allows it (shared/kafka/acl.py grants them; infra/kafka_access.py).
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$broker_pw";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="$controller_pw" user_controller="$controller_pw";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:controller;User:broker;User:admin
allow.everyone.if.no.acl.found=false

default.replication.factor=$rf
min.insync.replicas=$min_isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr
# 50 partitions each (the defaults) make the first group join or transaction slow on 2 cores.
offsets.topic.num.partitions=6
transaction.state.log.num.partitions=6
share.coordinator.state.topic.num.partitions=6

# Tests join groups constantly; do not wait 3 s for more members.
group.initial.rebalance.delay.ms=0
# faust creates its own changelog and repartition topics.
auto.create.topics.enable=true
# The 128 MiB default is allocated at start and has crashed small heaps.
log.cleaner.dedupe.buffer.size=8388608
PROPS
}

# Format the storage of those nodes "$@" that have none yet, all at once (one JVM
# each, ~2 s; in parallel they overlap).
format_nodes() {
  local id dir job jobs=() failed=0
  for id in "$@"; do
    dir=$(node_dir "$id")
    [[ -f $dir/data/meta.properties ]] && continue
    write_props "$id"
    # The SCRAM users the brokers need before any ACL exists: themselves and the admin.
    "$JAVA" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format \
      -t "$CLUSTER_ID" -c "$dir/server.properties" \
      --add-scram "SCRAM-SHA-512=[name=broker,password=$(password_of broker)]" \
      --add-scram "SCRAM-SHA-512=[name=admin,password=$(password_of admin)]" \
      >"$dir/logs/format.log" 2>&1 &
    jobs+=("$!:$id")
  done
  for job in "${jobs[@]}"; do
    wait "${job%%:*}" && continue
    cat "$(node_dir "${job#*:}")/logs/format.log" >&2
    failed=1
  done
  ((!failed)) || die "formatting kafka storage failed"
}

# Start node $1 in the background unless it already runs. Does not wait for it: a
# node of three cannot finish starting before a majority of controllers is up.
launch_node() {
  local id=$1 dir pid port
  dir=$(node_dir "$id")
  if pid=$(node_pid "$id"); then
    say "kafka node $id already runs (pid $pid)"
    return 0
  fi
  for port in "$(broker_port "$id")" "$(controller_port "$id")"; do
    ! port_open "$port" || die "port $port is taken by another process; set KAFKA_PORT_BASE"
  done
  write_props "$id"
  format_nodes "$id"
  rm -f "$(pid_file "$id")"  # a stale one would read as "exited while starting"
  # Each run starts a fresh server.log, so errors shown on failure are this run's; the
  # previous run's (a killed broker's, say) is kept beside it.
  if [[ -f $dir/logs/server.log ]]; then mv "$dir/logs/server.log" "$dir/logs/server.previous.log"; fi
  # setsid: the broker outlives this script and a Ctrl-C or process-group kill aimed
  # at the caller. The inner bash records its own pid, then becomes the JVM (exec).
  # shellcheck disable=SC2016,SC2086  # $$ and $@ are the inner bash's; *_OPTS are flag lists
  setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$(pid_file "$id")" \
    "$JAVA" $KAFKA_HEAP_OPTS $KAFKA_JVM_PERFORMANCE_OPTS -Djava.awt.headless=true \
    -Dkafka.logs.dir="$dir/logs" \
    -Dlog4j2.configurationFile="$REPO/infra/kafka/log4j2.yaml" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >"$dir/logs/stdout.log" 2>&1 &
  say "kafka node $id starting (broker 127.0.0.1:$(broker_port "$id"), log $dir/logs/server.log)"
}

show_log_tail() {
  local dir
  dir=$(node_dir "$1")
  printf '\n--- kafka node %s: %s (first errors, last 30 lines) ---\n' "$1" "$dir/logs/server.log" >&2
  grep -m 3 -A 1 -E '^\[[^]]*\] (ERROR|FATAL) ' "$dir/logs/server.log" >&2 2>/dev/null || true
  printf -- '...\n' >&2
  tail -n 30 "$dir/logs/server.log" >&2 2>/dev/null || true
  if [[ -s $dir/logs/stdout.log ]]; then
    printf -- '--- kafka node %s: %s (last 20 lines) ---\n' "$1" "$dir/logs/stdout.log" >&2
    tail -n 20 "$dir/logs/stdout.log" >&2
  fi
}

fail_start() {
  local id
  for id in "$@"; do show_log_tail "$id"; done
  die "kafka did not become ready: see the logs above"
}

# Wait for nodes "$@" to accept connections (a broker opens its port only once it has
# caught up and been unfenced), then for the cluster metadata to list them. Polls,
# never a fixed sleep; gives up after KAFKA_START_TIMEOUT seconds.
wait_ready() {
  local began=$EPOCHREALTIME deadline=$((SECONDS + KAFKA_START_TIMEOUT)) id pid waiting
  local python="$REPO/.venv/bin/python"
  while :; do
    waiting=0
    for id in "$@"; do
      # The launched process writes its pid file itself, so it may not be there yet.
      if pid=$(cat "$(pid_file "$id")" 2>/dev/null) && [[ -n $pid ]] && ! is_alive "$pid"; then
        say "kafka node $id exited while starting"
        fail_start "$id"
      fi
      port_open "$(broker_port "$id")" || waiting=1
    done
    ((waiting)) || break
    ((SECONDS < deadline)) || { say "timed out after ${KAFKA_START_TIMEOUT}s waiting for ports"; fail_start "$@"; }
    sleep 0.2
  done
  if "$python" -c 'import confluent_kafka' 2>/dev/null; then
    # Only the nodes asked for: after kill_broker.sh, another node may be down on purpose.
    "$python" "$REPO/infra/wait_kafka.py" --bootstrap "$(bootstrap_servers)" \
      --username admin --password-file "$CREDENTIALS_DIR/admin.password" \
      --ids "$(IFS=,; echo "$*")" --timeout $((deadline - SECONDS > 5 ? deadline - SECONDS : 5)) ||
      fail_start "$@"
    say "kafka ready: node(s) $* in the cluster metadata after $(elapsed_since "$began")s"
  else
    say "no confluent_kafka in $REPO/.venv: checked the ports only, not the cluster metadata"
  fi
}
