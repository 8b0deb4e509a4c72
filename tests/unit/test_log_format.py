"""`docs/log-format.md`'s test vectors: our implementation reproduces every value, and the
values hold by the document's rules alone (plain hashlib, json and Ed25519 here)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tests.data.log_format import VECTORS, render

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    return dict(json.loads(VECTORS.read_text()))


def test_the_checked_in_vectors_are_what_the_implementation_produces() -> None:
    assert VECTORS.read_text() == render(), "run `python -m tests.data.log_format --write`"


def test_each_hash_links_and_recomputes_by_the_documents_rule(vectors: dict[str, Any]) -> None:
    prev = ""
    for event in vectors["events"]:
        assert event["prev_hash"] == prev
        data = (prev + "\n" + event["canonical_bytes"]).encode("ascii")
        assert hashlib.sha256(data).hexdigest() == event["hash"]
        name, _, body = event["canonical_bytes"].partition("\n")
        assert name == event["writer_schema"]
        record = json.loads(body)
        assert "hash" not in record["envelope"] and record["envelope"]["prev_hash"] == prev
        assert json.dumps(record, sort_keys=True, separators=(",", ":")) == body  # canonical
        value = bytes.fromhex(event["value_hex"])
        assert value[:2] == b"\xc3\x01" and len(value) > 10
        prev = event["hash"]


def test_each_signature_verifies_with_the_published_keys(vectors: dict[str, Any]) -> None:
    log_key: Any = load_pem_public_key(vectors["log_public_key_pem"].encode())
    for event in vectors["events"]:
        signature = base64.b64decode(event["headers"]["log_signature"])
        log_key.verify(signature, event["signature_statement"].encode())
        assert event["headers"]["log_key_id"] == vectors["log_key_id"]
        assert event["signature_statement"].endswith("\n" + event["hash"])
    checkpoint = vectors["checkpoint"]
    log_key.verify(
        base64.b64decode(checkpoint["document"]["signature"]),
        checkpoint["signed_bytes"].encode(),
    )
    approval_key: Any = load_pem_public_key(vectors["approval_public_key_pem"].encode())
    approval_key.verify(
        base64.b64decode(vectors["approval_signature"]), vectors["approval_claim"].encode()
    )
    digest = hashlib.sha256(checkpoint["signed_bytes"].encode()).hexdigest()
    assert checkpoint["digest"] == "sha256:" + digest
    head = checkpoint["document"]["checkpoint"]["heads"]["vector-adapter"]
    assert head == {"seq": 4, "hash": vectors["events"][-1]["hash"]}


def test_the_document_names_its_vectors() -> None:
    text = (REPO / "docs" / "log-format.md").read_text()
    assert str(VECTORS.relative_to(REPO)) in text
