"""N distinct adapters as a training cluster submits them (AdapterTrained on the trained
topic), a few of them deliberately bad, each with the outcome and revision it must reach."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Producer

from shared.codec import Codec
from shared.events import AdapterTrained, BaseModelRef
from shared.kafka.auth import Kafka
from shared.kafka.producer import make_producer
from shared.manifest import FileEntry, revision_digest
from shared.trainer_client import describe_submission
from tests.pipeline.outcomes import Expected, Outcome

SUBMITTER = "trainer-alice"


@dataclass(frozen=True, slots=True)
class Submission:
    expected: Expected
    event: AdapterTrained
    kind: str  # "good", or the bad kind's name


def folder_revision(folder: Path) -> str:
    """The revision id ingest gives the folder's bytes: the digest of its file list."""
    entries = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        entries.append(
            FileEntry(
                path=path.relative_to(folder).as_posix(),
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
            )
        )
    return revision_digest(entries)


def refused_revision(event: AdapterTrained) -> str:
    """The id ingest derives for a submission it could store nothing of (ADR 0002)."""
    return "sha256:" + hashlib.sha256(f"refused\n{event.event_id}".encode()).hexdigest()


def _as_is(event: AdapterTrained, _outside: Path) -> AdapterTrained:
    return event


def _wrong_quantization(event: AdapterTrained, _outside: Path) -> AdapterTrained:
    """The validator refuses it: the environment serves bf16 (quantization_mismatch)."""
    return dataclasses.replace(event, quantization_profile="int4-awq")


def _outside_allowed_roots(event: AdapterTrained, outside: Path) -> AdapterTrained:
    """Ingest refuses to read it (path_escapes_root) and rejects it in the same commit."""
    return dataclasses.replace(event, artifact_uri=(outside / event.adapter).as_uri())


# kind -> (how the submission is spoiled, who refuses it: "validator" or "ingest")
BAD_KINDS: Mapping[str, tuple[Callable[[AdapterTrained, Path], AdapterTrained], str]] = {
    "quantization": (_wrong_quantization, "validator"),
    "outside": (_outside_allowed_roots, "ingest"),
}


def prepare(
    *,
    template: Path,
    incoming: Path,
    outside: Path,
    count: int,
    bad_every: int,
    base: BaseModelRef,
    base_folder: Path,
    environment: str,
    prefix: str = "a",
) -> list[Submission]:
    """`count` adapters <prefix>-0000..., copies of `template` with their own recipe seed (so
    each is its own revision); every `bad_every`-th is spoiled, the bad kinds in turn."""
    bad_kinds = sorted(BAD_KINDS)
    recipe = json.loads((template / "recipe.json").read_text())
    submissions = []
    for i in range(count):
        adapter = f"{prefix}-{i:04d}"
        folder = incoming / adapter
        shutil.copytree(template, folder)
        (folder / "recipe.json").write_text(json.dumps({**recipe, "seed": 1000 + i}))
        event = describe_submission(
            folder,
            adapter=adapter,
            base=base,
            submitter=SUBMITTER,
            tokenizer_revision="tok-1",
            tokenizer_folder=base_folder,
            target_environments=[environment],
        )
        kind = bad_kinds[(i // bad_every) % len(bad_kinds)] if i % bad_every == 1 else "good"
        if kind == "good":
            expected = Expected(adapter, folder_revision(folder), Outcome.activated, environment)
        else:
            spoil, refused_by = BAD_KINDS[kind]
            event = spoil(event, outside)
            revision = folder_revision(folder) if refused_by == "validator" else ""
            expected = Expected(
                adapter, revision or refused_revision(event), Outcome.rejected, environment
            )
        submissions.append(Submission(expected, event, kind))
    return submissions


def submit_all(
    bootstrap_servers: Kafka,
    topic: str,
    submissions: Sequence[Submission],
    producer: Producer | None = None,
) -> None:
    """Publish every AdapterTrained at once, keyed by adapter; return when all are acked.
    Pass a long-lived `producer` to leave out a new idempotent producer's start (~0.5 s)."""
    codec = Codec.from_env()
    producer = producer or make_producer(bootstrap_servers)
    failures = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            failures.append(err)

    for submission in submissions:
        event = submission.event
        producer.produce(
            topic, key=event.adapter.encode(), value=codec.encode(event), on_delivery=report
        )
        producer.poll(0)
    left = producer.flush(60)
    assert not failures and not left, f"submissions not acknowledged: {failures[:3]}, {left} left"
