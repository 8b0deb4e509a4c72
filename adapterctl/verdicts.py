"""How adapterctl shows findings and a submission's verdict: each finding in full (code,
message, expected and found, the rest of its evidence) with the fix for its code."""

from __future__ import annotations

from collections.abc import Iterable

from adapterctl.output import short
from shared.events import Finding
from shared.findings import fix_for
from shared.verdicts import DUPLICATE, Check, Outcome, Until, Verdict, pending_environments

# Evidence keys shown first, in this order, under these labels.
_LEADING = (("expected", "expected"), ("found", "found"))


def finding_lines(finding: Finding) -> list[str]:
    """One finding as lines: `code (severity): message`, then indented evidence and fix."""
    evidence = dict(finding.evidence)
    lines = [f"{finding.code} ({finding.severity}): {finding.message}"]
    for key, label in _LEADING:
        if key in evidence:
            lines.append(f"    {label}: {evidence.pop(key)}")
    lines += [f"    {key}: {value}" for key, value in sorted(evidence.items())]
    lines.append(f"    fix: {fix_for(finding.code)}")
    return lines


def render_findings(findings: Iterable[Finding], indent: str = "  ") -> str:
    """Every finding in full, one block each, prefixed by `- `."""
    blocks = []
    for finding in findings:
        first, *rest = finding_lines(finding)
        blocks.append("\n".join([f"{indent}- {first}", *(f"{indent}{line}" for line in rest)]))
    return "\n".join(blocks)


def _check_title(check: Check) -> str:
    where = f" in {check.environment}" if check.environment else ""
    verdict = "passed" if check.passed else "FAILED"
    detail = f" ({check.detail})" if check.detail else ""
    count = len(check.findings)
    found = f", {count} finding{'s' if count != 1 else ''}" if count else ""
    return f"{check.stage}{where}: {verdict}{detail}{found}"


def headline(verdict: Verdict | None, outcome: Outcome | None, until: Until) -> str:
    """The one line that says where the submission ended (or stands, when it timed out)."""
    if verdict is None:
        return "no verdict yet: ingest has not handled the submission"
    if verdict.state == DUPLICATE:
        return (
            "duplicate: ingest registered nothing, the same files are already a revision "
            f"of an adapter (see `adapterctl history {verdict.adapter or 'ADAPTER'}`)"
        )
    what = f"{verdict.adapter} revision {short(verdict.revision, 30)}"
    if outcome is None:
        pending = pending_environments(verdict) if until is Until.EVALUATED else []
        waiting = f"evaluation in {', '.join(pending)}" if pending else "the validator"
        return f"still {verdict.state}: {what}, waiting for {waiting}"
    if outcome is Outcome.FAILED:
        return f"{verdict.state.upper()}: {what}"
    envs = {e: s for e, s in verdict.environments.items() if e in verdict.checked_environments}
    if until is Until.EVALUATED and envs:
        states = ", ".join(f"{e}: {s}" for e, s in sorted(envs.items()))
        return f"passed: {what} is evaluated ({states}); next it waits for approval"
    return f"passed: {what} is {verdict.state}"


def render_verdict(verdict: Verdict | None, outcome: Outcome | None, until: Until) -> str:
    """The headline, then each check and every finding with its fix."""
    lines = [headline(verdict, outcome, until)]
    for check in verdict.checks if verdict else ():
        lines.append(f"  {_check_title(check)}")
        if check.findings:
            lines.append(render_findings(check.findings, indent="    "))
    return "\n".join(lines)


def heartbeat_line(verdict: Verdict | None, waited_s: float) -> str:
    """What stderr says every --heartbeat seconds while the verdict is coming."""
    state = verdict.state if verdict else "queued at ingest"
    return f"adapterctl: waiting for the verdict ({waited_s:.0f}s, {state})"
