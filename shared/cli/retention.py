"""`adapterctl retention ...`: retention policies per environment and adapter, and legal holds."""

from __future__ import annotations

import argparse
import getpass
from typing import Any, TypeVar

import asyncpg

from shared.cli.output import emit, moment, table, to_json
from shared.cli.source import CliError, CliRefusal, Source, with_registry
from shared.registry.store import status_from_json
from shared.retention import RetentionPolicy

T = TypeVar("T")

EPILOG = """\
The archiver keeps, per environment: the active and canary revisions and the rollback target,
the newest N superseded revisions (--keep-superseded), every revision younger than
--min-age-days, and every revision under a legal hold. Everything else expires: its
manifest and hashes are archived to cold storage and verified, then its weights deleted.
An environment without a policy expires nothing; an adapter's own policy overrides the
environment's default.

examples:
  adapterctl retention set --environment production --keep-superseded 3 --min-age-days 30
  adapterctl retention set --environment production --adapter support-summarizer \\
      --keep-superseded 5 --min-age-days 90
  adapterctl retention hold sha256:ab12... --adapter support-summarizer --reason "case 4711"
  adapterctl retention release sha256:ab12... --adapter support-summarizer
  adapterctl retention show"""


def run_set(args: argparse.Namespace, source: Source) -> int:
    try:
        policy = RetentionPolicy(
            environment=args.environment,
            adapter=args.adapter or "",
            keep_superseded=args.keep_superseded,
            min_age_days=args.min_age_days,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc

    async def work(pool: asyncpg.Pool) -> None:
        await pool.execute(
            "INSERT INTO retention_policies (environment, adapter, keep_superseded, min_age_days,"
            " set_by) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (environment, adapter) DO UPDATE"
            " SET keep_superseded = $3, min_age_days = $4, set_by = $5, updated_at = now()",
            policy.environment,
            policy.adapter,
            policy.keep_superseded,
            policy.min_age_days,
            args.by,
        )

    with_registry(source, work)
    scope = f"adapter {policy.adapter}" if policy.adapter else "every adapter"
    emit(
        to_json(policy)
        if args.json
        else f"retention in {policy.environment} for {scope}: keep {policy.keep_superseded} "
        f"superseded, nothing younger than {policy.min_age_days} days"
    )
    return 0


def run_show(args: argparse.Namespace, source: Source) -> int:
    async def work(pool: asyncpg.Pool) -> tuple[list[Any], list[Any]]:
        policies = await pool.fetch(
            "SELECT * FROM retention_policies WHERE $1::text IS NULL OR environment = $1"
            " ORDER BY environment, adapter",
            args.environment,
        )
        holds = await pool.fetch(
            "SELECT * FROM legal_holds WHERE released_at IS NULL ORDER BY adapter, placed_at"
        )
        return policies, holds

    policies, holds = with_registry(source, work)
    if args.json:
        emit(to_json({"policies": [dict(p) for p in policies], "holds": [dict(h) for h in holds]}))
        return 0
    emit("Retention policies:")
    rows = [
        (
            p["environment"],
            p["adapter"] or "(default)",
            p["keep_superseded"],
            p["min_age_days"],
            p["set_by"],
            moment(p["updated_at"]),
        )
        for p in policies
    ]
    emit(table(("ENVIRONMENT", "ADAPTER", "KEEP", "MIN AGE (DAYS)", "SET BY", "UPDATED"), rows))
    emit("\nLegal holds in force:")
    hold_rows = [
        (h["adapter"], h["revision"], h["placed_by"], moment(h["placed_at"]), h["reason"])
        for h in holds
    ]
    emit(table(("ADAPTER", "REVISION", "BY", "SINCE", "REASON"), hold_rows))
    return 0


def run_hold(args: argparse.Namespace, source: Source) -> int:
    async def work(pool: asyncpg.Pool) -> str:
        tracks = await pool.fetchval(
            "SELECT tracks FROM revisions WHERE adapter = $1 AND revision = $2",
            args.adapter,
            args.revision,
        )
        if tracks is None:
            raise CliRefusal(f"{args.adapter}@{args.revision} is not a registered revision")
        state = status_from_json(tracks).revision_track
        if state is not None and state.value == "deleted":
            raise CliRefusal(
                f"{args.adapter}@{args.revision} is already deleted: only its archive remains "
                f"(`adapterctl archive show {args.revision} --adapter {args.adapter}`)"
            )
        placed = await pool.fetchval(
            "INSERT INTO legal_holds (adapter, revision, reason, placed_by) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (adapter, revision) WHERE released_at IS NULL DO NOTHING RETURNING id",
            args.adapter,
            args.revision,
            args.reason,
            args.by,
        )
        if placed is None:
            raise CliRefusal(f"{args.adapter}@{args.revision} is already under a legal hold")
        return state.value if state else "unknown"

    state = with_registry(source, work)
    emit(f"legal hold placed on {args.adapter}@{args.revision} ({state}): it will not expire")
    if state in ("expired", "archived"):
        emit("  it has already expired: its weights stay until the hold is released")
    return 0


def run_release(args: argparse.Namespace, source: Source) -> int:
    async def work(pool: asyncpg.Pool) -> int | None:
        released: int | None = await pool.fetchval(
            "UPDATE legal_holds SET released_at = now(), released_by = $3, release_reason = $4"
            " WHERE adapter = $1 AND revision = $2 AND released_at IS NULL RETURNING id",
            args.adapter,
            args.revision,
            args.by,
            args.reason,
        )
        return released

    if with_registry(source, work) is None:
        raise CliRefusal(f"{args.adapter}@{args.revision} is not under a legal hold")
    emit(f"legal hold on {args.adapter}@{args.revision} released; retention applies again")
    return 0


def register(groups: Any, common: argparse.ArgumentParser) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    group = groups.add_parser(
        "retention", help="retention policies and legal holds", epilog=EPILOG, formatter_class=fmt
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    put = commands.add_parser(
        "set",
        parents=[common],
        help="set an environment's (or one adapter's) policy",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    put.add_argument("--environment", required=True, metavar="ENV")
    put.add_argument("--adapter", default=None, help="only this adapter (default: every adapter)")
    put.add_argument("--keep-superseded", type=int, required=True, metavar="N")
    put.add_argument("--min-age-days", type=int, required=True, metavar="DAYS")
    put.add_argument("--by", default=getpass.getuser(), help="who sets it (default: you)")
    put.set_defaults(run=run_set)
    show = commands.add_parser(
        "show",
        parents=[common],
        help="list policies and legal holds in force",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    show.add_argument("--environment", default=None, metavar="ENV")
    show.set_defaults(run=run_show)
    hold = commands.add_parser(
        "hold",
        parents=[common],
        help="place a legal hold: the revision never expires",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    hold.add_argument("revision", metavar="REVISION")
    hold.add_argument("--adapter", required=True)
    hold.add_argument("--reason", required=True, help="why, e.g. a case number")
    hold.add_argument("--by", default=getpass.getuser(), help="who places it (default: you)")
    hold.set_defaults(run=run_hold)
    release = commands.add_parser(
        "release",
        parents=[common],
        help="release a legal hold",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    release.add_argument("revision", metavar="REVISION")
    release.add_argument("--adapter", required=True)
    release.add_argument("--reason", default="", help="why it is released")
    release.add_argument("--by", default=getpass.getuser(), help="who releases it (default: you)")
    release.set_defaults(run=run_release)
