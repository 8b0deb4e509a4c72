"""The log's seal: event signatures and signed checkpoints catch what a hash chain cannot
(a forged event with recomputed hashes, a dropped tail, a rewritten history), and a key
rotation announced by the outgoing key keeps every older signature verifiable."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.audit import AuditReport, Entry, Position, read_entry, verify
from shared.chain import seal
from shared.events import RevisionRolledBack
from shared.logseal import (
    Checkpoint,
    Head,
    anchor,
    anchored_heads,
    checkpoint_key,
    event_headers,
    event_signature_checker,
    follow_checkpoints,
    parse_checkpoint,
    retired_keys,
    rotation_checkpoint,
    sign_checkpoint,
)
from shared.signing import Signer, keyring
from tests.factories import TEST_LOG_SIGNER, lifecycle
from tests.unit.test_audit import ALPHA, CODEC, PROD, REV_A, TOPIC, alpha_chain, beta_chain

TRUSTED = keyring([TEST_LOG_SIGNER.public_key])
MALLORY = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(64, 96))))


def entry(event: Any, offset: int, signer: Signer | None = TEST_LOG_SIGNER) -> Entry:
    env = event.envelope
    headers = event_headers(signer, env.adapter, env.seq, env.hash) if signer else []
    partition = 0 if env.adapter == ALPHA else 1
    return read_entry(
        CODEC,
        Position(TOPIC, partition, offset),
        env.adapter.encode(),
        CODEC.encode(event),
        headers,
    )


def log(events: list[Any], signer: Signer | None = TEST_LOG_SIGNER) -> list[Entry]:
    return [entry(e, i, signer) for i, e in enumerate(events)]


def audit(entries: list[Entry]) -> AuditReport:
    return verify(entries, [event_signature_checker(TRUSTED)])


def forged_head(chain: list[Any]) -> Any:
    """A RevisionRolledBack appended at the head, seq, prev_hash and hash recomputed."""
    fake = lifecycle(RevisionRolledBack, ALPHA, REV_A, PROD, restored_revision=None)
    head = chain[-1].envelope
    return seal(fake, seq=head.seq + 1, prev_hash=head.hash)


def checkpoint(chains: list[list[Any]], number: int = 1, previous: str = "") -> Checkpoint:
    heads = {c[-1].envelope.adapter: Head(c[-1].envelope.seq, c[-1].envelope.hash) for c in chains}
    return Checkpoint(
        log=TOPIC,
        number=number,
        issued_at="2025-01-02T00:00:00.000+00:00",
        previous=previous,
        heads=heads,
        key_id="",
    )


def documents(
    *checkpoints: Checkpoint, signer: Signer = TEST_LOG_SIGNER
) -> list[tuple[str, bytes]]:
    return [
        (checkpoint_key(TOPIC, c.number), sign_checkpoint(signer, c).to_json()) for c in checkpoints
    ]


def digest(cp: Checkpoint, signer: Signer = TEST_LOG_SIGNER) -> str:
    """The digest of `cp` as signed (the signer's key id is part of it)."""
    return sign_checkpoint(signer, cp).checkpoint.digest


def codes(report: AuditReport) -> list[str]:
    return [p.code for p in report.problems]


def test_a_signed_log_verifies() -> None:
    assert audit(log(alpha_chain() + beta_chain())).ok


@pytest.mark.parametrize(
    ("signer", "code"),
    [
        (None, "log_signature_missing"),
        (MALLORY, "log_signature_unknown_key"),
    ],
    ids=["unsigned", "signed-by-another-key"],
)
def test_a_forged_event_with_recomputed_hashes_is_named(signer: Signer | None, code: str) -> None:
    chain = alpha_chain()
    forged = forged_head(chain)
    report = audit([*log(chain), entry(forged, len(chain), signer)])

    assert codes(report) == [code]
    assert report.problems[0].event_id == forged.envelope.event_id


def test_a_signature_moved_onto_another_event_is_invalid() -> None:
    chain = alpha_chain()
    forged = forged_head(chain)
    stolen = entry(chain[-1], 0).headers  # a real signature, for another seq and hash
    moved = dataclasses.replace(entry(forged, len(chain), None), headers=stolen)

    assert codes(audit([*log(chain), moved])) == ["log_signature_invalid"]


def test_checkpoints_name_a_dropped_tail_and_a_rewritten_history() -> None:
    chain, beta = alpha_chain(), beta_chain()
    docs = documents(checkpoint([chain, beta]))

    dropped = log(chain[:-2] + beta)
    truncated = anchor(TOPIC, verify(dropped).accepted, docs, TRUSTED)
    assert [p.code for p in truncated.problems] == ["truncated"]
    assert (
        "seq 14" in truncated.problems[0].message
        and "ends at seq 12" in truncated.problems[0].message
    )

    # The attacker rewrites seq 13 and re-seals everything after it (with their own key).
    rewritten = [*chain[:12], seal(chain[12], seq=13, prev_hash=chain[11].envelope.hash)]
    altered = dataclasses.replace(rewritten[12], restored_revision=None)
    rewritten[12] = seal(altered, seq=13, prev_hash=chain[11].envelope.hash)
    rewritten.append(seal(chain[13], seq=14, prev_hash=rewritten[12].envelope.hash))
    mismatch = anchor(TOPIC, verify(log(rewritten + beta)).accepted, docs, TRUSTED)
    assert [p.code for p in mismatch.problems] == ["checkpoint_mismatch"]
    assert mismatch.problems[0].seq == 14


def test_events_after_the_newest_checkpoint_are_unanchored() -> None:
    chain, beta = alpha_chain(), beta_chain()
    docs = documents(checkpoint([chain[:10], beta]))
    result = anchor(TOPIC, verify(log(chain + beta)).accepted, docs, TRUSTED)

    assert result.problems == [] and result.latest == 1
    assert [e.event.envelope.seq for e in result.unanchored if e.event] == [11, 12, 13, 14]


def test_the_checkpoint_chain_must_be_whole_signed_and_linked() -> None:
    chain = alpha_chain()
    first = checkpoint([chain[:5]])
    second = checkpoint([chain[:10]], number=2, previous=digest(first))
    third = checkpoint([chain], number=3, previous=digest(second))
    accepted = verify(log(chain)).accepted

    assert anchor(TOPIC, accepted, documents(first, second, third), TRUSTED).problems == []
    gap = anchor(TOPIC, accepted, documents(first, third), TRUSTED)
    assert [p.code for p in gap.problems] == ["checkpoint_missing"]
    unlinked = checkpoint([chain], number=2, previous="sha256:" + "0" * 64)
    broken = anchor(TOPIC, accepted, documents(first, unlinked), TRUSTED)
    assert [p.code for p in broken.problems] == ["checkpoint_chain_broken"]
    forged = anchor(TOPIC, accepted, documents(first, signer=MALLORY), TRUSTED)
    assert [p.code for p in forged.problems] == ["checkpoint_unknown_key"]
    name, data = documents(first)[0]
    tampered = data.replace(chain[4].envelope.hash.encode(), b"0" * 64)
    assert [p.code for p in anchor(TOPIC, accepted, [(name, tampered)], TRUSTED).problems] == [
        "checkpoint_signature_invalid"
    ]


def test_a_rotation_announced_by_the_old_key_keeps_old_and_new_signatures_valid() -> None:
    chain = alpha_chain()
    successor = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128))))
    first = rotation_checkpoint(checkpoint([chain[:7]]), successor.public_key)
    second = checkpoint([chain], number=2, previous=digest(first))
    docs = [*documents(first), *documents(second, signer=successor)]
    entries = [*log(chain[:7]), *[entry(e, i + 7, successor) for i, e in enumerate(chain[7:])]]

    result = anchor(TOPIC, verify(entries).accepted, docs, TRUSTED)
    assert result.problems == [] and set(result.ring) == {TEST_LOG_SIGNER.key_id, successor.key_id}
    assert verify(entries, [event_signature_checker(result.ring)]).ok
    # Without the announcement, the successor's events are unknown.
    assert set(codes(audit(entries))) == {"log_signature_unknown_key"}


def test_a_key_retires_once_its_successor_signs_and_what_it_signs_after_is_named() -> None:
    """Rotation: checkpoint 1 (old key) names the successor; the relays go on with the old
    key until they restart; checkpoint 2 is the successor's. Past checkpoint 2's heads, an
    event the old key signed was signed by whoever kept it."""
    chain = alpha_chain()
    successor = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(96, 128))))
    first = rotation_checkpoint(checkpoint([chain[:5]]), successor.public_key)
    second = checkpoint([chain[:8]], number=2, previous=digest(first))
    docs = [*documents(first), *documents(second, signer=successor)]
    _, valid, ring = follow_checkpoints(TOPIC, docs, TRUSTED)
    retired = retired_keys(valid)
    assert retired == {TEST_LOG_SIGNER.key_id: {ALPHA: 8}}

    def signed_by(old_until: int) -> list[str]:
        entries = [
            entry(e, i, TEST_LOG_SIGNER if e.envelope.seq <= old_until else successor)
            for i, e in enumerate(chain)
        ]
        checker = event_signature_checker(ring, anchored_heads(valid), retired=retired)
        return [(p.code, p.seq) for p in verify(entries, [checker]).problems]

    assert signed_by(8) == []  # the old key up to the restart: fine
    assert signed_by(10) == [("log_signature_retired_key", 9), ("log_signature_retired_key", 10)]
    # A rotation announced but never taken up retires nothing.
    assert retired_keys(valid[:1]) == {}


def test_a_checkpoint_round_trips_through_its_bytes() -> None:
    signed = sign_checkpoint(TEST_LOG_SIGNER, checkpoint([alpha_chain()]))
    assert parse_checkpoint(signed.to_json()) == signed


def test_history_published_before_signing_is_sealed_by_the_first_checkpoint() -> None:
    """An upgraded registry: its old events carry no signature; the relay's first checkpoint
    vouches for their heads, and only unsigned events past it are refused."""
    chain = alpha_chain()
    old, new = chain[:10], chain[10:]
    docs = documents(checkpoint([old]))
    _, valid, ring = follow_checkpoints(TOPIC, docs, TRUSTED)
    entries = [*log(old, None), *log(new)]
    checker = event_signature_checker(ring, anchored_heads(valid))
    assert verify(entries, [checker]).ok
    forged = forged_head(chain)
    appended = verify([*entries, entry(forged, len(chain), None)], [checker])
    assert [p.code for p in appended.problems] == ["log_signature_missing"]


def test_a_checkpoint_proves_the_events_under_it_and_every_signature_checks_them_anyway() -> None:
    chain = alpha_chain()
    docs = documents(checkpoint([chain]))
    _, valid, ring = follow_checkpoints(TOPIC, docs, TRUSTED)
    resigned = log(chain, MALLORY)  # headers replaced; the content (and chain) untouched
    anchored = anchored_heads(valid)
    assert verify(resigned, [event_signature_checker(ring, anchored)]).ok
    strict = verify(resigned, [event_signature_checker(ring, anchored, every=True)])
    assert {p.code for p in strict.problems} == {"log_signature_unknown_key"}
