#!/usr/bin/env bash
# The compose stack's Kafka, with the same security as infra/kafka/common.sh: SASL/SCRAM-SHA-512
# for clients and between brokers, PLAIN for the controller, KRaft's StandardAuthorizer with
# nothing allowed where no ACL allows it. The passwords are the files the `kafka-credentials`
# service made in /credentials; the `kafka-access` service then gives every project principal
# its user and ACLs (infra/kafka_access.py). Run as the image's entrypoint (bash, not sh).
set -euo pipefail
CREDENTIALS=/credentials
DATA=/tmp/kafka-data
CONFIG=/tmp/server.properties
export LOG_DIR=/tmp/kafka-logs

password() { cat "$CREDENTIALS/$1.password"; }
controller=$(password controller) broker=$(password broker) admin=$(password admin)

(umask 077 && cat >"$CONFIG" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@kafka:9093
listeners=INTERNAL://:9092,CONTROLLER://:9093,HOST://:39092
advertised.listeners=INTERNAL://kafka:9092,HOST://127.0.0.1:39092
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
log.dirs=$DATA
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="broker" password="$broker";
listener.name.host.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="$controller" user_controller="$controller";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:controller;User:broker;User:admin
allow.everyone.if.no.acl.found=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
)
# What the healthcheck's kafka-broker-api-versions.sh authenticates with.
(umask 077 && cat >/tmp/admin.properties <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
PROPS
)
if [[ ! -f $DATA/meta.properties ]]; then
  /opt/kafka/bin/kafka-storage.sh format -t "${CLUSTER_ID:?}" -c "$CONFIG" \
    --add-scram "SCRAM-SHA-512=[name=broker,password=$broker]" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=$admin]"
fi
exec /opt/kafka/bin/kafka-server-start.sh "$CONFIG"
