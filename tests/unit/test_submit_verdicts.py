"""What `adapterctl submit --wait` tells a submitter: the verdict folded from the revision's
events, when it is in, how long it is waited for, how it is printed, the exit status, and
the pre-flight check against the catalogue (with its did-you-mean)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from adapterctl.catalogue import preflight, suggest
from adapterctl.submit import EXIT_FAILED, EXIT_PASSED, EXIT_TIMEOUT, exit_status
from adapterctl.verdicts import finding_lines, heartbeat_line, render_verdict
from shared.events import (
    Actor,
    AdapterTrained,
    BaseModelRef,
    Finding,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionValidated,
)
from shared.findings import FindingCode, fix_for
from shared.verdicts import (
    DUPLICATE,
    Outcome,
    Until,
    Verdict,
    Waited,
    duplicate,
    from_json,
    settle,
    to_json,
    verdict_of,
    wait_for_verdict,
)
from tests.factories import lifecycle
from tests.samples import sample

A, R, EVENT = "support-bot", "sha256:" + "a" * 64, "0b7e4f6e-2c1d-4e55-9a3f-1f2e3d4c5b6a"
ESCAPES = Finding(
    code=FindingCode.PATH_ESCAPES_ROOT,
    severity="error",
    message="artifact path '/tmp/x' is outside the allowed roots (/srv/incoming)",
    evidence={"path": "/tmp/x", "allowed_roots": "/srv/incoming"},
)
RANK = Finding(
    code=FindingCode.RANK_EXCEEDS_ENVIRONMENT,
    severity="error",
    message="rank 64 is above staging's max 16",
    evidence={"expected": "r <= 16", "found": "r = 64", "environment": "staging"},
)


def registered() -> Any:
    return lifecycle(RevisionRegistered, A, R, submitter="tia")


def rejected(*findings: Finding, by: str = "validator") -> Any:
    event: Any = lifecycle(RevisionRejected, A, R, findings=list(findings))
    envelope = dataclasses.replace(event.envelope, actor=Actor(principal=by, role="service"))
    return dataclasses.replace(event, envelope=envelope)


def validated(*envs: str) -> Any:
    return lifecycle(RevisionValidated, A, R, findings=[], checked_environments=list(envs))


def evaluated(env: str) -> Any:
    return lifecycle(RevisionEvaluated, A, R, env)


def eval_failed(env: str) -> Any:
    return lifecycle(RevisionEvaluationFailed, A, R, env, cause="gates failed", findings=[])


def verdict(*events: Any) -> Verdict:
    made = verdict_of(EVENT, [registered(), *events])
    assert made is not None
    return made


def test_no_verdict_before_the_revision_is_registered() -> None:
    assert verdict_of(EVENT, []) is None


def test_an_ingest_refusal_is_a_rejected_verdict_with_its_findings() -> None:
    made = verdict(rejected(ESCAPES, by="ingest"))
    assert (made.adapter, made.revision, made.submitter, made.state) == (A, R, "tia", "rejected")
    [check] = made.checks
    assert (check.stage, check.passed, check.findings) == ("ingest", False, (ESCAPES,))


def test_the_json_form_round_trips_and_carries_meaning_and_fix() -> None:
    made = verdict(validated("staging"), eval_failed("staging"))
    assert from_json(to_json(made)) == made
    [finding] = to_json(verdict(rejected(RANK)))["checks"][0]["findings"]
    assert finding["fix"] == fix_for(RANK.code) and finding["evidence"]["found"] == "r = 64"


@pytest.mark.parametrize(
    ("events", "until", "outcome"),
    [
        ([], Until.VALIDATED, None),  # registered: the validator has not spoken
        ([rejected(RANK)], Until.EVALUATED, Outcome.FAILED),
        ([rejected(ESCAPES, by="ingest")], Until.VALIDATED, Outcome.FAILED),
        ([validated("staging")], Until.VALIDATED, Outcome.PASSED),
        ([validated("staging")], Until.EVALUATED, None),  # evaluation follows
        ([validated()], Until.EVALUATED, Outcome.PASSED),  # nothing to evaluate in
        ([validated("staging"), evaluated("staging")], Until.EVALUATED, Outcome.PASSED),
        ([validated("staging"), eval_failed("staging")], Until.EVALUATED, Outcome.FAILED),
        ([validated("a", "b"), evaluated("a")], Until.EVALUATED, None),  # b still pending
        ([validated("a", "b"), evaluated("a"), eval_failed("b")], Until.EVALUATED, Outcome.FAILED),
        ([validated(), lifecycle(RevisionQuarantined, A, R)], Until.VALIDATED, Outcome.FAILED),
    ],
)
def test_the_verdict_is_in_when_its_checks_have_spoken(
    events: list[Any], until: Until, outcome: Outcome | None
) -> None:
    assert settle(verdict(*events), until) == outcome


def test_a_duplicate_submission_fails_and_nothing_pending_is_unsettled() -> None:
    assert settle(duplicate(EVENT), Until.VALIDATED) is Outcome.FAILED
    assert settle(None, Until.VALIDATED) is None


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waiting_polls_until_the_verdict_is_in_and_beats_the_heart_meanwhile() -> None:
    clock = Clock()
    answers = [None, None, None, verdict(), verdict(), verdict(validated())]
    beats: list[tuple[str | None, float]] = []
    waited = wait_for_verdict(
        lambda: answers.pop(0),
        until=Until.VALIDATED,
        timeout_s=60,
        clock=clock,
        sleep=clock.sleep,
        heartbeat=lambda v, s: beats.append((v.state if v else None, s)),
        heartbeat_s=2,
        poll_s=1,
    )
    assert waited.outcome is Outcome.PASSED and answers == []
    assert beats == [(None, 2.0), ("registered", 4.0)]


def test_waiting_gives_up_at_the_timeout_with_the_last_verdict_seen() -> None:
    clock = Clock()
    waited = wait_for_verdict(
        lambda: verdict(validated("staging")),
        until=Until.EVALUATED,
        timeout_s=5,
        clock=clock,
        sleep=clock.sleep,
        heartbeat_s=0,
    )
    assert waited.outcome is None and waited.verdict is not None and clock.now == 105.0


@pytest.mark.parametrize(
    ("outcome", "status"),
    [(Outcome.PASSED, EXIT_PASSED), (Outcome.FAILED, EXIT_FAILED), (None, EXIT_TIMEOUT)],
)
def test_exit_status_of_a_wait(outcome: Outcome | None, status: int) -> None:
    assert exit_status(Waited(None, outcome)) == status
    assert (EXIT_PASSED, EXIT_FAILED, EXIT_TIMEOUT) == (0, 1, 3)  # 2 is usage


def test_a_finding_is_shown_with_expected_found_the_rest_of_its_evidence_and_the_fix() -> None:
    assert finding_lines(RANK) == [
        "rank_exceeds_environment (error): rank 64 is above staging's max 16",
        "    expected: r <= 16",
        "    found: r = 64",
        "    environment: staging",
        f"    fix: {fix_for(RANK.code)}",
    ]


@pytest.mark.parametrize(
    ("made", "until", "outcome", "shown"),
    [
        (verdict(rejected(ESCAPES, by="ingest")), Until.EVALUATED, Outcome.FAILED,
         ["REJECTED: support-bot revision", "ingest: FAILED, 1 finding",
          "path_escapes_root (error)", "allowed_roots: /srv/incoming",
          f"fix: {fix_for(ESCAPES.code)}"]),
        (verdict(validated("staging")), Until.VALIDATED, Outcome.PASSED,
         ["passed: support-bot revision", "is validated", "validation: passed"]),
        (verdict(validated("staging"), evaluated("staging")), Until.EVALUATED, Outcome.PASSED,
         ["evaluated (staging: evaluated); next it waits for approval",
          "evaluation in staging: passed"]),
        (verdict(validated("staging")), Until.EVALUATED, None,
         ["still validated", "waiting for evaluation in staging"]),
        (duplicate(EVENT, A), Until.VALIDATED, Outcome.FAILED, ["duplicate: ingest registered"]),
        (None, Until.VALIDATED, None, ["no verdict yet"]),
    ],
)  # fmt: skip
def test_the_verdict_is_printed_with_every_check_and_finding(
    made: Verdict | None, until: Until, outcome: Outcome | None, shown: list[str]
) -> None:
    text = render_verdict(made, outcome, until)
    for part in shown:
        assert part in text, text


def test_the_heartbeat_says_how_long_and_where_it_stands() -> None:
    assert (
        heartbeat_line(None, 15.2) == "adapterctl: waiting for the verdict (15s, queued at ingest)"
    )
    assert "registered" in heartbeat_line(verdict(), 30)
    assert duplicate(EVENT).state == DUPLICATE


CATALOGUE = {
    "base_models": [
        {"model_id": "tiny-llama", "revision": "sha256:b1", "tokenizer_hash": "tok",
         "chat_template_hash": "tpl"},
        {"model_id": "small-mistral", "revision": "r7", "tokenizer_hash": "tok2",
         "chat_template_hash": "tpl2"},
    ],
    "environments": [
        {"name": "staging", "base_model_id": "tiny-llama", "base_model_revision": "sha256:b1",
         "tokenizer_hash": "tok", "chat_template_hash": "tpl"},
        {"name": "production", "base_model_id": "tiny-llama",
         "base_model_revision": "sha256:b1", "tokenizer_hash": "tok-new",
         "chat_template_hash": "tpl"},
    ],
}  # fmt: skip


def submission(base: str = "tiny-llama@sha256:b1", envs: tuple[str, ...] = ("staging",),
               tokenizer: str = "tok") -> AdapterTrained:  # fmt: skip
    model_id, _, revision = base.partition("@")
    event: AdapterTrained = sample(AdapterTrained)
    return dataclasses.replace(
        event,
        base_model=BaseModelRef(model_id=model_id, revision=revision),
        target_environments=list(envs),
        tokenizer_hash=tokenizer,
        chat_template_hash="tpl",
    )


@pytest.mark.parametrize(
    ("event", "problems"),
    [
        (submission(), []),
        (submission(base="tiny-lama@sha256:b1"),
         ["base model tiny-lama@sha256:b1 is not registered (did you mean tiny-llama@sha256:b1?)"]),
        (submission(base="tiny-llama@sha256:ffff"),
         ["not registered (did you mean tiny-llama@sha256:b1?)"]),
        (submission(envs=("stagin",)),
         ["environment 'stagin' is not registered (did you mean staging?)"]),
        (submission(envs=("production",)),
         ["tokenizer differs from the environment production's (expected tok-new, found tok)"]),
        (submission(tokenizer="other"),
         ["tokenizer differs from the base tiny-llama@sha256:b1's",
          "tokenizer differs from the environment staging's"]),
    ],
)  # fmt: skip
def test_the_pre_flight_check_names_what_the_validator_would_reject(
    event: AdapterTrained, problems: list[str]
) -> None:
    found = preflight(event, CATALOGUE)
    assert len(found) == len(problems), found
    for expected, got in zip(problems, found, strict=True):
        assert expected in got, got


@pytest.mark.parametrize(
    ("wanted", "known", "hint"),
    [
        ("tiny-lama@r1", ["tiny-llama@r1", "mistral@r2"], " (did you mean tiny-llama@r1?)"),
        ("tiny-llama@sha256:0000", ["tiny-llama@sha256:ffff"],
         " (did you mean tiny-llama@sha256:ffff?)"),
        ("zzz", ["tiny-llama@r1"], ""),
        ("x", [], ""),
    ],
)  # fmt: skip
def test_did_you_mean_offers_the_closest_registered_names(
    wanted: str, known: list[str], hint: str
) -> None:
    assert suggest(wanted, known) == hint
