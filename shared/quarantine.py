"""The one way to say a revision's bytes changed on disk: a RevisionQuarantined event.

Whoever catches it (the evaluator or the activator at a use, the archiver's scrubber at
rest or before archiving) commits this event; the lifecycle then refuses to load,
approve or roll back to the revision ever again (`shared/lifecycle.py`).
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.artifacts import ChangedFile
from shared.events import Envelope, Finding, RevisionQuarantined
from shared.findings import FindingCode


def quarantined(
    envelope: Envelope, detected_by: str, manifest_digest: str, changed: Iterable[ChangedFile]
) -> RevisionQuarantined:
    """The event, one `artifact_changed` finding per changed file."""
    findings = [
        Finding(
            code=FindingCode.ARTIFACT_CHANGED,
            severity="error",
            message=str(c),
            evidence={
                "path": c.path,
                "where": c.where,
                "expected_sha256": c.expected[0],
                "expected_size": str(c.expected[1]),
                "found_sha256": c.found[0],
                "found_size": str(c.found[1]),
            },
        )
        for c in changed
    ]
    return RevisionQuarantined(
        envelope=envelope,
        detected_by=detected_by,
        manifest_digest=manifest_digest,
        findings=findings,
    )
