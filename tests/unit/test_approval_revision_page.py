"""The revision page's template, rendered without a server: escaping, the comparison with the
serving revision, the verdicts, a failed evaluation read-only, and an approver who voted
seeing their ballot instead of the forms."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from services.approval.pages import templates
from services.approval.verdicts import Verdict
from services.approval.views import (
    BallotView,
    Evidence,
    FieldDiff,
    FigureView,
    FindingView,
    MeasurementView,
    MetricComparison,
    OutputComparison,
    PressureView,
    ServingView,
)
from shared.registry.principals import Principal, Role

SCRIPT = "<script>alert(1)</script>"
BOB = Principal("bob", Role.APPROVER)
DECISION_FORM = (
    'action="/environments/staging/revisions/summarizer/sha256%3A' + "a" * 64 + '/decision"'
)
WITHDRAW_FORM = DECISION_FORM.replace("/decision", "/withdraw")


def _evidence(**changes: Any) -> Evidence:
    values: dict[str, Any] = {
        "adapter": "summarizer",
        "revision": "sha256:" + "a" * 64,
        "environment": "staging",
        "state": "evaluated",
        "outcome": "evaluated",
        "failure_cause": None,
        "evaluation_findings": [],
        "submitter": SCRIPT,
        "submitted_at": datetime(2025, 12, 30, tzinfo=UTC),
        "manifest_digest": "sha256:" + "b" * 64,
        "report_digest": "sha256:" + "c" * 64,
        "report_uri": "artifact://x",
        "suite_digest": "sha256:" + "d" * 64,
        "backend": "transformers",
        "baseline_revision": None,
        "evaluated_at": datetime(2026, 1, 1, tzinfo=UTC),
        "serving": None,
        "comparison": [
            FieldDiff(key="recipe.note", serving=None, candidate=[SCRIPT], changed=False),
            FieldDiff(key="recipe.ids", serving=None, candidate=["a", "b"], changed=False),
        ],
        "manifest": None,
        "recipe": {"note": SCRIPT, "ids": ["a", "b"]},
        "data_scope": {},
        "findings": [],
        "metrics": [],
        "changed_outputs": [
            OutputComparison(
                id="1", prompt=SCRIPT, reference="base", baseline=SCRIPT, candidate=SCRIPT
            )
        ],
        "unchanged_outputs": 0,
        "evidence_problems": [SCRIPT],
        "required_approvals": 2,
        "ballots": [],
        "decision": None,
    }
    return Evidence(**(values | changes))


def _render(
    evidence: Evidence,
    principal: Principal = BOB,
    *,
    may_decide: bool = True,
    my_ballot: BallotView | None = None,
    chart: str = "",
) -> str:
    return templates.get_template("revision.html").render(
        evidence=evidence,
        principal=principal,
        chart=chart,
        may_decide=may_decide,
        my_ballot=my_ballot,
        outcome=None,
    )


def _serving(**changes: Any) -> ServingView:
    values: dict[str, Any] = {
        "revision": "sha256:" + "9" * 64,
        "known": True,
        "state": "active",
        "submitter": "trainer-zoe",
        "submitted_at": datetime(2025, 11, 1, tzinfo=UTC),
        "approvers": ["carol", "dave"],
        "approved_at": datetime(2025, 11, 2, tzinfo=UTC),
        "activated_at": datetime(2025, 11, 3, tzinfo=UTC),
        "manifest_digest": "sha256:" + "8" * 64,
        "serving_now": None,
        "problems": [],
    }
    return ServingView(**(values | changes))


def _rows(html: str) -> dict[str, str]:
    """The comparison table's rows: the header cell's text (badge dropped) -> the row's markup."""
    start = html.index('id="comparison"')
    table = html[start : html.index("</table>", start)]
    rows = {}
    for row in re.findall(r"<tr[^>]*>.*?</tr>", table, re.S):
        header = re.search(r"<th[^>]*>(.*?)</th>", row, re.S)
        if header is not None:
            key = re.sub(r"<span class=\"badge\">.*?</span>|<[^>]+>", "", header[1]).strip()
            rows[key] = row
    return rows


def test_the_revision_page_escapes_everything_that_came_from_outside() -> None:
    html = _render(_evidence())
    assert "<script" not in html
    assert html.count("&lt;script&gt;") >= 5
    # A list reads as its items, each kept whole, neither JSON nor a Python repr.
    assert '<span class="item whole">a</span>, <span class="item whole">b</span>' in html
    assert "['a'" not in html and "&#34;a&#34;" not in html
    assert 'name="manifest_digest" value="sha256:' + "b" * 64 in html
    assert "base model:" in html


def test_only_an_approver_on_an_awaiting_revision_is_shown_the_decision_forms() -> None:
    html = _render(_evidence(state="approved"), Principal("audrey", Role.AUDITOR), may_decide=False)
    assert '<form method="post" action="/environments' not in html
    assert DECISION_FORM in _render(_evidence())


@pytest.mark.parametrize(("choice", "said"), [("approve", "You approved"), ("deny", "You denied")])
def test_an_approver_who_voted_reads_their_ballot_instead_of_the_forms(
    choice: str, said: str
) -> None:
    ballot = BallotView(
        principal="bob", decision=choice, comment="fine", cast_at=datetime(2026, 1, 2, tzinfo=UTC)
    )
    html = _render(_evidence(ballots=[ballot]), my_ballot=ballot)
    assert f"{said} this revision on 2026-01-02 00:00 UTC" in html
    assert DECISION_FORM not in html and 'name="decision"' not in html
    assert WITHDRAW_FORM in html


def test_the_serving_revision_stands_beside_the_candidate_with_its_differences_marked() -> None:
    comparison = [
        FieldDiff(key="recipe.seed", serving=["7"], candidate=["11"], changed=True),
        FieldDiff(
            key="recipe.dataset_ids",
            serving=["tickets-q3"],
            candidate=["tickets-q3"],
            changed=False,
        ),
        FieldDiff(key="data_scope.corpora", serving=["faq"], candidate=None, changed=True),
    ]
    evidence = _evidence(
        serving=_serving(), comparison=comparison, baseline_revision="sha256:" + "9" * 64
    )
    rows = _rows(_render(evidence))
    assert "trainer-zoe" in rows["Submitter"] and 'class="changed"' in rows["Submitter"]
    assert "carol, dave" in rows["Approved by"] and "0 of 2" in rows["Approved by"]
    assert "2025-11-03 00:00 UTC" in rows["Activated"]
    assert 'class="changed"' in rows["recipe.seed"]
    assert 'class="changed"' not in rows["recipe.dataset_ids"]
    assert "absent" in rows["data_scope.corpora"]
    assert "2 of 3 fields differ" in _render(evidence)


def test_without_a_serving_revision_the_page_says_so_and_charts_nothing() -> None:
    metric = MetricComparison(
        name="accuracy",
        candidate=0.8,
        baseline=None,
        delta=None,
        threshold="change >= -0.05",
        passed=True,
        greater_is_better=True,
        verdict=Verdict.NOT_APPLICABLE,
        verdict_note="no baseline: the change bounds were not applied",
    )
    html = _render(_evidence(metrics=[metric]))
    assert 'id="no-serving"' in html and 'id="no-baseline"' in html
    assert "Serving (baseline)" not in html
    verdict = re.search(r'<td class="verdict">(.*?)</td>', html, re.S)
    assert verdict is not None and "n/a" in verdict[1] and "passed" not in verdict[1]


def test_a_failed_evaluation_is_read_only_and_shows_its_failed_gates() -> None:
    failed = MetricComparison(
        name="accuracy",
        candidate=0.5,
        baseline=0.8,
        delta=-0.3,
        threshold=">= 0.70",
        passed=False,
        greater_is_better=True,
        verdict=Verdict.FAILED,
    )
    finding = FindingView(
        code="metric_below_threshold",
        severity="error",
        message="accuracy 0.50 below the floor 0.70",
        evidence={},
    )
    evidence = _evidence(
        state="evaluation_failed",
        outcome="evaluation_failed",
        failure_cause="gates failed: accuracy",
        evaluation_findings=[finding],
        metrics=[failed],
    )
    html = _render(evidence, may_decide=True)  # even were it offered, the template refuses
    assert 'id="evaluation-failed"' in html and "gates failed: accuracy" in html
    assert '<tr class="failed">' in html and "accuracy 0.50 below the floor 0.70" in html
    assert DECISION_FORM not in html and WITHDRAW_FORM not in html


def _measurement(**changes: Any) -> MeasurementView:
    values: dict[str, Any] = {
        "backend": "vllm",
        "device": "cuda (NVIDIA H200)",
        "dtype": "bfloat16",
        "warmed_up": ["base", "stand-in", "candidate", "baseline", "mixed"],
        "warmup_calls": 9,
        "figures": [
            FigureView(
                figure="latency_p95_ms_under_pressure",
                condition=f"under pressure {SCRIPT}",
                candidate=612.0,
                baseline=598.0,
                backend="vllm",
                device="cuda (NVIDIA H200)",
                dtype="bfloat16",
            ),
            FigureView(
                figure="cold_load_ms",
                condition="adapter unloaded first",
                candidate=160.0,
                baseline=None,
                backend="vllm",
                device="cuda (NVIDIA H200)",
                dtype="bfloat16",
            ),
        ],
        "pressure": PressureView(
            tenants=3,
            slots=4,
            tenant_share=0.5,
            counted=True,
            adapter_loads=7,
            swaps=6,
            candidate_loads=1,
        ),
    }
    return MeasurementView(**(values | changes))


def _figures(html: str) -> list[list[str]]:
    start = html.index('id="performance-figures"')
    table = html[start : html.index("</table>", start)]
    return [
        [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)
        if "<td" in row
    ]


def test_an_approver_sees_which_backend_device_and_dtype_produced_each_figure() -> None:
    html = _render(_evidence(measurement=_measurement()))
    assert "<script" not in html
    on = re.search(r'<p id="measured-on">(.*?)</p>', html, re.S)
    assert on is not None
    said = re.sub(r"<[^>]+>", "", on[1])
    assert "On the vllm backend, device cuda (NVIDIA H200), dtype bfloat16." in said
    assert "Warmed up before any latency was measured: base, stand-in, candidate" in said
    assert _figures(html) == [
        [
            "latency_p95_ms_under_pressure",
            "under pressure &lt;script&gt;alert(1)&lt;/script&gt;",
            "598",
            "612",
            "vllm",
            "cuda (NVIDIA H200)",
            "bfloat16",
        ],
        [
            "cold_load_ms",
            "adapter unloaded first",
            "no baseline",
            "160",
            "vllm",
            "cuda (NVIDIA H200)",
            "bfloat16",
        ],
    ]
    pressure = re.search(r'<p id="pressure">(.*?)</p>', html, re.S)
    assert pressure is not None
    assert "3 other tenants' adapters" in pressure[1] and "50% of the requests" in pressure[1]
    assert "at most 4 adapters resident: 7 adapter loads, 6 swaps" in pressure[1]


def test_a_report_that_does_not_say_how_it_measured_is_flagged() -> None:
    metric = MetricComparison(
        name="latency_p95_ms", candidate=12.0, baseline=10.0, delta=2.0, threshold="", passed=True
    )
    html = _render(_evidence(metrics=[metric]))
    assert 'id="measured-unknown"' in html and 'id="performance-figures"' not in html
    quiet = _render(_evidence(measurement=_measurement(pressure=None, warmed_up=[])))
    assert 'id="measured-unknown"' not in quiet
    assert 'id="pressure"' not in quiet
    assert "Nothing was warmed up first" in quiet
