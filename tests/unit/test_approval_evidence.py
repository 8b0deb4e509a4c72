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
    measurement,
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


def evaluator_report_performance() -> dict[str, Any]:
    """`performance` as the evaluator writes it, from its own code: candidate and baseline
    warmed up, cold loads timed, then pressure from three tenants in three slots."""
    from services.gpu_evaluator.evaluation import EvaluationRun, TargetRun, measured_figures
    from services.gpu_evaluator.load import LoadResult, Served
    from services.gpu_evaluator.pressure import PressureRun
    from services.gpu_evaluator.report import performance_section
    from services.gpu_evaluator.warmup import ColdLoad, Warmup

    def served(*latencies: tuple[int, float]) -> LoadResult:
        return LoadResult(
            served=tuple(Served(t, s, 5, 2) for t, s in latencies),
            unserved=0,
            batches=len(latencies),
            duration_s=1.0,
        )

    run = EvaluationRun(
        base=TargetRun(),
        candidate=TargetRun(),
        baseline=TargetRun(),
        load=served((0, 0.02), (1, 0.03)),
        duration_s=5.0,
        warmup=Warmup(
            calls=9,
            seconds=1.5,
            targets=("base", "stand-in", "candidate", "baseline", "mixed"),
            cold_loads=(ColdLoad("candidate", 0.16, 0.02, 1), ColdLoad("baseline", 0.12, 0.03, 1)),
        ),
        pressure=PressureRun(
            slots=3,
            tenants=3,
            tenant_share=0.5,
            load=served((0, 0.4), (1, 0.5), (2, 0.6)),
            counted=True,
            loads=7,
            swaps=6,
            candidate_loads=1,
        ),
    )
    metrics = {
        role: {"latency_p95_ms": 20.0 + i, **measured_figures(run, i)}
        for i, role in enumerate(("candidate", "baseline"))
    }
    described = {
        "name": "vllm",
        "device": "cuda",
        "device_name": "NVIDIA H200",
        "dtype": "bfloat16",
    }
    section: dict[str, Any] = json.loads(json.dumps(performance_section(run, metrics, described)))
    return section


def test_the_page_reads_which_backend_device_and_dtype_produced_each_figure() -> None:
    measured = measurement({"performance": evaluator_report_performance()})
    assert measured is not None
    assert (measured.backend, measured.device, measured.dtype) == (
        "vllm",
        "cuda (NVIDIA H200)",
        "bfloat16",
    )
    assert measured.warmed_up == ["base", "stand-in", "candidate", "baseline", "mixed"]
    rows = {f.figure: f for f in measured.figures}
    assert list(rows) == [
        "latency_p95_ms",
        "cold_load_ms",
        "latency_p50_ms_under_pressure",
        "latency_p95_ms_under_pressure",
        "tokens_per_s_under_pressure",
    ]
    assert {(f.backend, f.device, f.dtype) for f in measured.figures} == {
        ("vllm", "cuda (NVIDIA H200)", "bfloat16")
    }
    assert (rows["cold_load_ms"].candidate, rows["cold_load_ms"].baseline) == (160.0, 120.0)
    assert rows["latency_p50_ms_under_pressure"].candidate == pytest.approx(400.0)
    assert "3 other tenants' adapters, 3 slots" in rows["latency_p95_ms_under_pressure"].condition
    assert rows["latency_p95_ms"].condition == "warm, under the load profile"
    assert measured.pressure is not None
    assert (measured.pressure.swaps, measured.pressure.candidate_loads) == (6, 1)


@pytest.mark.parametrize(
    "performance",
    [
        {"figures": "oops", "pressure": {"tenants": "3"}, "warmup": []},
        {"figures": [{"figure": "x", "target": "tenant-1", "value": 1}, "row", {"target": 1}]},
        {"measured_on": None, "figures": [{"target": "candidate", "value": 1}]},
    ],
)
def test_a_malformed_performance_section_is_read_as_far_as_it_goes(
    performance: dict[str, Any],
) -> None:
    measured = measurement({"performance": performance})
    assert measured is not None
    assert (measured.figures, measured.pressure, measured.warmed_up) == ([], None, [])


def test_a_report_that_does_not_say_how_it_measured_has_no_measurement() -> None:
    assert measurement({"metrics": {"candidate": {"latency_p95_ms": 3.0}}}) is None
    assert measurement({"performance": None}) is None
