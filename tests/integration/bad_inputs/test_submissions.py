"""The corpus's bad AdapterTrained fields and bad adapter folders, submitted to the
trained topic as a trainer would and read by the real ingest and validator processes:
each ends as RevisionRejected with its finding code, or in the trained topic's `.dlq`
with its reason; none is validated, and none is dropped silently."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from shared.codec import Codec
from shared.events import BaseModelRef, RevisionRejected, RevisionValidated
from shared.kafka.producer import make_producer
from shared.kafka.reader import LogRecord
from shared.kafka.topics import dlq_of
from shared.trainer_client import describe_submission
from tests.corpus.bad_inputs import Entry, load
from tests.corpus.bad_inputs.submissions import change_folder, with_fields, write_adapter_folder
from tests.eventually import eventually
from tests.integration.bad_inputs.conftest import BASE_ID, BASE_REVISION, ENVIRONMENT
from tests.stack import ServiceDied, Stack

ENTRIES = (*load("adapter_trained"), *load("adapter_files"))
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"], "hyperparameters": {"r": "8"}}
SCOPE = {
    "corpora": ["support-tickets"],
    "time_window_start": "2026-07-01",
    "time_window_end": "2026-09-30",
    "filtering_rules": ["pii-scrubbed"],
}


@dataclass
class Submitted:
    entry: Entry
    adapter: str  # the good name; an entry may send another
    value: bytes
    decision: Any = None  # RevisionValidated | RevisionRejected
    dead: LogRecord | None = None
    events: list[Any] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.decision is not None or self.dead is not None


def _submission(stack: Stack, entry: Entry, codec: Codec) -> Submitted:
    adapter = f"{entry.id[:48]}-{stack.token}"
    folder = stack.incoming / adapter
    files = entry.input if entry.entry_point == "adapter_files" else {}
    write_adapter_folder(folder, files)
    (folder / "recipe.json").write_text(json.dumps(RECIPE))
    (folder / "data_scope.json").write_text(json.dumps(SCOPE))
    event = describe_submission(
        folder,
        adapter=adapter,
        base=BaseModelRef(model_id=BASE_ID, revision=BASE_REVISION),
        submitter="trainer-alice",
        tokenizer_revision="tok-1",
        tokenizer_folder=stack.root / "base",
        target_environments=[ENVIRONMENT],
    )
    change_folder(folder, files)
    if entry.entry_point == "adapter_trained":
        places = {"incoming": str(stack.incoming), "folder": str(folder)}
        event = with_fields(event, entry.input, places)
    return Submitted(entry, adapter, codec.encode(event))


def _collect(stack: Stack, submitted: list[Submitted], timeout_s: float) -> None:
    """Fill in each submission's outcome until all are decided (the test asserts on the
    rest after `timeout_s`)."""

    def decided() -> bool:
        events = stack.events()
        dead = {r.value: r for r in stack.records(dlq_of(stack.trained_topic))}
        for s in submitted:
            s.events = [e for e in events if e.envelope.adapter == s.adapter]
            s.decision = next(
                (e for e in s.events if isinstance(e, RevisionValidated | RevisionRejected)), None
            )
            s.dead = dead.get(s.value)
        for name, process in stack.processes.items():
            if process.poll() is not None:
                raise ServiceDied(f"{name} died:\n{stack.log_of(name)}")
        return all(s.done for s in submitted)

    with contextlib.suppress(AssertionError):
        eventually(decided, timeout=timeout_s, interval=0.5)


@pytest.fixture(scope="module")
def outcomes(pipeline: Stack) -> dict[str, Submitted]:
    codec = Codec.from_env()
    submitted = [_submission(pipeline, entry, codec) for entry in ENTRIES]
    producer = make_producer(pipeline.infra.kafka)
    for s in submitted:
        producer.produce(pipeline.trained_topic, key=s.adapter.encode(), value=s.value)
    assert producer.flush(30) == 0, "the corpus was not acknowledged by the broker"
    _collect(pipeline, submitted, timeout_s=150)
    return {s.entry.id: s for s in submitted}


@pytest.mark.parametrize("entry", ENTRIES, ids=str)
def test_each_bad_submission_is_rejected_with_its_code_or_dead_lettered_with_its_reason(
    outcomes: dict[str, Submitted], pipeline: Stack, entry: Entry
) -> None:
    s = outcomes[entry.id]
    names = [type(e).__name__ for e in s.events]
    logs = "\n".join(f"--- {n}\n{pipeline.log_of(n)}" for n in ("ingest", "validator"))
    assert s.done, f"no outcome (dropped silently?); events {names}\n{logs}"
    if "finding" in entry.expect:
        assert s.dead is None, s.dead.header("dlq.reason") if s.dead else ""
        assert isinstance(s.decision, RevisionRejected), s.decision
        codes = [f.code for f in s.decision.findings if f.severity == "error"]
        assert entry.expect["finding"] in codes, codes
    else:
        assert s.dead is not None and s.decision is None, s.decision
        reason = s.dead.header("dlq.reason") or ""
        assert entry.expect["dlq_reason"] in reason, reason
        assert s.dead.header("dlq.service") == "ingest"


# Issue #15: a submitted folder holding a hard link to a service's private signing key.
HARD_LINKED_KEY = Entry(
    entry_point="adapter_files",
    id="hard-linked-signing-key",
    why="a hard link names a file that lives elsewhere; ingest must not read it",
    input={},
    expect={"finding": "hard_link"},
)


def test_a_hard_link_to_a_services_private_key_is_rejected_and_never_stored(
    pipeline: Stack,
) -> None:
    s = _submission(pipeline, HARD_LINKED_KEY, Codec.from_env())
    key = pipeline.root / "keys" / f"{s.adapter}.signing.key"
    key.parent.mkdir(exist_ok=True)
    key.write_bytes(b"-----BEGIN PRIVATE KEY----- approval's, not the trainer's")
    key.chmod(0o600)
    os.link(key, pipeline.incoming / s.adapter / "notes.txt")
    producer = make_producer(pipeline.infra.kafka)
    producer.produce(pipeline.trained_topic, key=s.adapter.encode(), value=s.value)
    assert producer.flush(30) == 0
    _collect(pipeline, [s], timeout_s=60)
    assert s.dead is None and isinstance(s.decision, RevisionRejected), (s.decision, s.dead)
    [finding] = [f for f in s.decision.findings if f.severity == "error"]
    assert finding.code == "hard_link"
    assert (finding.evidence["path"], finding.evidence["links"]) == ("notes.txt", "2")
    assert "notes.txt has 2 links" in finding.message
    stored = (pipeline.artifacts / "blobs" / "sha256").iterdir()
    assert not [b for b in stored if b"PRIVATE KEY" in b.read_bytes()], "the key was stored"
