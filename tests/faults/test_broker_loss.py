"""A broker of a 3-broker Kafka SIGKILLed mid-run (100 promotions; every private topic with
replication factor 3 and min.insync.replicas 2): nothing is lost, every revision ends
Activated (or Rejected) exactly once, the audit log verifies.

The cluster is a second one of its own (`VAR_DIR=var/faults3`, ports from 29092, below
the ephemeral range; `FAULTS_KAFKA_PORT_BASE`), started and stopped by the project's
scripts for this module only; the session's single broker at
39092 and its PostgreSQL are left alone (the pipeline's database is a private one there).
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.kafka.topics import admin_client, read_configs
from tests.conftest import REPO, Infra, _port_open
from tests.pipeline.driver import Pipeline, until_done

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PROMOTIONS = 100
CLUSTER = REPO / "var" / "faults3"
# Below Linux's ephemeral range (32768-60999): a client's outgoing connection can never be
# holding one of these ports when the cluster starts (it once held 49194, a controller's).
PORT_BASE = int(os.environ.get("FAULTS_KAFKA_PORT_BASE", "29092"))
BROKERS = ",".join(f"127.0.0.1:{PORT_BASE + i}" for i in range(3))


def infra_script(script: str, *args: str, var_dir: Path = CLUSTER) -> str:
    """Run infra/<script> (or a bash snippet) for the cluster in `var_dir`; its output."""
    env = {
        **os.environ,
        "VAR_DIR": str(var_dir),
        "BROKERS": "3",
        "KAFKA_PORT_BASE": str(PORT_BASE),
    }
    command = (
        ["bash", "-c", script, "-", *args]
        if " " in script
        else [str(REPO / "infra" / script), *args]
    )
    result = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, f"{script}: {result.stdout}{result.stderr}"
    return result.stdout


def kafka_pids(var_dir: Path) -> set[int]:
    """The broker pids `infra/kafka/stop.sh` run with `var_dir` would stop."""
    out = infra_script("source infra/kafka/common.sh && all_kafka_pids", var_dir=var_dir)
    return {int(p) for p in out.split()}


@pytest.fixture(scope="module")
def cluster3(infra: Infra) -> Iterator[Infra]:
    """The 3-broker cluster, with the session's PostgreSQL; stopped at the module's end."""
    main_brokers = kafka_pids(REPO / "var")
    try:
        infra_script("kafka/start.sh")  # inside: a node that fails to start is stopped too
        ours = kafka_pids(CLUSTER)
        assert len(ours) == 3 and not ours & main_brokers, (ours, main_brokers)
        assert kafka_pids(REPO / "var") == main_brokers  # var/'s scripts do not see ours
        credentials = CLUSTER / "kafka" / "credentials"
        # Its principals and ACLs, as infra/up.sh gives the main cluster's.
        infra_script(
            f"{sys.executable} infra/kafka_access.py --bootstrap {BROKERS}"
            f" --credentials {credentials}"
        )
        yield Infra(BROKERS, infra.database_url, str(credentials))
    finally:
        infra_script("down.sh")  # with VAR_DIR=var/faults3: this cluster only
        assert not kafka_pids(CLUSTER), "the 3-broker cluster outlived down.sh"
        shutil.rmtree(CLUSTER, ignore_errors=True)  # the next run starts an empty cluster
        assert kafka_pids(REPO / "var") == main_brokers, "down.sh stopped the main cluster"
        assert _port_open(infra.bootstrap_servers.split(",")[0])


def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """partition -> the broker leading it."""
    meta = admin_client(bootstrap).list_topics(topic, timeout=30).topics[topic]
    return {p: m.leader for p, m in meta.partitions.items()}


@pytest.mark.timeout(600)
async def test_losing_a_broker_of_three_mid_run_loses_and_duplicates_no_promotion(
    cluster3: Infra, tmp_path: Path
) -> None:
    seed = int(os.environ.get("FAULTS_SEED") or random.SystemRandom().randrange(1 << 32))
    rng = random.Random(seed)
    at = rng.uniform(0.2, 0.5)
    pipeline = await Pipeline.start(cluster3, tmp_path, replication_factor=3, min_insync_replicas=2)
    try:
        topic = pipeline.stack.lifecycle_topic
        admin = admin_client(cluster3.kafka)
        meta = admin.list_topics(topic, timeout=30).topics[topic]
        assert {len(p.replicas) for p in meta.partitions.values()} == {3}
        assert read_configs(admin, [topic])[topic]["min.insync.replicas"] == "2"
        # The broker leading the most lifecycle partitions: the relay writes through it.
        led = list(leaders(cluster3.kafka, topic).values())
        victim = max(sorted(set(led)), key=lambda b: (led.count(b), rng.random()))
        print(f"\n[kafka] seed {seed}: kill broker {victim} after {at:.0%}; logs in {tmp_path}")

        await pipeline.promote(PROMOTIONS)
        await until_done(pipeline, at * PROMOTIONS)
        in_flight = PROMOTIONS - pipeline.done()
        await asyncio.to_thread(infra_script, "kafka/kill_broker.sh", str(victim))
        assert not _port_open(f"127.0.0.1:{PORT_BASE + victim - 1}"), "the broker still serves"
        print(f"[kafka] broker {victim} SIGKILLed with {in_flight} promotions in flight")

        took = await pipeline.wait(timeout_s=420, stall_s=150)
        report = await pipeline.report()
        moved = leaders(cluster3.kafka, topic)
        print(
            f"[kafka] {PROMOTIONS} promotions in {took:.0f}s on two brokers; lifecycle leaders "
            f"now {moved}; {report.duplicates} duplicates on the wire; "
            + pipeline.bot_summary().strip()
        )
        assert victim not in moved.values()
        report.raise_if_bad(f"seed {seed}")
        died = pipeline.supervisor.unexpected_deaths()
        assert not died, f"services died of the broker's loss: {died}"
        print(pipeline.audit().strip())
    finally:
        await pipeline.stop()
