"""Finding constructors: the validator's one way to say what it found."""

from __future__ import annotations

from shared.events.common import Finding
from shared.findings import FindingCode


def error(code: FindingCode, message: str, **evidence: object) -> Finding:
    """A finding that rejects the revision."""
    return Finding(code=code, severity="error", message=message, evidence=_text(evidence))


def warning(code: FindingCode, message: str, **evidence: object) -> Finding:
    """A finding that is recorded but does not reject."""
    return Finding(code=code, severity="warning", message=message, evidence=_text(evidence))


def _text(evidence: dict[str, object]) -> dict[str, str]:
    return {key: str(value) for key, value in evidence.items()}
