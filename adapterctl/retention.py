"""`adapterctl retention ...`: retention policies per environment and adapter, and legal holds.

The archiver owns both. `set`, `hold` and `release` go to its HTTP API (`--archiver-url`)
with an admin's bearer token (`--token`, `$ADAPTERCTL_TOKEN`): it acts as the token's
principal and answers at once. `show` reads the same API, never its tables."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from adapterctl.commands import add_token_option, change, get
from adapterctl.output import emit, moment, table, to_json
from adapterctl.revisions import resolved
from adapterctl.source import CliError, CliRefusal, Source
from shared.retention import RetentionPolicy

EPILOG = """\
The archiver keeps, per environment: the active and canary revisions and the rollback target,
the newest N superseded revisions (--keep-superseded), every revision younger than
--min-age-days, and every revision under a legal hold. Everything else expires: its
manifest and hashes are archived to cold storage and verified, then its weights deleted.
An environment without a policy expires nothing; an adapter's own policy overrides the
environment's default. `set`, `hold` and `release` need an admin's token
(ADAPTERCTL_TOKEN); the principal recorded is the token's.

examples:
  adapterctl retention set --environment production --keep-superseded 3 --min-age-days 30
  adapterctl retention set --environment production --adapter support-summarizer \\
      --keep-superseded 5 --min-age-days 90
  adapterctl retention hold sha256:ab12... --adapter support-summarizer --reason "case 4711"
  adapterctl retention release sha256:ab12... --adapter support-summarizer
  adapterctl retention show"""


def _carried_out(
    args: argparse.Namespace, method: str, path: str, body: dict[str, Any], shown: object = None
) -> int:
    """Ask the archiver for the change and say its answer (`--json`: `shown`, or the answer);
    the exit status."""
    answer = change(method, f"{args.archiver_url.rstrip('/')}{path}", body, args.token)
    if answer["outcome"] != "committed":
        raise CliRefusal(answer["detail"])
    emit(to_json(answer if shown is None else shown) if args.json else answer["detail"])
    return 0


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
    body = {
        "environment": policy.environment,
        "adapter": policy.adapter,
        "keep_superseded": policy.keep_superseded,
        "min_age_days": policy.min_age_days,
    }
    return _carried_out(args, "PUT", "/retention", body, shown=policy)


def run_show(args: argparse.Namespace, source: Source) -> int:
    base = args.archiver_url.rstrip("/")
    query = f"?environment={args.environment}" if args.environment else ""
    policies = get(f"{base}/retention{query}")["policies"]
    holds = get(f"{base}/holds")["holds"]
    if args.json:
        emit(to_json({"policies": policies, "holds": holds}))
        return 0
    emit("Retention policies:")
    rows = [
        (
            p["environment"],
            p["adapter"] or "(default)",
            p["keep_superseded"],
            p["min_age_days"],
            p["set_by"],
            _moment(p["updated_at"]),
        )
        for p in policies
    ]
    emit(table(("ENVIRONMENT", "ADAPTER", "KEEP", "MIN AGE (DAYS)", "SET BY", "UPDATED"), rows))
    emit("\nLegal holds in force:")
    hold_rows = [
        (h["adapter"], h["revision"], h["placed_by"], _moment(h["placed_at"]), h["reason"])
        for h in holds
    ]
    emit(table(("ADAPTER", "REVISION", "BY", "SINCE", "REASON"), hold_rows))
    return 0


def _moment(text: str | None) -> str:
    return moment(datetime.fromisoformat(text) if text else None)


def _hold_body(args: argparse.Namespace) -> dict[str, Any]:
    return {"adapter": args.adapter, "revision": args.revision, "reason": args.reason}


def run_hold(args: argparse.Namespace, source: Source) -> int:
    args.revision = resolved(source, args.adapter, args.revision)
    return _carried_out(args, "POST", "/holds", _hold_body(args))


def run_release(args: argparse.Namespace, source: Source) -> int:
    args.revision = resolved(source, args.adapter, args.revision)
    return _carried_out(args, "POST", "/holds/release", _hold_body(args))


def register(
    groups: Any, common: argparse.ArgumentParser, *, archiver_url: str, token: str
) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    archiver = argparse.ArgumentParser(add_help=False, parents=[common])
    archiver.add_argument(
        "--archiver-url",
        default=archiver_url,
        metavar="URL",
        help="the archiver's HTTP API (default: $ARCHIVER_URL or %(default)s)",
    )
    changes = argparse.ArgumentParser(add_help=False, parents=[archiver])
    add_token_option(changes, token)
    group = groups.add_parser(
        "retention", help="retention policies and legal holds", epilog=EPILOG, formatter_class=fmt
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    put = commands.add_parser(
        "set",
        parents=[changes],
        help="set an environment's (or one adapter's) policy",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    put.add_argument(
        "--environment", required=True, metavar="ENV", help="the environment it applies in"
    )
    put.add_argument("--adapter", default=None, help="only this adapter (default: every adapter)")
    put.add_argument(
        "--keep-superseded",
        type=int,
        required=True,
        metavar="N",
        help="how many superseded revisions to keep, newest first",
    )
    put.add_argument(
        "--min-age-days",
        type=int,
        required=True,
        metavar="DAYS",
        help="nothing younger than this expires",
    )
    put.set_defaults(run=run_set)
    show = commands.add_parser(
        "show",
        parents=[archiver],
        help="list policies and legal holds in force",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    show.add_argument(
        "--environment", default=None, metavar="ENV", help="only this one (default: all)"
    )
    show.set_defaults(run=run_show)
    hold = commands.add_parser(
        "hold",
        parents=[changes],
        help="place a legal hold: the revision never expires",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    hold.add_argument("revision", metavar="REVISION", help="its digest or a unique prefix")
    hold.add_argument("--adapter", required=True, help="the adapter the revision belongs to")
    hold.add_argument("--reason", required=True, help="why, e.g. a case number")
    hold.set_defaults(run=run_hold)
    release = commands.add_parser(
        "release",
        parents=[changes],
        help="release a legal hold",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    release.add_argument("revision", metavar="REVISION", help="its digest or a unique prefix")
    release.add_argument("--adapter", required=True, help="the adapter the revision belongs to")
    release.add_argument("--reason", default="", help="why it is released (default: none given)")
    release.set_defaults(run=run_release)
