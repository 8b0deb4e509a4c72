"""The evidence an approver reads: report reading, the baseline comparison and the chart's
escaping. (The page's template: test_approval_revision_page.py; the chart's geometry:
test_approval_chart.py.)"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from services.approval.chart import bar_chart
from services.approval.evidence import compare_metrics
from services.approval.ports import Metric
from services.approval.report import (
    EvidenceUnreadable,
    compare_outputs,
    read_report,
    report_gates,
    ungated_metrics,
)
from services.approval.verdicts import Verdict
from services.approval.views import MetricComparison
from shared.artifacts import LocalArtifactStore
from shared.registry.principals import hash_token, new_token

SCRIPT = "<script>alert(1)</script>"


def _turn(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_outputs_are_compared_with_the_baseline_and_else_with_the_base_model() -> None:
    report = {
        "items": [
            {
                "id": "a",
                "prompt": _turn("p1"),
                "baseline": {"output": "x"},
                "candidate": {"output": "y"},
                "base": {"output": "z"},
            },
            {
                "id": "b",
                "prompt": _turn("p2"),
                "baseline": {"output": "same"},
                "candidate": {"output": "same"},
            },
            {
                "id": "c",
                "prompt": _turn("p3"),
                "base": {"output": "plain"},
                "candidate": {"output": "tuned"},
            },
            {"id": "d", "prompt": _turn("p4"), "candidate": {"output": "new"}},
            {"id": "e", "prompt": _turn("p5"), "candidate": {"loglik": -1.2}},
            "not an item",
        ]
    }
    changed, unchanged = compare_outputs(report)
    assert [(o.id, o.reference, o.baseline, o.candidate) for o in changed] == [
        ("a", "baseline", "x", "y"),
        ("c", "base", "plain", "tuned"),
        ("d", "baseline", None, "new"),
    ]
    assert unchanged == 1
    assert changed[0].prompt == "user: p1"


@pytest.mark.parametrize("report", [{}, {"items": "oops"}, {"items": None}, {"outputs": []}])
def test_a_report_without_usable_items_shows_no_outputs(report: dict[str, Any]) -> None:
    assert compare_outputs(report) == ([], 0)


def test_metrics_show_their_change_and_ungated_ones_come_from_the_report() -> None:
    gated = compare_metrics(
        [
            Metric(name="accuracy", value=0.8, baseline=0.7, threshold=">= 0.7", passed=True),
            Metric(name="no_op_rate", value=None, baseline=0.1, threshold="<= 0.2", passed=False),
        ]
    )
    assert gated[0].delta == pytest.approx(0.1) and gated[1].delta is None
    assert [(m.greater_is_better, m.verdict) for m in gated] == [
        (True, Verdict.PASSED),
        (False, Verdict.FAILED),
    ]
    report = {
        "metrics": {
            "candidate": {"accuracy": 0.8, "speed": 40.0},
            "baseline": {"accuracy": 0.7, "speed": None},
        },
        "suite": {"gates": {"speed": {"greater_is_better": False}}},
    }
    [extra] = ungated_metrics(report, ["accuracy", "no_op_rate"])
    assert (extra.name, extra.candidate, extra.baseline, extra.delta, extra.gated) == (
        "speed",
        40.0,
        None,
        None,
        False,
    )
    assert (extra.greater_is_better, extra.verdict) == (False, Verdict.NOT_GATED)
    assert ungated_metrics({"metrics": [1, 2]}, []) == []


def test_the_reports_gates_stand_in_for_an_event_without_metrics() -> None:
    report = {
        "gates": [
            {
                "name": "accuracy",
                "value": 0.9,
                "baseline": None,
                "threshold": ">= 0.8",
                "passed": True,
            },
            {"value": 1},
        ]
    }
    assert report_gates(report) == [
        Metric(name="accuracy", value=0.9, baseline=None, threshold=">= 0.8", passed=True)
    ]


def test_a_report_is_read_only_if_it_matches_its_digest_and_its_size_bound(
    tmp_path: Path,
) -> None:
    store = LocalArtifactStore(tmp_path)
    data = json.dumps({"items": []}).encode()
    digest = "sha256:" + store.put_stream(io.BytesIO(data), max_bytes=1 << 20).sha256
    assert read_report(store, digest, 1 << 20) == {"items": []}
    with pytest.raises(EvidenceUnreadable, match="exceeds"):
        read_report(store, digest, 4)
    with pytest.raises(EvidenceUnreadable, match="not in the store"):
        read_report(store, "sha256:" + "0" * 64, 1 << 20)
    with pytest.raises(EvidenceUnreadable, match="not in the store"):
        read_report(store, "sha256:../../etc/passwd", 1 << 20)
    listed = store.put_stream(io.BytesIO(b"[1, 2]"), max_bytes=100).sha256
    with pytest.raises(EvidenceUnreadable, match="not a JSON object"):
        read_report(store, "sha256:" + listed, 100)
    assert hashlib.sha256(data).hexdigest() in digest


def test_the_chart_escapes_metric_names_and_is_empty_without_a_baseline() -> None:
    def metric(name: str, candidate: float | None, baseline: float | None) -> MetricComparison:
        return MetricComparison(
            name=name, candidate=candidate, baseline=baseline, delta=None, threshold="", passed=True
        )

    svg = bar_chart([metric(SCRIPT, 2.0, 1.0), metric("x", None, 1.0)])
    assert SCRIPT not in svg and "&lt;script&gt;" in svg
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "not measured" in svg
    assert bar_chart([metric("a", 2.0, None), metric("b", None, None)]) == ""
    assert bar_chart([]) == ""


def test_tokens_are_random_prefixed_and_stored_only_as_their_sha256() -> None:
    first, second = new_token(), new_token()
    assert first != second and first.startswith("apt_") and len(first) > 40
    assert hash_token(first) == hashlib.sha256(first.encode()).hexdigest()
    assert hash_token("\udcff") != hash_token("")  # odd bytes in a header still hash
