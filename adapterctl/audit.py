"""`adapterctl audit`: verify the lifecycle log, replay it, and ask what served when."""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from adapterctl import evidence, kit
from adapterctl.output import emit, fields, short, table, to_json, warn
from adapterctl.settings import CtlSettings
from adapterctl.source import (
    CliError,
    Source,
    accepted_events,
    audit,
    checkpoint_documents,
    with_registry,
)
from shared.audit import AuditReport, Checker, Position, Problem, verify
from shared.lifecycle import InvalidTransition
from shared.logseal import (
    Anchoring,
    anchor,
    anchored_heads,
    event_signature_checker,
    follow_checkpoints,
    retired_keys,
)
from shared.pointers import EnvironmentPointer, fold
from shared.reconcile import disagreements
from shared.registry import reads
from shared.signing import SigningKeyError, keyring, load_public_key, signature_checker

GROUP_EPILOG = """\
examples:
  adapterctl audit verify
  adapterctl audit replay --json
  adapterctl audit at --time 2025-03-14T09:00:00Z --environment production"""

VERIFY_EPILOG = """\
Checks, per adapter: seq starts at 1 and rises by one; every hash recomputes and names the
previous one; every transition is legal; all events share one partition under the adapter's
key. Exact duplicates (a relay republishing after a crash) are counted, not failed.
Every event must carry the registry's signature (the relay's, by a --log-key or a key a
checkpoint rotated to), and the signed checkpoints in cold storage must chain and agree
with the log: a forged event (log_signature_missing/invalid), a rewritten history
(checkpoint_mismatch) and a dropped tail (truncated) are each named. Events past the
newest checkpoint are reported as not yet anchored. --unsigned checks the chain alone.
With --public-key, every RevisionApproved / RevisionDenied must also carry a valid Ed25519
signature by one of the keys given (signature_invalid, signature_unknown_key otherwise).
With --against-registry, every disagreement between the log and the registry
(DATABASE_URL) is reported (registry_disagrees).

exit status: 0 the log verifies, 1 it has problems, 2 usage or connection error

examples:
  adapterctl audit verify
  adapterctl audit verify --topic adapters.lifecycle.v1 --json | jq '.problems[0]'
  adapterctl audit verify --log-key var/registry/log.key.pub --against-registry
  adapterctl audit verify --public-key var/approval/signing.key.pub"""

REPLAY_EPILOG = """\
Rebuilds every revision's state and every environment's pointer from the log alone.
exit status: 0 replayed a verified log, 1 the log fails verification (state still shown
where it could be rebuilt), 2 usage or connection error

examples:
  adapterctl audit replay
  adapterctl audit replay --json | jq '.pointers[] | select(.environment == "production")'"""


def register(groups: Any, common: argparse.ArgumentParser, ctl: CtlSettings | None = None) -> None:
    """`audit replay`, `audit verify`, `audit at` under the top-level parser's `groups`."""
    group = groups.add_parser(
        "audit",
        help="replay and verify the lifecycle log",
        description="Replay and verify the lifecycle log (the audit trail) straight from Kafka.",
        epilog=GROUP_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    raw = argparse.RawDescriptionHelpFormatter
    replay = commands.add_parser(
        "replay",
        parents=[common],
        help="rebuild every revision's state and environment pointer",
        description="Rebuild every revision's state and every environment's current pointer.",
        epilog=REPLAY_EPILOG,
        formatter_class=raw,
    )
    replay.set_defaults(run=run_replay)
    verify = commands.add_parser(
        "verify",
        parents=[common],
        help="prove the log is intact, in order and legal",
        description="Verify the hash chain, order, partitioning and legality of the log.",
        epilog=VERIFY_EPILOG,
        formatter_class=raw,
    )
    verify.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="a trusted approval signing key (PEM; repeatable): check decision signatures",
    )
    ctl = ctl or CtlSettings.from_env({})
    verify.add_argument(
        "--log-key",
        action="append",
        default=[k for k in ctl.log_public_keys.split(":") if k],
        metavar="FILE",
        help="the log's public key (PEM; repeatable; default: $LOG_PUBLIC_KEYS): the registry "
        "signs every event and checkpoint with it",
    )
    verify.add_argument(
        "--checkpoints",
        default=ctl.log_checkpoints,
        metavar="DIR",
        help="cold storage holding `checkpoints/<topic>/` (default: $LOG_CHECKPOINTS or "
        "%(default)s)",
    )
    verify.add_argument(
        "--copy-of",
        default="",
        metavar="TOPIC",
        help="the topic read is a copy (a mirror, an export) of this log: its checkpoints "
        "name the original (default: the topic read is the original)",
    )
    verify.add_argument(
        "--every-signature",
        action="store_true",
        help="check each event's own signature even where a checkpoint already proves it "
        "(slower; by default only events past the newest checkpoint need theirs)",
    )
    verify.add_argument(
        "--unsigned",
        action="store_true",
        help="check the hash chain only, without signatures or checkpoints (a forged event "
        "with recomputed hashes then passes)",
    )
    verify.add_argument(
        "--trust-bundle-keys",
        action="store_true",
        help="with --bundle: also trust the keys the bundle carries (only when the bundle "
        "came over a channel you trust; otherwise pass the owner's keys with --log-key)",
    )
    verify.add_argument(
        "--against-registry",
        action="store_true",
        help="also report every disagreement between the log and the registry (DATABASE_URL)",
    )
    verify.set_defaults(run=run_verify)
    evidence.register(commands, common)
    kit.register(commands, common, ctl.log_checkpoints)


def _public_keys(files: list[str], option: str) -> list[Ed25519PublicKey]:
    """The PEM public keys in `files`, or a CliError naming the option and the file."""
    keys = []
    for name in files:
        try:
            keys.append(load_public_key(Path(name).read_bytes(), name))
        except (OSError, SigningKeyError) as exc:
            raise CliError(f"{option} {name}: {exc}") from exc
    return keys


def _bundle_keys(keys: Iterable[tuple[str, bytes]]) -> list[Ed25519PublicKey]:
    found = []
    for name, pem in keys:
        try:
            found.append(load_public_key(pem, name))
        except SigningKeyError as exc:
            raise CliError(f"--trust-bundle-keys: {name}: {exc}") from exc
    return found


def _damaged(path: str, why: str) -> Problem:
    return Problem(Position(path, 0, 0), "bundle_damaged", f"{path}: {why}")


def run_verify(args: argparse.Namespace, source: Source) -> int:
    bundle = source.bundle
    approval_keys = _public_keys(args.public_key, "--public-key")
    log_keys = _public_keys(args.log_key, "--log-key")
    if bundle is not None and args.trust_bundle_keys:
        approval_keys += _bundle_keys(bundle.approval_keys)
        log_keys += _bundle_keys(bundle.log_keys)
    checkers: list[Checker] = [signature_checker(approval_keys)] if approval_keys else []
    anchoring: Anchoring | None = None
    entries = source.entries()
    if not args.unsigned:
        if not log_keys:
            raise CliError(
                "no log key to check signatures with: pass --log-key FILE (the relay's "
                "LOG_SIGNING_KEY + .pub, var/registry/log.key.pub by default) or set "
                "LOG_PUBLIC_KEYS; --unsigned checks the hash chain alone"
            )
        trusted = keyring(log_keys)
        log = args.copy_of or source.topic
        documents = (
            list(bundle.checkpoints)
            if bundle is not None
            else checkpoint_documents(args.checkpoints, log)
        )
        _, valid, ring = follow_checkpoints(log, documents, trusted)
        checkers.append(
            event_signature_checker(
                ring,
                anchored_heads(valid),
                every=args.every_signature,
                retired=retired_keys(valid),
            )
        )
        report = verify(entries, checkers)
        anchoring = anchor(log, report.accepted, documents, trusted)
        report = _with(report, anchoring.problems)
    else:
        report = verify(entries, checkers)
    if bundle is not None:
        report = _with(report, [_damaged(path, why) for path, why in bundle.damaged])
    if args.against_registry:
        report = _with(report, _registry_problems(source, report))
    if args.json:
        emit(to_json(_verify_json(report, source.topic, anchoring)))
        return 0 if report.ok else 1
    summary = (
        f"{report.events} events from {len(report.adapters)} adapters, "
        f"{report.duplicates} duplicates skipped"
    )
    if report.ok:
        signed = "; every decision signed by a trusted key" if args.public_key else ""
        agreed = "; the registry agrees" if args.against_registry else ""
        emit(
            f"OK  {source.topic}: {summary}; every chain intact, every transition legal"
            f"{signed}{agreed}"
        )
        emit(_anchoring_line(anchoring))
        if not args.public_key:
            emit(
                "approval decisions' signatures NOT checked: pass --public-key FILE (the "
                "approval service's APPROVAL_SIGNING_KEY + .pub) to check them"
            )
        return 0
    first = report.first_problem
    assert first is not None
    emit(f"FAILED  {source.topic}: {len(report.problems)} problems in {summary}\n")
    emit("First problem:")
    emit(_problem_fields(first) + "\n")
    emit(f"All problems ({len(report.problems)}), in log order:")
    rows = [
        (str(p.position), p.code, p.adapter, p.seq, p.event_type, p.event_id)
        for p in report.problems
    ]
    headers = ("POSITION", "CODE", "ADAPTER", "SEQ", "EVENT", "EVENT ID")
    emit(table(headers, rows, notes=[p.message for p in report.problems]))
    return 1


def _with(report: AuditReport, more: list[Problem]) -> AuditReport:
    return dataclasses.replace(
        report, problems=sorted([*report.problems, *more], key=lambda p: p.position)
    )


def _anchoring_line(anchoring: Anchoring | None) -> str:
    if anchoring is None:
        return "UNSIGNED: signatures and checkpoints not checked (--unsigned)"
    if not anchoring.checkpoints:
        return (
            f"every event signed by the registry; no checkpoint yet: all "
            f"{len(anchoring.unanchored)} events are unanchored"
        )
    return (
        f"every event signed by the registry; {anchoring.checkpoints} checkpoints verified, "
        f"the newest is #{anchoring.latest}; {len(anchoring.unanchored)} events after it are "
        "not yet anchored"
    )


def _registry_problems(source: Source, report: AuditReport) -> list[Problem]:
    try:
        ledger = fold(accepted_events(report))
    except InvalidTransition as exc:
        raise CliError(
            f"cannot compare with the registry: the log does not replay ({exc})"
        ) from exc

    async def read(pool: asyncpg.Pool) -> list[Problem]:
        async with pool.acquire() as conn:
            heads = await reads.chain_heads(conn)
            records = await reads.revisions(conn, (), None)
            pointers = await reads.pointers(conn, None)
        statuses = {(r.adapter, r.revision): r.status for r in records}
        return disagreements(source.topic, report.accepted, ledger, heads, statuses, pointers)

    return with_registry(source, read)


def _problem_fields(problem: Problem) -> str:
    at = problem.position
    return fields(
        [
            ("where", f"{at}  (topic {at.topic}, partition {at.partition}, offset {at.offset})"),
            ("event", f"{problem.event_type or 'record'} {problem.event_id}".strip()),
            ("adapter", problem.adapter),
            ("seq", problem.seq),
            ("problem", problem.code),
            ("detail", problem.message),
        ]
    )


def _verify_json(
    report: AuditReport, topic: str, anchoring: Anchoring | None = None
) -> dict[str, Any]:
    signed: dict[str, Any] = {"signatures_checked": anchoring is not None}
    if anchoring is not None:
        signed |= {
            "checkpoints": anchoring.checkpoints,
            "latest_checkpoint": anchoring.latest,
            "unanchored": [
                {
                    "adapter": e.event.envelope.adapter,
                    "seq": e.event.envelope.seq,
                    "position": str(e.position),
                }
                for e in anchoring.unanchored
                if e.event is not None
            ],
        }
    return {
        "topic": topic,
        "ok": report.ok,
        "events": report.events,
        "duplicates": report.duplicates,
        "adapters": list(report.adapters),
        "first_problem": report.first_problem,
        "problems": report.problems,
        **signed,
    }


def run_replay(args: argparse.Namespace, source: Source) -> int:
    report = audit(source)
    try:
        ledger = fold(accepted_events(report))
    except InvalidTransition as exc:
        warn(f"cannot replay {source.topic}: {exc}. Run `adapterctl audit verify` for details.")
        return 1
    if not report.ok:
        warn(
            f"{source.topic} fails verification ({len(report.problems)} problems): this state "
            "is not trustworthy; run `adapterctl audit verify` for details"
        )
    revisions: list[dict[str, Any]] = [
        {
            "adapter": adapter,
            "revision": revision,
            "state": status.revision_track,
            "environments": dict(sorted(status.environment_tracks.items())),
        }
        for (adapter, revision), status in sorted(ledger.statuses.items())
    ]
    pointers = [
        {"adapter": adapter, "environment": environment, **_pointer_json(pointer)}
        for (adapter, environment), pointer in sorted(ledger.pointers.items())
    ]
    if args.json:
        replayed = {**_verify_json(report, source.topic), "problems": len(report.problems)}
        emit(to_json({**replayed, "revisions": revisions, "pointers": pointers}))
        return 0 if report.ok else 1
    verdict = "verified" if report.ok else f"FAILS verification ({len(report.problems)} problems)"
    emit(
        f"{source.topic}: {report.events} events, {len(report.adapters)} adapters, "
        f"{len(revisions)} revisions; log {verdict}\n"
    )
    emit("Revisions:")
    emit(
        table(
            ("ADAPTER", "REVISION", "STATE", "ENVIRONMENTS"),
            [
                (r["adapter"], short(r["revision"]), r["state"], _tracks(r["environments"]))
                for r in revisions
            ],
        )
        + "\n"
    )
    emit("Environment pointers:")
    emit(
        table(
            ("ADAPTER", "ENVIRONMENT", "ACTIVE", "CANARY", "SHARE", "ROLLBACK TARGET"),
            [
                (
                    p["adapter"],
                    p["environment"],
                    short(p["active"]),
                    short(p["canary"]),
                    f"{p['canary_percent']}%" if p["canary"] else None,
                    short(p["rollback_target"]),
                )
                for p in pointers
            ],
        )
    )
    return 0 if report.ok else 1


def _pointer_json(pointer: EnvironmentPointer) -> dict[str, Any]:
    return {
        "active": pointer.active,
        "canary": pointer.canary,
        "canary_percent": pointer.canary_percent,
        "canary_tenants": list(pointer.canary_tenants),
        "rollback_target": pointer.rollback_target,
    }


def _tracks(tracks: dict[str, Any]) -> str:
    return ", ".join(f"{env}={state}" for env, state in tracks.items())
