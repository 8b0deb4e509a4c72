"""Auditor: events/s that `adapterctl audit verify` and `audit replay` (and the independent
Java verifier, `verifiers/java/logcheck`) get through over a
lifecycle topic with a realistic history (about 20,000 events over 300 adapters, committed
through the registry and published by the relay), against a raw confluent-kafka consume plus
fastavro schemaless decode of the same topic in the same run; with a profile of where the
auditor's time goes (consume, decode, chain checks, the replay's fold).

    make infra-up && .venv/bin/python -m benchmarks.bench_audit [--events 20000 --adapters 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import asyncpg
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fastavro import schemaless_reader

from adapterctl.audit import run_replay, run_verify
from adapterctl.source import Source, accepted_events, read_kafka
from benchmarks.common import REPO, Figure, delete_topics, infra_env, kafka_of, write_report
from benchmarks.history import commit_and_publish, plan
from shared import chain
from shared.audit import Position, read_entry, verify
from shared.codec import HEADER_SIZE, Codec
from shared.coldstore.directory import DirectoryColdStorage
from shared.kafka.auth import Kafka, KafkaEndpoint, client_config
from shared.kafka.topics import TopicSpec, admin_client, provision
from shared.pointers import fold
from shared.signing import load_or_create_signer
from tests.verifiers import LOGCHECK, build_logcheck

PARTITIONS = 6  # the lifecycle topic's default (`LIFECYCLE_PARTITIONS`)
# The bench relay's log key and checkpoints (kept between runs, so --topic can reuse both).
KEYS = REPO / "var" / "bench" / "audit"


async def generate(bootstrap: Kafka, dsn_base: str, events: int, adapters: int) -> dict[str, Any]:
    """A fresh database and lifecycle topic holding the planned history."""
    database = f"bench_audit_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(dsn_base)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    topic = f"bench.audit.{uuid.uuid4().hex[:8]}"
    provision(admin_client(bootstrap), [TopicSpec(topic, PARTITIONS)])
    stories = plan(events, adapters)
    dsn = dsn_base.rsplit("/", 1)[0] + "/" + database
    signer = load_or_create_signer(KEYS / "log.key")
    published = await commit_and_publish(
        stories, dsn, bootstrap, topic, signer=signer, cold=DirectoryColdStorage(KEYS / "cold")
    )
    admin = await asyncpg.connect(dsn_base)  # the history now lives on the topic alone
    await admin.execute(f'DROP DATABASE "{database}"')
    await admin.close()
    return {"topic": topic, **published}


def raw_consume(bootstrap: Kafka, topic: str, decode: bool) -> int:
    """Read every partition to its end with batched consumes; with `decode`, read each body
    with fastavro under its writer schema (found by fingerprint), and nothing more."""
    schemas = {v.fingerprint: v.parsed for v in Codec.from_env().catalogue}
    consumer = Consumer(
        {
            **client_config(bootstrap),
            "group.id": f"bench-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 10,  # as the auditor's reader: no broker-side wait at the end
        }
    )
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, end in ends.items() if end])
    pending, count, total = {p for p, end in ends.items() if end}, 0, sum(ends.values())
    while pending:
        # Never ask for more than are left: a consume call waits for as many as it asks for.
        for msg in consumer.consume(min(1000, max(1, total - count)), timeout=1.0):
            if msg.error():
                continue
            if decode:
                value = cast(bytes, msg.value())
                body = io.BytesIO(value)
                body.seek(HEADER_SIZE)
                schemaless_reader(body, schemas[value[2:HEADER_SIZE]], None)
            count += 1
            partition, offset = cast(int, msg.partition()), cast(int, msg.offset())
            if offset + 1 >= ends[partition]:
                pending.discard(partition)
    consumer.close()
    return count


def library_verify(source: Source, *, signed: bool = True, every: bool = False) -> int:
    """`adapterctl audit verify` as a function call (signatures and checkpoints checked, as
    by default; `--every-signature`, each event's own too; or `--unsigned`, the hash chain
    alone); its output is checked."""
    out = io.StringIO()
    args = argparse.Namespace(
        json=False,
        public_key=[],
        log_key=[str(KEYS / "log.key.pub")],
        checkpoints=str(KEYS / "cold"),
        copy_of="",
        unsigned=not signed,
        every_signature=every,
        against_registry=False,
    )
    with contextlib.redirect_stdout(out):
        status = run_verify(args, source)
    said = out.getvalue()
    assert status == 0 and said.startswith("OK"), said
    assert signed == ("every event signed by the registry" in said), said
    return status


def library_replay(source: Source) -> int:
    """`adapterctl audit replay --json` as a function call, its JSON parsed and checked."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = run_replay(argparse.Namespace(json=True), source)
    replayed = json.loads(out.getvalue())
    assert status == 0 and replayed["ok"] and replayed["revisions"], replayed["problems"]
    return status


def installed(env: dict[str, str], *args: str) -> str:
    """The installed script, end to end: interpreter start, imports, read, verify, print."""
    script = Path(sys.executable).parent / "adapterctl"
    result = subprocess.run(
        [str(script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def second_verifier(kafka: KafkaEndpoint, topic: str, credentials: str) -> str:
    """The independent Java verifier (`verifiers/java/logcheck`) over the same topic and
    checkpoints, end to end: JVM start, Kafka read, decode, chain, signatures, checkpoints."""
    password = Path(credentials) / f"{kafka.username}.password"
    user = ["--user", kafka.username, "--password-file", str(password)] if kafka.username else []
    result = subprocess.run(
        [
            str(LOGCHECK), "verify", "--bootstrap", kafka.bootstrap_servers, "--topic", topic,
            *user, "--checkpoints", str(KEYS / "cold"), "--log-key", str(KEYS / "log.key.pub"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip()


def timed(work: Callable[[], Any]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def profile(source: Source) -> dict[str, Any]:
    """One verify + replay, step by step, timed: where the auditor's time goes."""
    codec = Codec.from_env()
    steps: dict[str, float] = {}
    started = time.perf_counter()
    records = list(source.read(source.kafka, source.topic, source.timeout_s))
    steps["consume_s"] = time.perf_counter() - started
    started = time.perf_counter()
    entries = [
        read_entry(codec, Position(r.topic, r.partition, r.offset), r.key, r.value) for r in records
    ]
    steps["decode_s"] = time.perf_counter() - started
    started = time.perf_counter()
    report = verify(entries)
    steps["verify_s"] = time.perf_counter() - started
    started = time.perf_counter()
    fold(accepted_events(report))
    steps["fold_s"] = time.perf_counter() - started
    assert report.ok and report.events == len(records), report.first_problem
    total = sum(steps.values())
    # Inside decode: the writer's record (what the hash is checked over) and the event.
    writer_s = timed(lambda: [codec.decode_writer(r.value or b"") for r in records])
    # Inside verify: recomputing each link's hash, the one check verify makes per event.
    hash_s = timed(
        lambda: [
            chain.verify_link(
                e.event.envelope.prev_hash, e.event.envelope.seq, e.full_name, e.record
            )
            for e in entries
            if e.event is not None
        ]
    )
    return {
        "events": len(records),
        **{k: round(v, 3) for k, v in steps.items()},
        "share": {k.removesuffix("_s"): round(v / total, 3) for k, v in steps.items()},
        "decode_writer_record_s": round(writer_s, 3),
        "decode_event_s": round(steps["decode_s"] - writer_s, 3),
        "verify_hash_recompute_s": round(hash_s, 3),
        "verify_placement_and_legality_s": round(steps["verify_s"] - hash_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--adapters", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--topic", help="reuse a topic an earlier run kept (skips generating)")
    parser.add_argument("--keep", action="store_true", help="keep the generated topic")
    args = parser.parse_args()
    env = infra_env()
    bootstrap, dsn = kafka_of(env), env["DATABASE_URL"]
    history: dict[str, Any] = {"topic": args.topic, "reused": True}
    if args.topic is None:
        history = asyncio.run(generate(bootstrap, dsn, args.events, args.adapters))
    topic = history["topic"]
    source = Source(read_kafka, bootstrap, topic, 15.0)
    events = raw_consume(bootstrap, topic, decode=False)  # also warms the broker's page cache
    runs: dict[str, list[float]] = {
        "raw": [], "raw_consume_only": [], "verify": [], "verify_every_signature": [],
        "verify_unsigned": [], "replay": [], "second_verifier": [],
    }  # fmt: skip
    build_logcheck()
    for _ in range(args.rounds):
        runs["raw_consume_only"].append(timed(lambda: raw_consume(bootstrap, topic, False)))
        runs["raw"].append(timed(lambda: raw_consume(bootstrap, topic, True)))
        runs["verify"].append(timed(lambda: library_verify(source)))
        runs["verify_every_signature"].append(timed(lambda: library_verify(source, every=True)))
        runs["verify_unsigned"].append(timed(lambda: library_verify(source, signed=False)))
        runs["replay"].append(timed(lambda: library_replay(source)))
        runs["second_verifier"].append(
            timed(lambda: second_verifier(bootstrap, topic, env.get("KAFKA_CREDENTIALS_DIR", "")))
        )
    script_env = {
        **os.environ,
        **env,
        "PYTHONPATH": str(REPO),
        "LOG_PUBLIC_KEYS": str(KEYS / "log.key.pub"),
        "LOG_CHECKPOINTS": str(KEYS / "cold"),
    }
    startup_s = timed(lambda: installed(script_env, "--help"))  # interpreter and imports only
    started = time.perf_counter()
    verdict = installed(script_env, "audit", "verify", "--topic", topic)
    script_s = time.perf_counter() - started
    assert verdict.startswith("OK"), verdict
    rate = {name: events / statistics.median(times) for name, times in runs.items()}
    raw_name = "raw consume + fastavro decode"
    figures = [
        Figure("audit verify (library, signatures and checkpoints), events/s", rate["verify"],
               rate["raw"], "events/s", raw_name, higher_is_better=True),
        Figure("audit verify --every-signature (library), events/s",
               rate["verify_every_signature"], rate["raw"], "events/s", raw_name,
               higher_is_better=True),
        Figure("audit verify --unsigned (library, hash chain only), events/s",
               rate["verify_unsigned"], rate["raw"], "events/s", raw_name, higher_is_better=True),
        Figure("audit replay --json (library), events/s", rate["replay"], rate["raw"],
               "events/s", raw_name, higher_is_better=True),
        Figure("adapterctl audit verify (installed script, end to end), events/s",
               events / script_s, rate["raw"], "events/s", raw_name, higher_is_better=True),
        Figure("logcheck verify (the independent Java verifier, end to end, JVM start "
               "included), events/s", rate["second_verifier"], rate["raw"], "events/s",
               raw_name, higher_is_better=True),
        Figure("logcheck verify (Java) against adapterctl audit verify (installed script), "
               "events/s", rate["second_verifier"], events / script_s, "events/s",
               "adapterctl audit verify, end to end", higher_is_better=True),
    ]  # fmt: skip
    details = {
        "history": history,
        "events": events,
        "partitions": PARTITIONS,
        "rounds": args.rounds,
        "seconds": {k: [round(t, 3) for t in v] for k, v in runs.items()},
        "events_per_s_median": {k: round(v, 1) for k, v in rate.items()},
        "installed_script_s": round(script_s, 3),
        "installed_script_said": verdict,
        "installed_script_startup_s": round(startup_s, 3),
        "second_verifier_said": second_verifier(
            bootstrap, topic, env.get("KAFKA_CREDENTIALS_DIR", "")
        ),
        "profile": profile(source),
    }
    write_report("audit", figures, details)
    if args.topic is None and not args.keep:
        delete_topics(bootstrap, [topic])


if __name__ == "__main__":
    main()
