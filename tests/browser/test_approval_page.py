"""An approver logs in to the approval page in a real browser (Debian's headless
Chromium), reads one revision's comparison with its baseline, approves it with a comment,
and the lifecycle advances on the real topic. Screenshots go to tests/browser/artifacts/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from shared.events import RevisionApproved
from tests.integration.test_approval_stack import (
    SUBMITTER,
    ApprovalStack,
    approval_fixture,  # noqa: F401 (gives this module its own stack)
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="browser: Debian's chromium is not installed"
    ),
]


async def test_an_approver_logs_in_compares_and_approves_and_the_lifecycle_advances(
    approval: ApprovalStack,
) -> None:
    async_api = pytest.importorskip("playwright.async_api")
    seeded = await approval.seed(f"page-{approval.stack.token}")
    approval.wait_pending(seeded)
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        scripts: list[str] = []
        page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
        console: list[str] = []  # a CSP violation is reported here
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)

        await page.goto(approval.base_url + "/")
        assert page.url.endswith("/login")
        await page.fill("#token", approval.token("bob", "approver"))
        await page.click("button:has-text('Log in')")
        await page.wait_for_url(approval.base_url + "/")
        cookie = next(c for c in await context.cookies() if c["name"] == "approval_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"

        # The page's own stylesheet applies under its CSP (no inline style is allowed).
        header = await page.eval_on_selector("header", "h => getComputedStyle(h).backgroundColor")
        assert header == "rgb(26, 54, 93)"
        await page.screenshot(path=str(ARTIFACTS / "approval-pending.png"), full_page=True)
        await page.click(f"tr:has-text('{seeded.adapter}') a")
        await page.wait_for_selector("svg.chart")
        text = await page.inner_text("main")
        for expected in ("accuracy", "0.82", "0.74", "+0.08", "Printer jam.", SUBMITTER):
            assert expected in text, expected
        # One bar per metric measured against the baseline; no_op_rate has none, only words.
        assert await page.locator("svg.chart rect").count() == 3
        assert await page.locator("svg.chart g.no-baseline[data-metric='no_op_rate']").count() == 1
        await page.screenshot(path=str(ARTIFACTS / "approval-comparison.png"), full_page=True)

        await page.fill("#comment-approve", "Outputs read well; latency within budget.")
        await page.click("button.approve")
        await page.wait_for_selector("text=Decision committed: approved.")
        assert await page.inner_text("#state") == "approved"
        await page.screenshot(path=str(ARTIFACTS / "approval-approved.png"), full_page=True)
        await browser.close()

    events = approval.stack.wait_for(
        lambda evs: any(isinstance(e, RevisionApproved) for e in evs), adapter=seeded.adapter
    )
    approved = next(e for e in events if isinstance(e, RevisionApproved))
    assert approved.approvers == ["bob"]
    assert approved.comment == "bob: Outputs read well; latency within budget."
    assert scripts == []  # the page works without a line of JavaScript
    assert not [m for m in console if "Content Security Policy" in m], console
    assert (ARTIFACTS / "approval-approved.png").stat().st_size > 10_000
