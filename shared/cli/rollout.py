"""`adapterctl promote|expand|rollback|abort|rollout` and `adapterctl env replicas|analysis`.

Operator commands are published to the commands topic as Avro, keyed by adapter, with the
operator's principal and role in their header; the activator carries them out and records
an answer per command id, which these commands wait for (`--no-wait` to leave at once).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from confluent_kafka import KafkaException

from shared.cli.output import emit, fields, moment, table, to_json, warn
from shared.cli.source import CliError, CliRefusal, Source, with_registry
from shared.codec import Codec
from shared.events import (
    AbortCanary,
    Actor,
    CommandHeader,
    ExpandCanary,
    PromoteRevision,
    RollbackRevision,
)
from shared.kafka.producer import make_producer, publish

ANALYSIS_OPTIONS = {  # the activator's AnalysisPolicy fields an environment may set
    "step_interval_s": float,
    "min_samples": int,
    "max_error_rate": float,
    "error_rate_margin": float,
    "max_p95_ratio": float,
    "min_p95_delta_ms": float,
    "max_p95_ms": float,
    "auto_advance": str,
    "auto_rollout": str,
}
EPILOG = """\
examples:
  adapterctl promote support-summarizer sha256:ab12 --environment production --canary 10
  adapterctl expand support-summarizer --environment production --percent 50
  adapterctl rollback support-summarizer --environment production [--to sha256:9f3e]
  adapterctl abort support-summarizer --environment production
  adapterctl rollout status support-summarizer
  adapterctl env replicas production http://10.0.0.5:8000 http://10.0.0.6:8000
  adapterctl env analysis production --min-samples 200 --step-interval-s 300

exit status: 0 done, 1 refused or failed (the reason is printed) or no answer in time"""


async def resolve(pool: asyncpg.Pool, adapter: str, text: str) -> str:
    """The full revision id from a unique prefix (with or without `sha256:`)."""
    prefix = text if text.startswith("sha256:") else "sha256:" + text
    rows = await pool.fetch(
        "SELECT revision FROM revisions WHERE adapter = $1 AND starts_with(revision, $2)",
        adapter,
        prefix,
    )
    if len(rows) != 1:
        found = "no revision" if not rows else f"{len(rows)} revisions"
        raise CliRefusal(f"{found} of {adapter} start with {text!r}: see `adapterctl history`")
    return str(rows[0]["revision"])


async def current_canary(pool: asyncpg.Pool, adapter: str, environment: str) -> str:
    canary = await pool.fetchval(
        "SELECT canary FROM pointers WHERE adapter = $1 AND environment = $2", adapter, environment
    )
    if canary is None:
        raise CliRefusal(f"{adapter} has no canary in {environment}")
    return str(canary)


async def wait_for_answer(pool: asyncpg.Pool, command_id: str, timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        row = await pool.fetchrow(
            "SELECT * FROM activator_outcomes WHERE cause_id = $1", command_id
        )
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    return None


def run_command(args: argparse.Namespace, source: Source) -> int:
    header = CommandHeader(
        command_id=str(uuid.uuid4()),
        adapter=args.adapter,
        environment=args.environment,
        actor=Actor(principal=args.operator, role=args.role),
        issued_at=datetime.now(UTC),
        correlation_id=str(uuid.uuid4()),
        reason=args.reason,
    )

    async def work(pool: asyncpg.Pool) -> Any:
        command: Any
        if args.command_name == "promote":
            percent = 100 if args.activate else args.canary
            command = PromoteRevision(
                header=header,
                revision=await resolve(pool, args.adapter, args.revision),
                canary_percent=percent,
                tenants=args.tenant,
            )
        elif args.command_name == "expand":
            revision = args.revision or await current_canary(pool, args.adapter, args.environment)
            revision = await resolve(pool, args.adapter, revision)
            command = ExpandCanary(header=header, revision=revision, traffic_percent=args.percent)
        elif args.command_name == "rollback":
            target = await resolve(pool, args.adapter, args.to) if args.to else None
            command = RollbackRevision(header=header, to_revision=target)
        else:
            revision = args.revision or await current_canary(pool, args.adapter, args.environment)
            command = AbortCanary(
                header=header, revision=await resolve(pool, args.adapter, revision)
            )
        producer = make_producer(args.bootstrap)
        value = Codec.from_env().encode(command)
        try:
            await asyncio.to_thread(
                publish, producer, args.commands_topic, key=args.adapter.encode(), value=value
            )
        except (KafkaException, TimeoutError) as exc:
            raise CliError(
                f"cannot publish to {args.commands_topic} at {args.bootstrap}: {exc}"
            ) from exc
        if not args.wait:
            return None
        return await wait_for_answer(pool, header.command_id, args.wait_s)

    answer = with_registry(source, work)
    if not args.wait:
        emit(to_json({"command_id": header.command_id}) if args.json else header.command_id)
        return 0
    if answer is None:
        warn(
            f"no answer from the activator within {args.wait_s:g} s; command {header.command_id} "
            f"stays on {args.commands_topic} and is carried out when the activator runs"
        )
        return 1
    if args.json:
        emit(to_json(dict(answer)))
    elif answer["outcome"] == "committed":
        emit(f"{args.command_name}: {answer['detail']}")
    else:
        warn(f"{args.command_name} {answer['outcome']}: {answer['detail']}")
    return 0 if answer["outcome"] == "committed" else 1


def run_replicas(args: argparse.Namespace, source: Source) -> int:
    async def work(pool: asyncpg.Pool) -> list[str]:
        if args.urls or args.clear:
            async with pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "DELETE FROM activator_replicas WHERE environment = $1", args.name
                )
                for position, url in enumerate(args.urls):
                    await conn.execute(
                        "INSERT INTO activator_replicas (url, environment, position)"
                        " VALUES ($1, $2, $3) ON CONFLICT (url) DO UPDATE"
                        " SET environment = $2, position = $3, updated_at = now()",
                        url.rstrip("/"),
                        args.name,
                        position,
                    )
        rows = await pool.fetch(
            "SELECT url FROM activator_replicas WHERE environment = $1 ORDER BY position",
            args.name,
        )
        return [r["url"] for r in rows]

    urls = with_registry(source, work)
    emit(to_json(urls) if args.json else "\n".join(urls) or f"{args.name} has no replicas")
    return 0


def run_analysis(args: argparse.Namespace, source: Source) -> int:
    given = {k: getattr(args, k) for k in ANALYSIS_OPTIONS if getattr(args, k) is not None}

    async def work(pool: asyncpg.Pool) -> Any:
        if given:
            await pool.execute(
                "INSERT INTO activator_analysis (environment, settings, set_by) VALUES ($1, $2, $3)"
                " ON CONFLICT (environment) DO UPDATE SET settings ="
                " activator_analysis.settings || $2, set_by = $3, updated_at = now()",
                args.name,
                given,
                args.by,
            )
        return await pool.fetchval(
            "SELECT settings FROM activator_analysis WHERE environment = $1", args.name
        )

    settings = with_registry(source, work) or {}
    emit(to_json(settings) if args.json else fields(sorted(settings.items())) or "(defaults)")
    return 0


def run_status(args: argparse.Namespace, source: Source) -> int:
    async def work(pool: asyncpg.Pool) -> tuple[list[Any], list[Any], list[Any]]:
        where = "adapter = $1 AND ($2::text IS NULL OR environment = $2)"
        pointers = await pool.fetch(
            f"SELECT * FROM pointers WHERE {where}", args.adapter, args.environment
        )
        canaries = await pool.fetch(
            f"SELECT * FROM activator_canaries WHERE {where}", args.adapter, args.environment
        )
        outcomes = await pool.fetch(
            f"SELECT * FROM activator_outcomes WHERE {where} ORDER BY decided_at DESC LIMIT 10",
            args.adapter,
            args.environment,
        )
        return pointers, canaries, outcomes

    pointers, canaries, outcomes = with_registry(source, work)
    if args.json:
        emit(
            to_json(
                {
                    k: [dict(r) for r in v]
                    for k, v in (
                        ("pointers", pointers),
                        ("canaries", canaries),
                        ("outcomes", outcomes),
                    )
                }
            )
        )
        return 0
    rows = [
        (
            p["environment"],
            p["active"],
            p["canary"],
            f"{p['canary_percent']}%",
            p["rollback_target"],
        )
        for p in pointers
    ]
    emit(table(("ENVIRONMENT", "ACTIVE", "CANARY", "SHARE", "ROLLBACK TARGET"), rows))
    for c in canaries:
        decision = c["last_decision"] or {}
        emit(
            f"\ncanary in {c['environment']} since {moment(c['step_started_at'])}: "
            f"{decision.get('decision', 'not judged yet')} ({decision.get('reason', '-')})"
        )
    emit("\nRecent answers:")
    emit(
        table(
            ("WHEN", "ENVIRONMENT", "ACTION", "OUTCOME", "BY", "DETAIL"),
            [
                (
                    moment(o["decided_at"]),
                    o["environment"],
                    o["action"],
                    o["outcome"],
                    o["principal"],
                    o["detail"],
                )
                for o in outcomes
            ],
        )
    )
    return 0


def _env_commands(groups: Any) -> Any:
    """The `env` group's subcommands (registered by the catalogue module), to extend them."""
    env = groups.choices["env"]
    return next(a for a in env._actions if isinstance(a, argparse._SubParsersAction))


def register(groups: Any, common: argparse.ArgumentParser, *, commands_topic: str) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    operator = argparse.ArgumentParser(add_help=False, parents=[common])
    operator.add_argument("adapter")
    operator.add_argument("--environment", required=True)
    operator.add_argument("--reason", default="")
    operator.add_argument("--as", dest="operator", default=getpass.getuser(), help="who asks")
    operator.add_argument("--role", default="operator", help="the role asked in (operator)")
    operator.add_argument("--no-wait", dest="wait", action="store_false")
    operator.add_argument("--wait-s", type=float, default=60.0, help="how long to wait")
    operator.set_defaults(run=run_command, commands_topic=commands_topic)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = groups.add_parser(
            name, parents=[operator], help=text, epilog=EPILOG, formatter_class=fmt
        )
        parser.set_defaults(command_name=name)
        return parser

    promote = command("promote", "roll an approved revision out (canary or at once)")
    promote.add_argument("revision", help="the revision id or a unique prefix")
    share = promote.add_mutually_exclusive_group()
    share.add_argument("--canary", type=int, default=0, metavar="PERCENT")
    share.add_argument("--activate", action="store_true", help="take every request at once")
    promote.add_argument("--tenant", action="append", default=[], help="a canary tenant")
    expand = command("expand", "give the canary a larger share (100 activates it)")
    expand.add_argument("--percent", type=int, required=True)
    expand.add_argument("--revision", help="the canary (default: the current one)")
    rollback = command("rollback", "stop the canary, or restore the rollback target")
    rollback.add_argument("--to", help="restore this retained revision instead")
    abort = command("abort", "roll the canary back")
    abort.add_argument("--revision", help="the canary (default: the current one)")

    rollout = groups.add_parser("rollout", help="show rollouts", epilog=EPILOG, formatter_class=fmt)
    rollout_cmds = rollout.add_subparsers(dest="command", metavar="COMMAND", required=True)
    status = rollout_cmds.add_parser(
        "status",
        parents=[common],
        help="pointers, canary, answers",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    status.add_argument("adapter")
    status.add_argument("--environment")
    status.set_defaults(run=run_status)

    env_cmds = _env_commands(groups)
    replicas = env_cmds.add_parser(
        "replicas",
        parents=[common],
        help="set or show replicas",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    replicas.add_argument("name")
    replicas.add_argument("urls", nargs="*", metavar="URL")
    replicas.add_argument("--clear", action="store_true", help="remove every replica")
    replicas.set_defaults(run=run_replicas)
    analysis = env_cmds.add_parser(
        "analysis",
        parents=[common],
        help="canary analysis settings",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    analysis.add_argument("name")
    for key, kind in ANALYSIS_OPTIONS.items():
        analysis.add_argument("--" + key.replace("_", "-"), dest=key, type=kind)
    analysis.add_argument("--by", default=getpass.getuser())
    analysis.set_defaults(run=run_analysis)
