"""What a submitter is told about a submission: the checks its revision went through, the
state they left it in, its JSON form on ingest's API, and when waiting for it can stop.

Pure: `verdict_of` folds the revision's lifecycle events; `settle` says whether the verdict
is in; `wait_for_verdict` polls a fetcher on a clock it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from shared.events import (
    Finding,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionValidated,
)
from shared.findings import guidance_for
from shared.lifecycle import ENVIRONMENT_TRACK_START, LifecycleEvent, State, evolve

# The state of a submission ingest handled without registering anything: the same files
# are already a revision (the revision id is their digest), so nothing new was checked.
DUPLICATE = "duplicate"


class Until(StrEnum):
    """Where `submit --wait` stops: the validator's verdict, or also the evaluator's."""

    VALIDATED = "validated"
    EVALUATED = "evaluated"


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One checker's verdict on the revision: ingest, validation, evaluation or quarantine."""

    stage: str
    environment: str = ""
    event: str
    passed: bool
    findings: tuple[Finding, ...] = ()
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """Where one submission stands: its revision, the tracks' states, and every check."""

    event_id: str  # the AdapterTrained's, which `submit` printed
    adapter: str
    revision: str = ""
    submitter: str = ""
    state: str  # the revision track's state, or DUPLICATE
    environments: Mapping[str, str] = field(default_factory=dict)
    checked_environments: tuple[str, ...] = ()  # those evaluation follows in
    checks: tuple[Check, ...] = ()


def _check(event: LifecycleEvent) -> Check | None:
    name, env = type(event).__name__, event.envelope.environment
    match event:
        case RevisionRejected():
            stage = "ingest" if event.envelope.actor.principal == "ingest" else "validation"
            return Check(stage=stage, event=name, passed=False, findings=tuple(event.findings))
        case RevisionValidated():
            return Check(
                stage="validation", event=name, passed=True, findings=tuple(event.findings)
            )
        case RevisionEvaluated():
            metrics = ", ".join(f"{m.name}={m.value:g}" for m in event.metrics)
            return Check(
                stage="evaluation", environment=env, event=name, passed=True, detail=metrics
            )
        case RevisionEvaluationFailed():
            return Check(
                stage="evaluation",
                environment=env,
                event=name,
                passed=False,
                findings=tuple(event.findings),
                detail=event.cause,
            )
        case RevisionQuarantined():
            return Check(
                stage="quarantine",
                event=name,
                passed=False,
                findings=tuple(event.findings),
                detail=f"detected by {event.detected_by}",
            )
    return None


def verdict_of(event_id: str, events: Sequence[LifecycleEvent]) -> Verdict | None:
    """The verdict of the submission `event_id` from its revision's events in seq order;
    None until the revision is registered."""
    registered = next((e for e in events if isinstance(e, RevisionRegistered)), None)
    if registered is None:
        return None
    tracks: dict[str, State] = {}
    checked: tuple[str, ...] = ()
    for event in events:
        env = event.envelope.environment
        start = tracks.get(env, ENVIRONMENT_TRACK_START if env else None)
        tracks[env] = evolve(start, event)
        if isinstance(event, RevisionValidated):
            checked = tuple(event.checked_environments)
    return Verdict(
        event_id=event_id,
        adapter=registered.envelope.adapter,
        revision=registered.envelope.revision,
        submitter=registered.submitter,
        state=tracks[""].value,
        environments={e: s.value for e, s in tracks.items() if e},
        checked_environments=checked,
        checks=tuple(c for e in events if (c := _check(e)) is not None),
    )


def duplicate(event_id: str, adapter: str = "") -> Verdict:
    """A submission ingest handled but registered nothing for (the files already were)."""
    return Verdict(event_id=event_id, adapter=adapter, state=DUPLICATE)


def pending_environments(verdict: Verdict) -> list[str]:
    """The checked environments whose evaluation has not answered yet."""
    return [
        env
        for env in verdict.checked_environments
        if verdict.environments.get(env, State.VALIDATED.value) == State.VALIDATED.value
    ]


def settle(verdict: Verdict | None, until: Until) -> Outcome | None:
    """PASSED or FAILED once the verdict is in; None while it is still coming.

    The validator's verdict is in when the revision track leaves `registered`; with
    EVALUATED, the evaluator's too, once every checked environment has left `validated`.
    A rejection, a quarantine or a failed evaluation fails; a duplicate fails (nothing new
    was registered).
    """
    if verdict is None or verdict.state == State.REGISTERED.value:
        return None
    if verdict.state == DUPLICATE:
        return Outcome.FAILED
    failed = any(not c.passed for c in verdict.checks)
    if verdict.state in (State.REJECTED.value, State.QUARANTINED.value) or (
        failed and until is Until.VALIDATED
    ):
        return Outcome.FAILED
    if until is Until.EVALUATED and pending_environments(verdict):
        return None
    return Outcome.FAILED if failed else Outcome.PASSED


@dataclass(frozen=True, slots=True)
class Waited:
    """What waiting ended with: the last verdict seen, and its outcome (None: timed out)."""

    verdict: Verdict | None
    outcome: Outcome | None


def wait_for_verdict(
    fetch: Callable[[], Verdict | None],
    *,
    until: Until,
    timeout_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    heartbeat: Callable[[Verdict | None, float], None] = lambda _v, _s: None,
    heartbeat_s: float = 15.0,
    poll_s: float = 1.0,
) -> Waited:
    """Poll `fetch` every `poll_s` until the verdict settles or `timeout_s` passes, calling
    `heartbeat(last verdict, seconds waited)` every `heartbeat_s` while it waits."""
    start = clock()
    next_beat = start + heartbeat_s
    while True:
        verdict = fetch()
        outcome = settle(verdict, until)
        now = clock()
        if outcome is not None:
            return Waited(verdict, outcome)
        if now - start >= timeout_s:
            return Waited(verdict, None)
        if heartbeat_s > 0 and now >= next_beat:
            heartbeat(verdict, now - start)
            next_beat = now + heartbeat_s
        sleep(min(poll_s, max(0.0, start + timeout_s - now)))


def finding_to_json(finding: Finding) -> dict[str, Any]:
    """A finding with the meaning of its code and the fix (docs/findings.md)."""
    guidance = guidance_for(finding.code)
    return {
        "code": finding.code,
        "severity": finding.severity,
        "message": finding.message,
        "evidence": dict(finding.evidence),
        "meaning": guidance.meaning,
        "fix": guidance.fix,
    }


def finding_from_json(value: Mapping[str, Any]) -> Finding:
    return Finding(
        code=str(value["code"]),
        severity=str(value.get("severity", "error")),
        message=str(value.get("message", "")),
        evidence={str(k): str(v) for k, v in dict(value.get("evidence", {})).items()},
    )


def to_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "event_id": verdict.event_id,
        "adapter": verdict.adapter,
        "revision": verdict.revision,
        "submitter": verdict.submitter,
        "state": verdict.state,
        "environments": dict(verdict.environments),
        "checked_environments": list(verdict.checked_environments),
        "checks": [
            {
                "stage": c.stage,
                "environment": c.environment,
                "event": c.event,
                "passed": c.passed,
                "detail": c.detail,
                "findings": [finding_to_json(f) for f in c.findings],
            }
            for c in verdict.checks
        ],
    }


def from_json(value: Mapping[str, Any]) -> Verdict:
    return Verdict(
        event_id=str(value["event_id"]),
        adapter=str(value.get("adapter", "")),
        revision=str(value.get("revision", "")),
        submitter=str(value.get("submitter", "")),
        state=str(value["state"]),
        environments={str(k): str(v) for k, v in dict(value.get("environments", {})).items()},
        checked_environments=tuple(str(e) for e in value.get("checked_environments", [])),
        checks=tuple(
            Check(
                stage=str(c["stage"]),
                environment=str(c.get("environment", "")),
                event=str(c.get("event", "")),
                passed=bool(c["passed"]),
                detail=str(c.get("detail", "")),
                findings=tuple(finding_from_json(f) for f in c.get("findings", [])),
            )
            for c in value.get("checks", [])
        ),
    )
