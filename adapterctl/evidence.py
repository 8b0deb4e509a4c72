"""`adapterctl audit at`: what served in an environment at a moment, who approved it, on what."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from adapterctl.output import emit, fields, moment, to_json, warn
from adapterctl.source import Source, accepted_events, audit
from shared.events import RevisionApproved, RevisionEvaluated
from shared.lifecycle import InvalidTransition, LifecycleEvent
from shared.pointers import Ledger, fold, pointer_at

EPILOG = """\
For each adapter (or the one named), the revision active in the environment at that moment,
since when, the canary beside it, and the evidence: the RevisionApproved of that revision in
that environment (approvers, actor, manifest and report digests) and its RevisionEvaluated
(report digest, metrics). The time needs a timezone (Z or +HH:MM).

examples:
  adapterctl audit at --time 2025-03-14T09:00:00Z --environment production
  adapterctl audit at --time 2025-03-14T10:00:00+01:00 --environment staging \\
      --adapter support-summarizer --json"""


def parse_time(text: str) -> datetime:
    """An ISO-8601 moment with its timezone; a bare local time would be a guess."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time; write e.g. 2025-03-14T09:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no timezone; add one, e.g. {text}Z for UTC or {text}+01:00"
        )
    return value


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "at",
        parents=[common],
        help="which revision served in an environment at a time, and its approval",
        description="Which revision of each adapter was active (and canary) in an environment "
        "at a moment, who approved it and on what evidence.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--time",
        required=True,
        type=parse_time,
        metavar="ISO-8601",
        help="the moment asked about, e.g. 2026-12-01T09:30:00Z",
    )
    parser.add_argument("--environment", required=True, metavar="ENV", help="e.g. production")
    parser.add_argument("--adapter", help="only this adapter (default: every adapter in ENV)")
    parser.set_defaults(run=run_at)


def run_at(args: argparse.Namespace, source: Source) -> int:
    report = audit(source)
    events = accepted_events(report)
    try:
        ledger = fold(events)
    except InvalidTransition as exc:
        warn(f"cannot replay {source.topic}: {exc}. Run `adapterctl audit verify` for details.")
        return 1
    if not report.ok:
        warn(
            f"{source.topic} fails verification: run `adapterctl audit verify` before trusting this"
        )
    environment: str = args.environment
    if args.adapter and args.adapter not in report.adapters:
        warn(
            f"adapter {args.adapter!r} has no events in {source.topic}; "
            "`adapterctl audit replay` lists the adapters there"
        )
        return 1
    if args.adapter:
        adapters = [args.adapter]
    else:
        adapters = sorted({adapter for adapter, env in ledger.pointers if env == environment})
    answers = [_answer(ledger, events, a, environment, args.time) for a in adapters]
    if args.json:
        emit(
            to_json(
                {
                    "topic": source.topic,
                    "environment": environment,
                    "time": args.time,
                    "verified": report.ok,
                    "adapters": answers,
                }
            )
        )
    else:
        emit(f"{environment} at {moment(args.time)} ({source.topic})")
        for answer in answers:
            emit(f"\n{answer['adapter']}\n{fields(_lines(answer))}")
        if not answers:
            emit(f"\nno adapter has ever had a revision in {environment!r}")
    # Nothing active nor canary then is 1, as `adapterctl --help` promises.
    served = any(a["active"] or a["canary"] for a in answers)
    return 0 if report.ok and served else 1


def _answer(
    ledger: Ledger, events: Sequence[LifecycleEvent], adapter: str, env: str, t: datetime
) -> dict[str, Any]:
    pointer = pointer_at(ledger, adapter, env, t)
    answer: dict[str, Any] = {"adapter": adapter, "active": None, "canary": None}
    answer["rollback_target"] = pointer.rollback_target if pointer else None
    if pointer and pointer.active:
        since = _active_since(ledger, adapter, env, t)
        answer["active"] = {
            "revision": pointer.active,
            "since": since,
            **_evidence(events, adapter, pointer.active, env, t),
        }
    if pointer and pointer.canary:
        answer["canary"] = {
            "revision": pointer.canary,
            "traffic_percent": pointer.canary_percent,
            "tenants": list(pointer.canary_tenants),
            **_evidence(events, adapter, pointer.canary, env, t),
        }
    return answer


def _active_since(ledger: Ledger, adapter: str, env: str, t: datetime) -> datetime | None:
    """When the active revision at `t` last became active there."""
    current: str | None = None
    since: datetime | None = None
    for change in ledger.history:
        ours = change.adapter == adapter and change.environment == env
        if ours and change.occurred_at <= t and change.pointer.active != current:
            current, since = change.pointer.active, change.occurred_at
    return since


def _evidence(
    events: Iterable[LifecycleEvent], adapter: str, revision: str, env: str, t: datetime
) -> dict[str, Any]:
    """The last approval and evaluation of `revision` in `env` at or before `t`."""
    approval: RevisionApproved | None = None
    evaluation: RevisionEvaluated | None = None
    for event in events:
        e = event.envelope
        if (e.adapter, e.revision, e.environment) != (adapter, revision, env) or e.occurred_at > t:
            continue
        if isinstance(event, RevisionApproved):
            approval = event
        elif isinstance(event, RevisionEvaluated):
            evaluation = event
    return {
        "approval": None
        if approval is None
        else {
            "event_id": approval.envelope.event_id,
            "approved_at": approval.envelope.occurred_at,
            "actor": approval.envelope.actor,
            "approvers": approval.approvers,
            "manifest_digest": approval.manifest_digest,
            "report_digest": approval.report_digest,
            "comment": approval.comment,
            "key_id": approval.key_id,
            "signature": approval.signature,
        },
        "evaluation": None
        if evaluation is None
        else {
            "event_id": evaluation.envelope.event_id,
            "evaluated_at": evaluation.envelope.occurred_at,
            "report_digest": evaluation.report_digest,
            "report_uri": evaluation.report_uri,
            "suite_digest": evaluation.suite_digest,
            "baseline_revision": evaluation.baseline_revision,
            "backend": evaluation.backend,
            "metrics": evaluation.metrics,
        },
        "approval_matches_evaluation": (
            approval is not None
            and evaluation is not None
            and approval.report_digest == evaluation.report_digest
        ),
    }


def _lines(answer: dict[str, Any]) -> list[tuple[str, object]]:
    active, canary = answer["active"], answer["canary"]
    if active is None:
        lines: list[tuple[str, object]] = [("active", "(none)")]
    else:
        lines = [("active", active["revision"]), ("active since", moment(active["since"]))]
        lines += _evidence_lines(active)
    if canary is None:
        lines.append(("canary", "(none)"))
    else:
        tenants = ", ".join(canary["tenants"]) or "all"
        share = f"{canary['revision']} at {canary['traffic_percent']}% (tenants: {tenants})"
        lines += [("canary", share), *(("canary " + k, v) for k, v in _evidence_lines(canary))]
    lines.append(("rollback target", answer["rollback_target"]))
    return lines


def _evidence_lines(served: dict[str, Any]) -> list[tuple[str, object]]:
    approval, evaluation = served["approval"], served["evaluation"]
    lines: list[tuple[str, object]] = []
    if approval is None:
        lines.append(("approved by", "NO APPROVAL in the log for this revision here"))
    else:
        actor = approval["actor"]
        lines += [
            (
                "approved by",
                f"{actor.principal} ({actor.role}) at {moment(approval['approved_at'])}",
            ),
            ("approvers", ", ".join(approval["approvers"])),
            ("approval event", approval["event_id"]),
            ("manifest digest", approval["manifest_digest"]),
            ("report digest", approval["report_digest"]),
        ]
    if evaluation is None:
        lines.append(("evaluation", "NO EVALUATION in the log for this revision here"))
    else:
        lines += [
            (
                "evaluated",
                f"{moment(evaluation['evaluated_at'])} on {evaluation['backend']}, "
                f"report {evaluation['report_digest']}",
            ),
            ("metrics", "; ".join(map(_metric, evaluation["metrics"]))),
        ]
    if (
        approval is not None
        and evaluation is not None
        and not served["approval_matches_evaluation"]
    ):
        lines.append(("WARNING", "the approval names a different report than the evaluation"))
    return lines


def _metric(metric: Any) -> str:
    against = "" if metric.baseline is None else f" vs {metric.baseline}"
    rule = f" ({metric.threshold})" if metric.threshold else ""
    return f"{metric.name} {metric.value}{against}{rule} {'pass' if metric.passed else 'FAIL'}"
