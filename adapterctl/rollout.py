"""`adapterctl promote|expand|rollback|abort|rollout` and `adapterctl env replicas|analysis`.

Operator commands (promote, expand, rollback, abort) are asked of the activator's HTTP API
(`--activator-url`) with an operator's or admin's bearer token (`--token`,
`$ADAPTERCTL_TOKEN`): the activator issues them to the commands topic with the token's
principal as their actor (nobody else may write that topic), carries them out and records
an answer per command id, which these commands wait for (`--no-wait` to leave at once).
`env replicas|analysis` change the activator's own settings through the same API, as the
token's principal. What the activator holds (replicas, analysis settings, canaries,
answers) is read from that API too, never from its tables; the registry's pointers and
revisions are read from the registry.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from typing import Any

import asyncpg

from adapterctl.commands import (
    add_token_option,
    add_wait_options,
    change,
    get,
    issue,
)
from adapterctl.output import emit, fields, to_json, warn
from adapterctl.revisions import resolve, resolved
from adapterctl.rollout_view import canary_table, edited_replicas, render_status
from adapterctl.source import CliError, CliRefusal, Source, with_registry
from adapterctl.watch import INTERRUPTED, poll_answer, wait_with_heartbeat, watch_status
from shared.codec import Codec
from shared.registry.store import PostgresRegistry

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
ANALYSIS_HELP = {  # unset options keep the environment's current value
    "step_interval_s": "seconds each canary step is observed before it may advance",
    "min_samples": "requests the canary must serve in a step before it is judged",
    "max_error_rate": "the canary's error rate above which it rolls back",
    "error_rate_margin": "how far the canary's error rate may exceed the stable's",
    "max_p95_ratio": "the canary's p95 latency over the stable's above which it rolls back",
    "min_p95_delta_ms": "p95 differences below this many ms never count as a regression",
    "max_p95_ms": "an absolute p95 ceiling in ms",
    "auto_advance": "true: healthy steps advance by themselves; false: `adapterctl expand`",
    "auto_rollout": "true: an approval starts the rollout; false: wait for `adapterctl promote`",
}
EPILOG = """\
examples:
  adapterctl promote support-summarizer sha256:ab12 --environment production --canary 10
  adapterctl expand support-summarizer --environment production --percent 50
  adapterctl rollback support-summarizer --environment production [--to sha256:9f3e]
  adapterctl abort support-summarizer --environment production
  adapterctl rollout status support-summarizer
  adapterctl rollout status support-summarizer --environment production --watch --interval 5
  adapterctl rollout list --environment production
  adapterctl env replicas production http://10.0.0.5:8000 http://10.0.0.6:8000
  adapterctl env replicas production --add http://10.0.0.7:8000 --remove http://10.0.0.5:8000
  adapterctl env analysis production --min-samples 200 --step-interval-s 300

Every command here but `rollout status|list` and showing settings needs an operator's or
admin's token (ADAPTERCTL_TOKEN, or --token): the activator acts as its principal, whatever
else the request says. `env replicas ENV URL...` sets the whole list (the URLs not named
stop serving ENV); `--add URL` / `--remove URL` change the list as it stands. While a
command waits for the activator, a line on stderr says so every few seconds; Ctrl-C stops
waiting, never the command: a command issued stays queued and is carried out (or refused,
if it no longer applies) when the activator takes it.

exit status: 0 done, 1 refused or failed (the reason is printed), no answer in time, or
(`status --watch`) the canary rolled back; 130 interrupted"""


def _registry(pool: asyncpg.Pool) -> PostgresRegistry:
    """The registry's reads, on the command's pool (the registry owns revisions and pointers)."""
    return PostgresRegistry(pool, Codec.from_env())


async def current_canary(pool: asyncpg.Pool, adapter: str, environment: str) -> str:
    canary = (await _registry(pool).pointer(adapter, environment)).canary
    if canary is None:
        raise CliRefusal(f"{adapter} has no canary in {environment}")
    return str(canary)


def answer_to(args: argparse.Namespace, command_id: str, url: str) -> dict[str, Any] | None:
    """The service's answer to a sent command, with a heartbeat on stderr while none has
    come; None (said on stderr) when none came in time."""
    answer = wait_with_heartbeat(
        lambda: poll_answer(url, command_id), command_id, args.wait_s, warn
    )
    if answer is None:
        warn(
            f"no answer from {url} within {args.wait_s:g} s; command {command_id} "
            f"stays on {args.commands_topic} and is carried out when the service runs"
        )
    return answer


def still_queued(args: argparse.Namespace, command_id: str) -> str:
    """What happens to a command whose wait was interrupted: the honest truth. The commands
    topic has no withdrawal, and the activator has no queue of its own to take it from."""
    where = f"{args.adapter} --environment {args.environment}"
    return (
        f"stopped waiting; command {command_id} is not cancelled: it stays queued on "
        f"{args.commands_topic}, and nothing can withdraw it. The activator carries it out "
        "when it takes it, checked against the state then (refused if it no longer applies). "
        f"Its answer: `adapterctl rollout status {where}` or GET "
        f"{args.activator_url.rstrip('/')}/outcomes/{command_id}. To undo it once carried "
        f"out: `adapterctl abort {where}` (a canary) or `adapterctl rollback {where}`."
    )


def sent(args: argparse.Namespace, command_id: str) -> int:
    """What `--no-wait` prints: the command's id."""
    emit(to_json({"command_id": command_id}) if args.json else command_id)
    return 0


async def command_body(args: argparse.Namespace, pool: asyncpg.Pool) -> dict[str, Any]:
    """What the activator's `POST /commands/<name>` takes: full revision ids, resolved here
    from a unique prefix (or the current canary) in the registry."""
    body: dict[str, Any] = {
        "adapter": args.adapter,
        "environment": args.environment,
        "reason": args.reason,
    }
    if args.command_name == "promote":
        percent = 100 if args.activate else args.canary
        revision = await resolve(pool, args.adapter, args.revision)
        return body | {"revision": revision, "canary_percent": percent, "tenants": args.tenant}
    if args.command_name == "rollback":
        target = await resolve(pool, args.adapter, args.to) if args.to else None
        return body | {"to_revision": target}
    revision = args.revision or await current_canary(pool, args.adapter, args.environment)
    body["revision"] = await resolve(pool, args.adapter, revision)
    if args.command_name == "expand":
        body["traffic_percent"] = args.percent
    return body


def run_command(args: argparse.Namespace, source: Source) -> int:
    body = with_registry(source, lambda pool: command_body(args, pool))
    url = f"{args.activator_url.rstrip('/')}/commands/{args.command_name}"
    command_id = issue(url, body, args.token)
    if not args.wait:
        return sent(args, command_id)
    try:
        answer = answer_to(args, command_id, args.activator_url)
    except KeyboardInterrupt:
        warn(still_queued(args, command_id))
        return INTERRUPTED
    if answer is None:
        return 1
    if args.json:
        emit(to_json(answer))
    elif answer["outcome"] == "committed":
        emit(f"{args.command_name}: {answer['detail']}")
    else:
        warn(f"{args.command_name} {answer['outcome']}: {answer['detail']}")
    return 0 if answer["outcome"] == "committed" else 1


def _changed(args: argparse.Namespace, setting: str, body: dict[str, Any]) -> int | None:
    """Ask the activator to change an environment's setting as the token's principal: None
    once committed, else the exit status."""
    url = f"{args.activator_url.rstrip('/')}/environments/{args.name}/{setting}"
    answer = change("PUT", url, body, args.token)
    if answer["outcome"] != "committed":
        warn(f"{answer['action']} {answer['outcome']}: {answer['detail']}")
        return 1
    return None


def run_replicas(args: argparse.Namespace, source: Source) -> int:
    """Show the environment's replicas; with URLs (or --clear), set the list to exactly them;
    with --add/--remove, change the list as it stands."""
    url = f"{args.activator_url.rstrip('/')}/environments/{args.name}/replicas"
    if sum(map(bool, (args.urls, args.clear, args.add or args.remove))) > 1:
        raise CliError("give replica URLs, --clear, or --add/--remove: one of them")
    urls = list(args.urls)
    if args.add or args.remove:
        try:
            urls = edited_replicas(get(url)["replicas"], args.add, args.remove)
        except ValueError as exc:
            raise CliRefusal(str(exc)) from exc
    if urls or args.clear or args.add or args.remove:
        status = _changed(args, "replicas", {"urls": urls})
        if status is not None:
            return status
    listed = get(url)["replicas"]
    emit(to_json(listed) if args.json else "\n".join(listed) or f"{args.name} has no replicas")
    return 0


def run_analysis(args: argparse.Namespace, source: Source) -> int:
    """Show the environment's canary analysis settings; with options, change those first."""
    given = {k: str(getattr(args, k)) for k in ANALYSIS_OPTIONS if getattr(args, k) is not None}
    if given:
        status = _changed(args, "analysis", {"settings": given})
        if status is not None:
            return status
    url = f"{args.activator_url.rstrip('/')}/environments/{args.name}/analysis"
    settings = get(url)["settings"]
    emit(to_json(settings) if args.json else fields(sorted(settings.items())) or "(defaults)")
    return 0


def fetch_status(args: argparse.Namespace, source: Source) -> dict[str, Any]:
    """The adapter's pointers (the registry's) and its canaries and answers (the activator's)."""

    async def read_pointers(pool: asyncpg.Pool) -> list[dict[str, Any]]:
        pointers = await _registry(pool).pointers(args.adapter)
        return [
            {"adapter": adapter, "environment": environment, **dataclasses.asdict(pointer)}
            for (adapter, environment), pointer in pointers.items()
            if args.environment in (None, environment)
        ]

    pointers = with_registry(source, read_pointers)
    query = f"?environment={args.environment}" if args.environment else ""
    state = get(f"{args.activator_url.rstrip('/')}/rollouts/{args.adapter}{query}")
    return {"pointers": pointers, "canaries": state["canaries"], "outcomes": state["outcomes"]}


def run_status(args: argparse.Namespace, source: Source) -> int:
    follow = None
    if args.revision:
        if not (args.watch and args.environment):
            raise CliError("--revision follows a revision: give it with --watch and --environment")
        follow = (args.environment, resolved(source, args.adapter, args.revision))
    if args.watch:
        return watch_status(
            lambda: fetch_status(args, source),
            render_status,
            sys.stdout,
            interval_s=args.interval,
            tty=sys.stdout.isatty(),
            follow=follow,
        )
    state = fetch_status(args, source)
    emit(to_json(state) if args.json else render_status(state))
    return 0


def run_list(args: argparse.Namespace, source: Source) -> int:
    """Every canary across adapters (in one environment), with its progress."""
    query = f"?environment={args.environment}" if args.environment else ""
    canaries = get(f"{args.activator_url.rstrip('/')}/canaries{query}")["canaries"]
    emit(to_json(canaries) if args.json else canary_table(canaries))
    return 0


def _env_commands(groups: Any) -> Any:
    """The `env` group's subcommands (registered by the catalogue module), to extend them."""
    env = groups.choices["env"]
    return next(a for a in env._actions if isinstance(a, argparse._SubParsersAction))


def register(
    groups: Any,
    common: argparse.ArgumentParser,
    *,
    commands_topic: str,
    activator_url: str,
    token: str,
) -> None:
    fmt = argparse.RawDescriptionHelpFormatter
    activator = argparse.ArgumentParser(add_help=False)
    activator.add_argument(
        "--activator-url",
        default=activator_url,
        metavar="URL",
        help="the activator's HTTP API (default: $ACTIVATOR_URL or %(default)s)",
    )
    activator.set_defaults(commands_topic=commands_topic)
    operator = argparse.ArgumentParser(add_help=False, parents=[common, activator])
    operator.add_argument("adapter", help="the adapter's name")
    operator.add_argument(
        "--environment", required=True, metavar="ENV", help="where the rollout happens"
    )
    operator.add_argument(
        "--reason", default="", help="why, recorded on the log (default: none given)"
    )
    add_token_option(operator, token)
    add_wait_options(operator)
    operator.set_defaults(run=run_command)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = groups.add_parser(
            name, parents=[operator], help=text, epilog=EPILOG, formatter_class=fmt
        )
        parser.set_defaults(command_name=name)
        return parser

    promote = command("promote", "roll an approved revision out (canary or at once)")
    promote.add_argument("revision", help="the revision id or a unique prefix")
    share = promote.add_mutually_exclusive_group()
    share.add_argument(
        "--canary",
        type=int,
        default=0,
        metavar="PERCENT",
        help="the first canary share (default: 0, the environment's first step)",
    )
    share.add_argument("--activate", action="store_true", help="take every request at once")
    promote.add_argument("--tenant", action="append", default=[], help="a canary tenant")
    expand = command("expand", "give the canary a larger share (100 activates it)")
    expand.add_argument(
        "--percent", type=int, required=True, help="the canary's new share of traffic"
    )
    expand.add_argument("--revision", help="the canary (default: the current one)")
    rollback = command("rollback", "stop the canary, or restore the rollback target")
    rollback.add_argument("--to", help="restore this retained revision instead")
    abort = command("abort", "roll the canary back")
    abort.add_argument("--revision", help="the canary (default: the current one)")

    rollout = groups.add_parser("rollout", help="show rollouts", epilog=EPILOG, formatter_class=fmt)
    rollout_cmds = rollout.add_subparsers(dest="command", metavar="COMMAND", required=True)
    status = rollout_cmds.add_parser(
        "status",
        parents=[common, activator],
        help="pointers, canary, answers",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    status.add_argument("adapter", help="the adapter's name")
    status.add_argument(
        "--environment", metavar="ENV", help="only this one (default: every environment)"
    )
    status.add_argument(
        "--watch", action="store_true", help="redraw until the rollout ends (or Ctrl-C)"
    )
    status.add_argument(
        "--revision",
        metavar="REVISION",
        help="with --watch: follow this revision (digest or prefix) from before its rollout "
        "begins until it is active (exit 0) or rolled back (exit 1)",
    )
    status.add_argument(
        "--interval",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="between redraws (default: %(default)s)",
    )
    status.set_defaults(run=run_status)
    listing = rollout_cmds.add_parser(
        "list",
        parents=[common, activator],
        help="every canary: step, samples, limits, next step",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    listing.add_argument(
        "--environment", metavar="ENV", help="only this one (default: every environment)"
    )
    listing.set_defaults(run=run_list)

    env_cmds = _env_commands(groups)
    changes = argparse.ArgumentParser(add_help=False, parents=[common, activator])
    add_token_option(changes, token)
    replicas = env_cmds.add_parser(
        "replicas",
        parents=[changes],
        help="set (the whole list), change (--add/--remove) or show replicas",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    replicas.add_argument("name", help="the environment")
    replicas.add_argument(
        "urls", nargs="*", metavar="URL", help="the whole new list (none: show the list)"
    )
    replicas.add_argument("--clear", action="store_true", help="remove every replica")
    replicas.add_argument(
        "--add", action="append", default=[], metavar="URL", help="add a replica (repeatable)"
    )
    replicas.add_argument(
        "--remove", action="append", default=[], metavar="URL", help="remove a replica"
    )
    replicas.set_defaults(run=run_replicas)
    analysis = env_cmds.add_parser(
        "analysis",
        parents=[changes],
        help="canary analysis settings",
        epilog=EPILOG,
        formatter_class=fmt,
    )
    analysis.add_argument("name", help="the environment")
    for key, kind in ANALYSIS_OPTIONS.items():
        analysis.add_argument(
            "--" + key.replace("_", "-"), dest=key, type=kind, help=ANALYSIS_HELP[key]
        )
    analysis.set_defaults(run=run_analysis)
