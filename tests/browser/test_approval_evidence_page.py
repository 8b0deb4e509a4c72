"""What an approver reads on a revision's page, in a real browser (Debian's headless
Chromium) against the real service: the candidate beside the revision serving the
environment (who trained and approved it, when, its recipe and data scope, differences
marked, values never broken mid-word), a chart whose bars point the better way for negative
and lower-is-better metrics, words instead of a chart without a baseline, a failed
evaluation read-only, and the approver's own ballot in place of the forms once cast.

The pending list and the evidence page are saved as screenshots, in
tests/browser/artifacts/screenshots/ or where APPROVAL_SCREENSHOTS says (`python -m
tests.browser.screenshots` writes the ones in docs/screenshots/)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.approval.chart import AXIS
from shared.events import Finding, MetricResult
from tests.integration.test_approval_stack import (
    PRODUCTION,
    STAGING,
    ApprovalStack,
    Seeded,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOTS = Path(os.environ.get("APPROVAL_SCREENSHOTS") or ARTIFACTS / "screenshots")
HIGHLIGHT = "rgb(254, 252, 191)"  # tr.changed in approval.css

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="browser: Debian's chromium is not installed"
    ),
]

DATASETS = [
    "tickets-2025-q3-eu-west",
    "faq-articles-2025-01",
    "chat-transcripts-redacted-v2",
    "escalations-2024-h2",
]
SERVING_RECIPE = {
    "seed": 7,
    "dataset_ids": DATASETS,
    "hyperparameters": {"learning_rate": "2e-4", "lora_alpha": "16", "epochs": "3"},
    "evaluation_summary": {"train_loss": 0.41, "eval_loss": 0.47},
}
CANDIDATE_RECIPE = {
    "seed": 11,
    "dataset_ids": DATASETS,
    "hyperparameters": {"learning_rate": "1e-4", "lora_alpha": "16", "epochs": "3"},
    "evaluation_summary": {"train_loss": 0.38, "eval_loss": 0.45},
}
SERVING_SCOPE = {
    "corpora": ["support-tickets", "faq"],
    "time_window_start": "2025-01-01",
    "time_window_end": "2025-09-30",
    "filtering_rules": ["pii-scrubbed", "language=en"],
}
CANDIDATE_SCOPE = SERVING_SCOPE | {"time_window_end": "2025-12-31"}
LATENCY_GATE = "<= 180.00; relative change <= +50.0%"
# The candidate against the serving revision: accuracy up; a log-likelihood below zero
# rising towards it (better); p95 latency up (worse, lower is better); tokens/s, ungated,
# down (worse).
CANDIDATE_METRICS = [
    MetricResult(name="accuracy", value=0.82, baseline=0.74, threshold=">= 0.70", passed=True),
    MetricResult(
        name="latency_p95_ms", value=143.0, baseline=120.0, threshold=LATENCY_GATE, passed=True
    ),
    MetricResult(
        name="mean_loglik", value=-0.91, baseline=-1.24, threshold="change >= -1.00", passed=True
    ),
]
CANDIDATE_REPORT_METRICS = {
    "candidate": {"accuracy": 0.82, "tokens_per_s": 41.5},
    "baseline": {"accuracy": 0.74, "tokens_per_s": 44.0},
}
# A first revision: nothing to compare with, so the change bounds judged nothing.
FIRST_METRICS = [
    MetricResult(name="accuracy", value=0.79, baseline=None, threshold=">= 0.70", passed=True),
    MetricResult(
        name="latency_p95_ms", value=131.0, baseline=None, threshold=LATENCY_GATE, passed=True
    ),
    MetricResult(
        name="mean_loglik", value=-1.02, baseline=None, threshold="change >= -1.00", passed=True
    ),
]
FAILED_METRICS = [
    MetricResult(name="accuracy", value=0.58, baseline=0.74, threshold=">= 0.70", passed=False),
    MetricResult(
        name="latency_p95_ms", value=125.0, baseline=120.0, threshold=LATENCY_GATE, passed=True
    ),
]
FAILED_FINDING = Finding(
    code="metric_below_threshold",
    severity="error",
    message="accuracy 0.58 below the floor 0.70",
    evidence={"metric": "accuracy", "value": "0.5800", "threshold": "0.7000"},
)


@dataclass(frozen=True)
class Scene:
    serving: Seeded  # active in production, approved by bob and carol
    candidate: Seeded  # evaluated in production against it, awaiting two approvals
    first: Seeded  # another adapter's first revision, in staging: no baseline
    failed: Seeded  # a third revision of the first adapter, failed evaluation in production


@pytest.fixture(scope="module")
async def scene(approval: ApprovalStack) -> Scene:
    adapter = f"summarizer-{approval.stack.token}"
    serving = await approval.seed(
        adapter,
        PRODUCTION,
        submitter="trainer-zoe",
        recipe=SERVING_RECIPE,
        data_scope=SERVING_SCOPE,
        baseline_revision=None,
        metrics=FIRST_METRICS,
    )
    await approval.serve(serving, ("bob", "carol"))
    candidate = await approval.seed(
        adapter,
        PRODUCTION,
        variant="-2",
        recipe=CANDIDATE_RECIPE,
        data_scope=CANDIDATE_SCOPE,
        baseline_revision=serving.revision,
        metrics=CANDIDATE_METRICS,
        report_metrics=CANDIDATE_REPORT_METRICS,
    )
    first = await approval.seed(
        f"classifier-{approval.stack.token}",
        STAGING,
        baseline_revision=None,
        metrics=FIRST_METRICS,
        report_metrics={"candidate": {"tokens_per_s": 52.0}, "baseline": {}},
    )
    failed = await approval.seed(
        adapter,
        PRODUCTION,
        variant="-3",
        recipe=CANDIDATE_RECIPE | {"seed": 13},
        data_scope=SERVING_SCOPE,
        baseline_revision=serving.revision,
        metrics=FAILED_METRICS,
        failure="gates failed: accuracy",
        findings=[FAILED_FINDING],
    )
    approval.wait_pending(candidate)
    approval.wait_pending(first)
    return Scene(serving, candidate, first, failed)


@contextlib.asynccontextmanager
async def signed_in(approval: ApprovalStack, name: str) -> AsyncIterator[Any]:
    """A browser page logged in as approver `name`, on the pending list."""
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            await page.goto(approval.base_url + "/login")
            await page.fill("#token", approval.token(name, "approver"))
            await page.click("button:has-text('Log in')")
            await page.wait_for_url(approval.base_url + "/")
            yield page
        finally:
            await browser.close()


ROWS = """rows => rows.map(r => ({
    key: r.querySelector('th').innerText.replace(/\\s*changed$/, '').trim(),
    cells: [...r.querySelectorAll('td')].map(c => c.innerText.trim()),
    changed: r.classList.contains('changed'),
    background: getComputedStyle(r.querySelector('td') || r).backgroundColor,
}))"""
BARS = """groups => groups.map(g => {
    const rect = g.querySelector('rect');
    return {
        name: g.dataset.metric,
        tone: g.getAttribute('class').split(' ').pop(),
        x: rect ? parseFloat(rect.getAttribute('x')) : null,
        width: rect ? parseFloat(rect.getAttribute('width')) : null,
    };
})"""
ITEMS = """items => items.map(i => ({
    text: i.innerText, lines: i.getClientRects().length, top: i.getBoundingClientRect().top,
}))"""
VERDICTS = """rows => Object.fromEntries(rows.slice(1).map(r =>
    [r.cells[0].innerText, r.querySelector('td.verdict').innerText.trim()]))"""


async def test_the_candidate_stands_beside_the_serving_revision_with_its_differences_marked(
    approval: ApprovalStack, scene: Scene
) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with signed_in(approval, "dave") as page:
        await page.screenshot(path=str(SCREENSHOTS / "approval-pending.png"), full_page=True)
        await page.click(f"tr:has-text('{scene.candidate.adapter}') a")
        await page.wait_for_selector("#comparison")
        rows = {r["key"]: r for r in await page.eval_on_selector_all("#comparison tbody tr", ROWS)}

        # Who trained and approved what is serving, beside the candidate.
        assert rows["Submitter"]["cells"] == ["trainer-zoe", "trainer-alice"]
        assert rows["Submitter"]["changed"] and rows["Submitter"]["background"] == HIGHLIGHT
        assert rows["Approved by"]["cells"] == ["bob, carol", "0 of 2"]
        for when in ("Submitted", "Approved", "Activated"):
            assert rows[when]["cells"][0].endswith(" UTC"), rows[when]

        # Seed, learning rate, train loss and the time window differ; the datasets do not.
        expected = {
            "recipe.seed": (["7", "11"], True),
            "recipe.hyperparameters.learning_rate": (["2e-4", "1e-4"], True),
            "recipe.evaluation_summary.train_loss": (["0.41", "0.38"], True),
            "data_scope.time_window_end": (["2025-09-30", "2025-12-31"], True),
            "recipe.hyperparameters.lora_alpha": (["16", "16"], False),
            "data_scope.corpora": (["support-tickets, faq"] * 2, False),
        }
        for key, (cells, changed) in expected.items():
            assert (rows[key]["cells"], rows[key]["changed"]) == (cells, changed), key
            assert (rows[key]["background"] == HIGHLIGHT) is changed, key
        assert not rows["recipe.dataset_ids"]["changed"]

        # The datasets' cell wraps, but only between items: none is broken mid-word.
        items = await page.eval_on_selector_all(
            "#comparison tr:has(th:text-is('recipe.dataset_ids')) td:last-child .item", ITEMS
        )
        assert [i["text"] for i in items] == DATASETS
        assert len({i["top"] for i in items}) > 1, "the cell should need more than one line"
        every = await page.eval_on_selector_all("#comparison .item.whole", ITEMS)
        assert every and all(i["lines"] == 1 for i in every), every

        # Bars: right is better. The log-likelihood rose towards zero (better) and changed
        # most, so its bar is the longest; latency rose and tokens/s fell (both worse).
        bars = {b["name"]: b for b in await page.eval_on_selector_all("svg.chart g.metric", BARS)}
        assert {n: b["tone"] for n, b in bars.items()} == {
            "accuracy": "better",
            "latency_p95_ms": "worse",
            "mean_loglik": "better",
            "tokens_per_s": "worse",
        }
        for name in ("accuracy", "mean_loglik"):
            assert bars[name]["x"] == AXIS and bars[name]["width"] > 0, name
        for name in ("latency_p95_ms", "tokens_per_s"):
            assert bars[name]["x"] + bars[name]["width"] == pytest.approx(AXIS, abs=0.1), name
        assert bars["mean_loglik"]["width"] > bars["accuracy"]["width"]
        verdicts = await page.eval_on_selector_all("table.metrics tr", VERDICTS)
        assert verdicts["latency_p95_ms"] == "passed" and verdicts["tokens_per_s"] == "—"
        await page.screenshot(path=str(SCREENSHOTS / "approval-evidence.png"), full_page=True)

        # Once dave has voted, the page says so instead of offering the forms again.
        await page.fill("#comment-approve", "Latency is up but within budget.")
        await page.click("button.approve")
        await page.wait_for_selector("text=Your approval is recorded: 1 of 2")
        await page.goto(approval.base_url + scene.candidate.page_path)
        assert "You approved this revision" in await page.inner_text("#your-ballot")
        assert await page.locator("button.approve, button.deny, textarea").count() == 0
        assert await page.locator("button.withdraw").count() == 1

    async with signed_in(approval, "carol") as page:  # another approver is still offered them
        await page.goto(approval.base_url + scene.candidate.page_path)
        assert await page.locator("button.approve").count() == 1
        assert await page.locator("#your-ballot").count() == 0


async def test_without_a_baseline_there_is_no_chart_and_change_gates_read_na(
    approval: ApprovalStack, scene: Scene
) -> None:
    async with signed_in(approval, "dave") as page:
        await page.goto(approval.base_url + scene.first.page_path)
        await page.wait_for_selector("#comparison")
        assert await page.locator("svg.chart").count() == 0
        assert await page.is_visible("#no-baseline") and await page.is_visible("#no-serving")
        assert "Serving (baseline)" not in await page.inner_text("#comparison")
        verdicts = await page.eval_on_selector_all("table.metrics tr", VERDICTS)
        assert verdicts["accuracy"] == "passed"
        assert verdicts["mean_loglik"].startswith("n/a"), verdicts
        assert verdicts["latency_p95_ms"].startswith("passed (absolute bound only"), verdicts
        assert verdicts["tokens_per_s"] == "—"
        await page.screenshot(path=str(ARTIFACTS / "approval-no-baseline.png"), full_page=True)


async def test_a_failed_evaluation_is_shown_read_only_with_its_failed_gates(
    approval: ApprovalStack, scene: Scene
) -> None:
    async with signed_in(approval, "dave") as page:
        response = await page.goto(approval.base_url + scene.failed.page_path)
        assert response is not None and response.status == 200
        banner = await page.inner_text("#evaluation-failed")
        assert "gates failed: accuracy" in banner and "read-only" in banner
        assert await page.inner_text("#state") == "evaluation_failed"
        failed = page.locator("table.metrics tr.failed")
        assert await failed.count() == 1
        assert "accuracy" in await failed.inner_text()
        assert FAILED_FINDING.message in await page.inner_text("#evaluation-findings")
        assert "trainer-zoe" in await page.inner_text("#comparison")  # the serving one beside it
        assert (
            await page.locator("form[action$='/decision'], form[action$='/withdraw']").count() == 0
        )
        assert await page.locator("button.approve, button.deny").count() == 0
        await page.screenshot(path=str(ARTIFACTS / "approval-failed.png"), full_page=True)
    with approval.client("dave", "approver") as client:
        evidence = client.get(scene.failed.api_path)
    assert evidence.status_code == 200, evidence.text
    assert evidence.json()["outcome"] == "evaluation_failed"
