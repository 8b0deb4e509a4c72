"""Test vectors for `docs/log-format.md`: a few events of one adapter as the relay publishes
them (key, value bytes, headers), their canonical bytes and hashes, and a checkpoint over
them, all from fixed inputs and fixed keys, so another implementation can check itself.

    python -m tests.data.log_format --write   # rewrite tests/data/log-format/vectors-v1.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.chain import GENESIS_HASH, canonical_bytes, seal
from shared.codec import Codec
from shared.events import (
    Actor,
    BaseModelRef,
    Envelope,
    MetricResult,
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.logseal import Checkpoint, Head, event_headers, event_statement, sign_checkpoint
from shared.signing import Signer, claim_of, public_pem

VECTORS = Path(__file__).resolve().parent / "log-format" / "vectors-v1.json"
ADAPTER, REVISION = "vector-adapter", "sha256:" + "ab" * 32
T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
LOG_KEY = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(100, 132))))
APPROVAL_KEY = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(132, 164))))
# Doubles and how §4's JSON spells them: [IEEE 754 bits as 16 hex digits, the JSON text].
JSON_NUMBERS = [
    1.0,
    0.1,
    -0.0,
    0.0001,
    1e-05,
    1e15,
    1e16,
    1.5e16,
    123456789012345680.0,
    5e-324,
    1.7976931348623157e308,
    2.2250738585072014e-308,
    0.30000000000000004,
    1 / 3,
    -2.5e-7,
    100.0,
    12345.678,
    float("nan"),
    float("inf"),
    float("-inf"),
    9007199254740993.0,
]
MANIFEST, REPORT = "sha256:" + "11" * 32, "sha256:" + "22" * 32


def _envelope(n: int, environment: str, actor: Actor) -> Envelope:
    return Envelope(
        event_id=f"00000000-0000-4000-8000-{n:012d}",
        adapter=ADAPTER,
        revision=REVISION,
        environment=environment,
        occurred_at=T0 + timedelta(minutes=n),
        actor=actor,
        correlation_id="00000000-0000-4000-8000-000000000000",
    )


def events() -> list[Any]:
    """Four events of one revision, unsealed: registered, validated, evaluated, approved."""
    service = Actor(principal="ingest", role="service")
    approved = RevisionApproved(
        envelope=_envelope(4, "staging", Actor(principal="approver-bob", role="approver")),
        approvers=["approver-bob"],
        manifest_digest=MANIFEST,
        report_digest=REPORT,
        comment="ships: accuracy 1.0 — Zürich ✓",  # non-ASCII on purpose (§4's escapes)
        signature="",
        key_id="",
        serving_contract="sha256:" + "33" * 32,
    )
    signed = dataclasses.replace(
        approved, signature=APPROVAL_KEY.sign(claim_of(approved)), key_id=APPROVAL_KEY.key_id
    )
    return [
        RevisionRegistered(
            envelope=_envelope(1, "", service),
            manifest_digest=MANIFEST,
            manifest_uri="file:///var/artifacts/manifests/sha256/" + "11" * 32 + ".json",
            base_model=BaseModelRef(model_id="org/base", revision="c" * 40),
            tokenizer_revision="tok-1",
            tokenizer_hash="sha256:" + "44" * 32,
            chat_template_hash="sha256:" + "55" * 32,
            quantization_profile="bf16",
            target_environments=["staging"],
            submitter="trainer-alice",
            file_count=2,
            total_bytes=4096,
            trained_event_id="00000000-0000-4000-8000-000000000099",
        ),
        RevisionValidated(
            envelope=_envelope(2, "", Actor(principal="validator", role="service")),
            checked_environments=["staging"],
        ),
        RevisionEvaluated(
            envelope=_envelope(3, "staging", Actor(principal="gpu_evaluator", role="service")),
            report_digest=REPORT,
            report_uri="file:///var/artifacts/blobs/sha256/" + "22" * 32,
            suite_digest="sha256:" + "66" * 32,
            backend="transformers",
            metrics=[  # floats on purpose (§4's shortest round-trip spelling)
                MetricResult(
                    name="accuracy", value=1.0, baseline=0.1, threshold=">= 0.9", passed=True
                ),
                MetricResult(
                    name="mean_loglik",
                    value=-1.0000000000000002e-05,
                    baseline=None,
                    threshold="",
                    passed=True,
                ),
                MetricResult(
                    name="p95_latency_ms",
                    value=123456789012345680.0,
                    baseline=0.0001,
                    threshold="<= 1.2x",
                    passed=False,
                ),
            ],
        ),
        signed,
    ]


def vectors() -> dict[str, Any]:
    codec = Codec.default()
    prev, out = GENESIS_HASH, []
    for seq, event in enumerate(events(), start=1):
        sealed = seal(event, seq=seq, prev_hash=prev)
        value = codec.encode(sealed)
        full_name, record = codec.decode_writer(value)
        env = sealed.envelope
        headers = dict(event_headers(LOG_KEY, env.adapter, env.seq, env.hash))
        out.append(
            {
                "key": ADAPTER,
                "value_hex": value.hex(),
                "writer_schema": full_name,
                "canonical_bytes": canonical_bytes(full_name, record).decode(),
                "prev_hash": prev,
                "hash": env.hash,
                "signature_statement": event_statement(env.adapter, env.seq, env.hash).decode(),
                "headers": {k: v.decode() for k, v in headers.items()},
            }
        )
        prev = env.hash
    checkpoint = sign_checkpoint(
        LOG_KEY,
        Checkpoint(
            log="adapters.lifecycle.v1",
            number=1,
            issued_at="2026-12-05T09:05:00.000+00:00",
            previous="",
            heads={ADAPTER: Head(len(out), prev)},
            key_id="",
        ),
    )
    approval = events()[-1]
    return {
        "format": "adapters lifecycle log, version 1 (docs/log-format.md)",
        "log_public_key_pem": public_pem(LOG_KEY.public_key).decode(),
        "log_key_id": LOG_KEY.key_id,
        "approval_public_key_pem": public_pem(APPROVAL_KEY.public_key).decode(),
        "approval_key_id": APPROVAL_KEY.key_id,
        "events": out,
        "approval_claim": claim_of(approval).canonical_bytes().decode(),
        "approval_signature": approval.signature,
        "checkpoint": {
            "document": json.loads(checkpoint.to_json()),
            "signed_bytes": checkpoint.checkpoint.canonical_bytes().decode(),
            "digest": checkpoint.checkpoint.digest,
            "signature_bytes_b64": checkpoint.signature,
        },
        "json_numbers": [[struct.pack(">d", x).hex(), json.dumps(x)] for x in JSON_NUMBERS],
        "notes": [
            "values are Avro single-object encoded; decode with the writer schema named",
            "hash = hex(sha256(prev_hash + '\\n' + canonical_bytes))",
            "headers.log_signature = base64(ed25519(log key, signature_statement))",
            "approval_signature is the RevisionApproved value's `signature` field, over "
            "approval_claim",
        ],
    }


def render() -> str:
    return json.dumps(vectors(), indent=1, ensure_ascii=True, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {VECTORS.name}")
    args = parser.parse_args()
    text = render()
    if args.write:
        VECTORS.parent.mkdir(parents=True, exist_ok=True)
        VECTORS.write_text(text)
        print(f"wrote {VECTORS}")
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
