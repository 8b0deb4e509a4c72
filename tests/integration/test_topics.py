"""Topic provisioning: the catalogue's configs as the broker reports them, idempotently."""

from __future__ import annotations

from collections.abc import Callable

from shared.kafka.topics import (
    COMMANDS,
    DAY_MS,
    LIFECYCLE,
    TRAINED,
    TopicSpec,
    admin_client,
    catalogue,
    dlq_of,
    provision,
    read_configs,
)
from tests.conftest import Infra

EXPECTED = {
    TRAINED: {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
    LIFECYCLE: {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
    COMMANDS: {"cleanup.policy": "delete", "retention.ms": str(7 * DAY_MS)},
    dlq_of(TRAINED): {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
    dlq_of(LIFECYCLE): {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
    dlq_of(COMMANDS): {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)},
}


def test_provisioned_topics_read_back_with_the_architecture_configs(infra: Infra) -> None:
    admin = admin_client(infra.kafka)
    specs = catalogue(lifecycle_partitions=6)
    provision(admin, specs)

    configs = read_configs(admin, EXPECTED)
    for topic, expected in EXPECTED.items():
        assert {k: configs[topic][k] for k in expected} == expected, topic
    meta = admin.list_topics(timeout=10).topics
    assert len(meta[LIFECYCLE].partitions) == 6


def test_provisioning_twice_changes_nothing(infra: Infra) -> None:
    admin = admin_client(infra.kafka)
    provision(admin, catalogue())
    again = provision(admin, catalogue())
    assert not again.changed, again


def test_provisioning_repairs_a_drifted_config_and_grows_partitions(
    infra: Infra, unique: Callable[[str], str]
) -> None:
    admin = admin_client(infra.kafka)
    name = unique("drifted")
    provision(admin, [TopicSpec(name, 1, {"cleanup.policy": "compact", "retention.ms": "1000"})])
    spec = TopicSpec(name, 3, {"cleanup.policy": "delete", "retention.ms": "-1"})

    report = provision(admin, [spec])

    assert report.altered == [name] and report.repartitioned == [name]
    assert {k: read_configs(admin, [name])[name][k] for k in spec.configs} == dict(spec.configs)
    assert len(admin.list_topics(timeout=10).topics[name].partitions) == 3
    assert not provision(admin, [spec]).changed
