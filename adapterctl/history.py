"""`adapterctl history ADAPTER`: one adapter's timeline, one line per lifecycle event, and
every finding in full (with its fix) after the table."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from adapterctl.output import emit, moment, short, table, to_json, warn
from adapterctl.rollout_view import analysis_line
from adapterctl.source import Source, audit
from adapterctl.verdicts import render_findings
from shared.events import (
    CanaryExpanded,
    CanaryStarted,
    ManifestArchived,
    RevisionActivated,
    RevisionApproved,
    RevisionDenied,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionExpired,
    RevisionQuarantined,
    RevisionRegistered,
    RevisionRejected,
    RevisionRolledBack,
    RevisionSuperseded,
    RevisionValidated,
    RolloutFailed,
    RolloutStalled,
    WeightsDeleted,
)
from shared.verdicts import finding_to_json

EPILOG = """\
Shows each event of the adapter once (republished duplicates skipped), in log order,
then every finding of its validations, rejections, failed evaluations and quarantines in
full: code, message, expected and found, the rest of the evidence and the fix
(docs/findings.md lists every code). --json carries them as objects under each event's
"findings".
exit status: 0 shown from a verified log, 1 the adapter is unknown or its chain has
problems (see `adapterctl audit verify`), 2 usage or connection error

examples:
  adapterctl history support-summarizer
  adapterctl history support-summarizer --json | jq '.events[] | .event'"""


def _share(percent: int, tenants: list[str]) -> str:
    return f"{percent}% of traffic" + (f", tenants {', '.join(tenants)}" if tenants else "")


def _findings(findings: list[Any]) -> str:
    count = f"{len(findings)} finding{'' if len(findings) == 1 else 's'}"
    return count + (f": {', '.join(f.code for f in findings)}" if findings else "")


# One short detail per event type; the full event is in `--json` and in the log.
DETAILS: dict[type, Callable[[Any], str]] = {
    RevisionRegistered: lambda e: f"manifest {short(e.manifest_digest)} from {e.submitter}",
    RevisionValidated: lambda e: _findings(e.findings),
    RevisionRejected: lambda e: _findings(e.findings),
    RevisionEvaluated: lambda e: (
        f"report {short(e.report_digest)} on {e.backend}, "
        + ", ".join(f"{m.name}={m.value:.4g}{'' if m.passed else ' FAIL'}" for m in e.metrics)
    ),
    RevisionEvaluationFailed: lambda e: (
        e.cause + (f"; {_findings(e.findings)}" if e.findings else "")
    ),
    RevisionApproved: lambda e: (
        f"by {', '.join(e.approvers) or e.envelope.actor.principal}, "
        f"report {short(e.report_digest)}"
    ),
    RevisionDenied: lambda e: e.comment or "denied",
    CanaryStarted: lambda e: _share(e.traffic_percent, e.tenants),
    CanaryExpanded: lambda e: _share(e.traffic_percent, e.tenants) + _analysis(e),
    RevisionActivated: lambda e: (
        f"replaces {short(e.previous_revision)}"
        + (f": {e.reason}" if e.reason else "")
        + _analysis(e)
    ),
    RevisionSuperseded: lambda e: f"by {short(e.superseded_by)}",
    RevisionRolledBack: lambda e: (
        f"restores {short(e.restored_revision)}: {e.reason}" + _analysis(e)
    ),
    RevisionExpired: lambda e: e.reason,
    ManifestArchived: lambda e: f"to {e.archive_uri}",
    WeightsDeleted: lambda e: f"{e.file_count} files, {e.bytes_freed} bytes freed",
    RevisionQuarantined: lambda e: f"detected by {e.detected_by}: {_findings(e.findings)}",
    RolloutFailed: lambda e: f"rollout failed ({e.action}): {e.reason}",
    RolloutStalled: lambda e: (
        f"rollout stalled for {waited(e.waited_s)} ({e.action}): replicas "
        f"{', '.join(e.unreachable) or '(unnamed)'} unreachable"
    ),
}


def waited(seconds: int) -> str:
    """`45 s`, `5 min`, `2 h 5 min`: how long a rollout has waited, as a person reads it."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h" + (f" {minutes % 60} min" if minutes % 60 else "")


def _analysis(event: Any) -> str:
    """`; analysis: expand -> 50%: ...` when canary analysis made the move, else ``."""
    line = analysis_line(getattr(event, "evidence", None) or {})
    return f"; analysis: {line}" if line else ""


def _detail(event: Any) -> str:
    """The event's detail; an event type this version has no line for shows its name."""
    describe = DETAILS.get(type(event))
    return describe(event) if describe else type(event).__name__


def findings_section(rows: list[dict[str, Any]], events: list[Any]) -> str:
    """Every finding of the timeline, under the event that carries it."""
    blocks = []
    for row, event in zip(rows, events, strict=True):
        findings = getattr(event, "findings", None)
        if findings:
            where = f" in {row['environment']}" if row["environment"] else ""
            blocks.append(f"seq {row['seq']} {row['event']}{where}, revision {row['revision']}:")
            blocks.append(render_findings(findings))
    return "\n".join(["", "findings:", *blocks]) if blocks else ""


def register(groups: Any, common: argparse.ArgumentParser) -> None:
    parser = groups.add_parser(
        "history",
        parents=[common],
        help="one adapter's timeline",
        description="One adapter's timeline from the lifecycle log: seq, time, event, "
        "revision, environment, actor and a short detail.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("adapter", metavar="ADAPTER", help="the adapter's name (the record key)")
    parser.set_defaults(run=run_history)


def run_history(args: argparse.Namespace, source: Source) -> int:
    report = audit(source)
    adapter: str = args.adapter
    if adapter not in report.adapters:
        known = ", ".join(report.adapters[:10]) or "none"
        warn(f"adapter {adapter!r} has no events in {source.topic} (adapters there: {known})")
        return 1
    entries = [
        entry
        for entry in report.accepted
        if entry.event is not None and entry.event.envelope.adapter == adapter
    ]
    events: list[Any] = [entry.event for entry in entries]
    rows: list[dict[str, Any]] = [
        {
            "seq": e.envelope.seq,
            "occurred_at": e.envelope.occurred_at,
            "event": type(e).__name__,
            "event_id": e.envelope.event_id,
            "revision": e.envelope.revision,
            "environment": e.envelope.environment,
            "actor": e.envelope.actor,
            "detail": _detail(e),
            "findings": [finding_to_json(f) for f in getattr(e, "findings", None) or []],
            "analysis": analysis_line(getattr(e, "evidence", None) or {}),
            "position": entry.position,
        }
        for entry, e in zip(entries, events, strict=True)
    ]
    problems = [p for p in report.problems if p.adapter == adapter]
    if problems:
        warn(f"{len(problems)} problems in {adapter!r}'s chain, the first: {problems[0]}")
    if args.json:
        emit(
            to_json(
                {
                    "topic": source.topic,
                    "adapter": adapter,
                    "verified": not problems,
                    "events": rows,
                }
            )
        )
        return 1 if problems else 0
    emit(f"{adapter} in {source.topic}: {len(rows)} events\n")
    emit(
        table(
            ("SEQ", "TIME", "EVENT", "REVISION", "ENV", "ACTOR", "DETAIL"),
            [
                (
                    r["seq"],
                    moment(r["occurred_at"]),
                    r["event"],
                    short(r["revision"]),
                    r["environment"],
                    f"{r['actor'].principal} ({r['actor'].role})",
                    r["detail"],
                )
                for r in rows
            ],
        )
    )
    section = findings_section(rows, events)
    if section:
        emit(section)
    return 1 if problems else 0
