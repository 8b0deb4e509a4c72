"""The archive record: deterministic, complete, and every tampering caught on read-back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from shared import chain
from shared.coldstore.record import (
    archive_key,
    build_record,
    canonical,
    digest_of,
    parse_record,
    record_files,
    record_manifest,
    verify_record,
)
from shared.coldstore.weights import check_weights
from shared.events import (
    ManifestArchived,
    RevisionActivated,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionExpired,
    RevisionRegistered,
    RevisionSuperseded,
    RevisionValidated,
)
from shared.manifest import FileEntry, Manifest, revision_digest
from tests.factories import lifecycle

CONTENTS = {
    "adapter_config.json": b'{"r": 8}',
    "adapter_model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      weights",
}


def make_manifest(adapter: str = "chat", contents: dict[str, bytes] | None = None) -> Manifest:
    """A manifest whose revision is the real digest of `contents`."""
    files = tuple(
        FileEntry(path=p, sha256=hashlib.sha256(b).hexdigest(), size=len(b))
        for p, b in (contents or CONTENTS).items()
    )
    return Manifest(
        adapter=adapter,
        revision=revision_digest(files),
        files=files,
        base_model_id="tiny-llama",
        base_model_revision="sha256:" + "b" * 64,
        tokenizer_revision="tok-1",
        tokenizer_hash="sha256:" + "1" * 64,
        chat_template_hash="sha256:" + "2" * 64,
        quantization_profile="bf16",
        recipe={"seed": 7},
        submitter="trainer-alice",
        trained_event_id="trained-1",
        source_uri="file:///incoming/chat",
    )


def seal_all(events: list[Any], first_seq: int = 1) -> list[Any]:
    sealed, prev = [], ""
    for seq, event in enumerate(events, start=first_seq):
        event = chain.seal(event, seq=seq, prev_hash=prev)
        sealed.append(event)
        prev = event.envelope.hash
    return sealed


def trail(manifest: Manifest) -> list[Any]:
    """A revision's life from registration to expiry, sealed."""
    a, r = manifest.adapter, manifest.revision
    return seal_all(
        [
            lifecycle(RevisionRegistered, a, r, manifest_digest=manifest.digest),
            lifecycle(RevisionValidated, a, r),
            lifecycle(RevisionEvaluated, a, r, "prod"),
            lifecycle(RevisionApproved, a, r, "prod"),
            lifecycle(RevisionActivated, a, r, "prod"),
            lifecycle(RevisionSuperseded, a, r, "prod", superseded_by="sha256:next"),
            lifecycle(RevisionExpired, a, r, reason="superseded", policy={"prod.keep": "0"}),
        ]
    )


MANIFEST = make_manifest()
TRAIL = trail(MANIFEST)


def record(events: list[Any] = TRAIL, manifest: Manifest | None = MANIFEST) -> bytes:
    revision = MANIFEST.revision
    return build_record(adapter="chat", revision=revision, manifest=manifest, events=events)


def test_the_same_facts_in_any_order_build_the_same_bytes() -> None:
    shuffled = TRAIL[:]
    random.Random(4).shuffle(shuffled)
    assert record(shuffled) == record(TRAIL)


def test_events_after_the_expiry_and_of_other_revisions_do_not_change_the_record() -> None:
    later = seal_all(
        [lifecycle(ManifestArchived, "chat", MANIFEST.revision)], first_seq=len(TRAIL) + 1
    )
    sibling = trail(make_manifest(contents={"other.safetensors": b"other"}))
    assert record([*TRAIL, *later, *sibling]) == record(TRAIL)


def test_the_record_keeps_manifest_hashes_evidence_signatures_and_the_chain_head() -> None:
    body = parse_record(record())
    evaluated = next(e for e in TRAIL if isinstance(e, RevisionEvaluated))
    approved = next(e for e in TRAIL if isinstance(e, RevisionApproved))
    expired = TRAIL[-1]
    assert record_manifest(body) == MANIFEST and body["manifest_digest"] == MANIFEST.digest
    assert {f.path: f.sha256 for f in record_files(body)} == {
        f.path: f.sha256 for f in MANIFEST.files
    }
    [evaluation] = body["evaluations"]
    assert evaluation["report_digest"] == evaluated.report_digest
    assert [m["name"] for m in evaluation["metrics"]] == [m.name for m in evaluated.metrics]
    [decision] = body["decisions"]
    assert (decision["decision"], decision["signature"], decision["key_id"]) == (
        "approved",
        approved.signature,
        approved.key_id,
    )
    assert body["chain_head"] == {
        "seq": expired.envelope.seq,
        "hash": expired.envelope.hash,
        "event_id": expired.envelope.event_id,
    }
    assert [e["seq"] for e in body["events"]] == [e.envelope.seq for e in TRAIL]
    assert body["expiry"]["reason"] == "superseded"


def test_a_denial_is_kept_with_its_signature() -> None:
    a, r = "chat", MANIFEST.revision
    events = seal_all(
        [
            lifecycle(RevisionRegistered, a, r, manifest_digest=MANIFEST.digest),
            lifecycle(RevisionValidated, a, r),
            lifecycle(RevisionEvaluated, a, r, "prod"),
            lifecycle(RevisionDenied, a, r, "prod", signature="ed25519:deny"),
            lifecycle(RevisionExpired, a, r, reason="denied"),
        ]
    )
    [decision] = parse_record(record(events))["decisions"]
    assert (decision["decision"], decision["signature"]) == ("denied", "ed25519:deny")


def test_a_revision_that_has_not_expired_cannot_be_archived() -> None:
    with pytest.raises(ValueError, match="has no RevisionExpired"):
        record(TRAIL[:-1])


def test_a_record_read_back_intact_verifies() -> None:
    data = record()
    assert (
        verify_record(data, digest=digest_of(data), adapter="chat", revision=MANIFEST.revision)
        == []
    )
    assert archive_key("chat", MANIFEST.revision).startswith("chat/sha256-")


def test_a_revision_refused_at_ingest_archives_without_manifest_or_files() -> None:
    revision = "sha256:" + "f" * 64
    events = seal_all(
        [
            lifecycle(RevisionRegistered, "chat", revision, manifest_digest=""),
            lifecycle(RevisionExpired, "chat", revision, reason="rejected"),
        ]
    )
    data = build_record(adapter="chat", revision=revision, manifest=None, events=events)
    assert verify_record(data, digest=digest_of(data), adapter="chat", revision=revision) == []
    assert parse_record(data)["files"] == []


def _forged(change: Any) -> bytes:
    """The record with `change` applied to its body and re-serialised canonically."""
    body = json.loads(record())
    change(body)
    return canonical(body)


FORGERIES = [
    ("one flipped byte", None, "record digest is"),
    ("an altered file hash", lambda b: b["files"][0].update(sha256="0" * 64), "file list differs"),
    ("another revision", lambda b: b.update(revision="sha256:" + "9" * 64), "record names"),
    (
        "a manifest edited under the same digest",
        lambda b: b["manifest"].update(submitter="mallory"),
        "manifest digest is",
    ),
    (
        "a chain head that is not the expiry",
        lambda b: b["chain_head"].update(seq=1),
        "chain head is not",
    ),
    ("a chain head with another hash", lambda b: b["chain_head"].update(hash="0"), "hash differs"),
]


@pytest.mark.parametrize(("name", "change", "problem"), FORGERIES, ids=[f[0] for f in FORGERIES])
def test_verification_catches_a_record_that_was_tampered_with(
    name: str, change: Any, problem: str
) -> None:
    honest = record()
    if change is None:
        forged = honest.replace(b'"tiny-llama"', b'"tiny-llamb"', 1)
        digest = digest_of(honest)  # what the registry recorded
    else:
        forged = _forged(change)
        digest = digest_of(forged)  # even a forger who could rewrite the registry's digest
    problems = verify_record(forged, digest=digest, adapter="chat", revision=MANIFEST.revision)
    assert any(problem in p for p in problems), problems


def test_bytes_that_are_not_a_record_are_reported_not_raised() -> None:
    assert verify_record(b"\xff", digest=digest_of(b"\xff"), adapter="a", revision="r") == [
        "not an archive record: 'utf-8' codec can't decode byte 0xff in position 0: invalid "
        "start byte"
    ]
    not_ours = json.dumps({"schema": "other"}).encode()
    assert verify_record(not_ours, digest=digest_of(not_ours), adapter="a", revision="r") == [
        "not an adapters.archive.v1 document"
    ]


def _folder(root: Path, contents: dict[str, bytes]) -> Path:
    for name, data in contents.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def test_resupplied_weights_that_match_every_archived_hash_pass(tmp_path: Path) -> None:
    check = check_weights(MANIFEST.files, _folder(tmp_path, CONTENTS))
    assert check.ok and sorted(check.matched) == sorted(CONTENTS)


def test_resupplied_weights_with_one_changed_byte_fail_naming_the_file(tmp_path: Path) -> None:
    changed = {**CONTENTS, "adapter_model.safetensors": CONTENTS["adapter_model.safetensors"][:-1]}
    check = check_weights(MANIFEST.files, _folder(tmp_path, changed))
    assert not check.ok
    assert [m.split(":")[0] for m in check.mismatched] == ["adapter_model.safetensors"]


def test_a_missing_or_an_extra_file_fails_the_check(tmp_path: Path) -> None:
    partial = check_weights(
        MANIFEST.files, _folder(tmp_path / "p", dict(list(CONTENTS.items())[:1]))
    )
    assert not partial.ok and partial.missing == ["adapter_model.safetensors"]
    extra = check_weights(MANIFEST.files, _folder(tmp_path / "e", {**CONTENTS, "x.bin": b"x"}))
    assert not extra.ok and extra.extra == ["x.bin"]
    nothing = check_weights(MANIFEST.files, tmp_path / "absent")
    assert not nothing.ok and sorted(nothing.missing) == sorted(CONTENTS)


def test_a_single_file_is_checked_against_the_archived_file_of_its_name(tmp_path: Path) -> None:
    folder = _folder(tmp_path, CONTENTS)
    good = check_weights(MANIFEST.files, folder / "adapter_model.safetensors")
    assert good.ok and good.matched == ["adapter_model.safetensors"]
    (tmp_path / "adapter_model.safetensors").chmod(0o644)
    (tmp_path / "adapter_model.safetensors").write_bytes(b"tampered")
    bad = check_weights(MANIFEST.files, folder / "adapter_model.safetensors")
    assert not bad.ok and "matches no archived file" in bad.mismatched[0]


def test_a_manifest_survives_the_round_trip_through_the_record() -> None:
    body = parse_record(record())
    restored = record_manifest(body)
    assert restored is not None
    assert dataclasses.asdict(restored) == dataclasses.asdict(MANIFEST)
