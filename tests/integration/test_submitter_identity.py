"""The submitter is proven, never typed (issue #15): through the real ingest service, its
submit API and the trained topic's ACLs on a real broker, every way a principal who is
both trainer and approver could name someone else as the submitter of their revision is
refused with its reason, and nothing reaches the audit log under the false name."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaException

from shared.codec import Codec
from shared.events import BaseModelRef, RevisionRegistered
from shared.kafka import acl
from shared.kafka.auth import KafkaEndpoint
from shared.kafka.producer import make_producer, publish
from shared.kafka.topics import dlq_of
from shared.trainer_client import (
    SubmissionRefused,
    describe_submission,
    submit,
    submit_to_ingest,
)
from tests.conftest import REPO, Infra
from tests.corpus.adapters import tiny_base_spec, write_adapter, write_base_model
from tests.eventually import eventually
from tests.stack import Stack

BASE = BaseModelRef(model_id="tiny-llama", revision="sha256:" + "b" * 64)
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}}
SCOPE = {"corpora": ["support-tickets"], "filtering_rules": ["pii-scrubbed"]}


@pytest.fixture(scope="module")
async def stack(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    stack = Stack(infra, tmp_path_factory.mktemp("submitter"))
    await stack.create()
    write_base_model(stack.root / "base")
    stack.start("ingest")
    stack.wait_ingest()
    yield stack
    stack.stop()


def staged(stack: Stack, adapter: str) -> Any:
    folder = stack.incoming / adapter
    write_adapter(folder, tiny_base_spec())
    (folder / "recipe.json").write_text(json.dumps(RECIPE))
    (folder / "data_scope.json").write_text(json.dumps(SCOPE))
    return describe_submission(
        folder,
        adapter=adapter,
        base=BASE,
        tokenizer_revision="tok-1",
        tokenizer_folder=stack.root / "base",
    )


def registered(stack: Stack, adapter: str) -> list[RevisionRegistered]:
    return [e for e in stack.events(adapter) if isinstance(e, RevisionRegistered)]


def test_a_trainer_who_also_approves_cannot_name_another_submitter(
    stack: Stack, unique: Any
) -> None:
    url = stack.env()["INGEST_URL"]
    carol = stack.token_of("carol", "trainer")
    stack.token_of("carol", "approver")  # the same person may approve, elsewhere
    adapter = unique("carols")

    # 1. There is no --submitter to type.
    cli = subprocess.run(
        [str(Path(sys.executable).parent / "adapterctl"), "submit", str(stack.incoming / adapter),
         "--adapter", adapter, "--base", "tiny-llama@r", "--tokenizer-revision", "tok-1",
         "--submitter", "dave"],
        cwd=REPO, env=stack.env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cli.returncode == 2 and "unrecognized arguments: --submitter" in cli.stderr

    # 2. A body naming someone else, with carol's trainer token: refused, nothing published.
    event = staged(stack, adapter)
    with pytest.raises(SubmissionRefused) as refused:
        submit_to_ingest(url, carol, dataclasses.replace(event, submitter="dave"))
    assert refused.value.status == 403 and "not 'dave'" in refused.value.detail

    # 3. Her approver token cannot submit at all.
    with pytest.raises(SubmissionRefused) as as_approver:
        submit_to_ingest(url, stack.token_of("carol", "approver"), event)
    assert as_approver.value.status == 403 and "acts as approver" in as_approver.value.detail

    # 4. Submitted as herself, the revision names her.
    receipt = submit_to_ingest(url, carol, event)
    assert receipt.submitter == "carol"
    [revision] = eventually(lambda: registered(stack, adapter), timeout=90, message="ingest")
    assert revision.submitter == "carol"
    assert revision.envelope.actor.principal == "carol"


def test_a_revoked_trainers_token_submits_nothing(stack: Stack, unique: Any) -> None:
    name = unique("ted")
    token = stack.token_of(name, "trainer")
    stack.adapterctl("principal", "revoke", name, "--role", "trainer")
    with pytest.raises(SubmissionRefused) as refused:
        submit_to_ingest(stack.env()["INGEST_URL"], token, staged(stack, unique("teds")))
    assert refused.value.status == 401 and "unknown or revoked" in refused.value.detail


def test_a_submission_forged_onto_the_trained_topic_never_reaches_the_log(
    stack: Stack, unique: Any
) -> None:
    adapter = unique("forged")
    event = dataclasses.replace(staged(stack, adapter), submitter="dave")
    # Broker network access alone, or an operator's Kafka password: the topic refuses.
    value = Codec.from_env().encode(event)
    for kafka in (
        KafkaEndpoint(stack.infra.bootstrap_servers),
        stack.infra.as_principal(acl.OPERATOR),
    ):
        producer = make_producer(kafka, **{"message.timeout.ms": 2000})
        with pytest.raises((KafkaException, TimeoutError)):
            publish(producer, stack.trained_topic, key=b"k", value=value, timeout_s=8)
    # With ingest's own stolen password, the record lands, and ingest refuses it: "dave"
    # holds no trainer token. The reason is on the dead-letter topic; the log has nothing.
    submit(stack.infra.as_principal(acl.INGEST), event, topic=stack.trained_topic)
    dead = eventually(
        lambda: [
            r for r in stack.records(dlq_of(stack.trained_topic)) if r.key == adapter.encode()
        ],
        timeout=90,
        message="the forged submission was not dead-lettered",
    )
    assert "submitter_unauthenticated: 'dave' holds no active trainer token" in (
        dead[0].header("dlq.reason") or ""
    )
    assert registered(stack, adapter) == []
