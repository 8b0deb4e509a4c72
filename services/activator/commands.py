"""Operators' environment commands: which replicas serve an environment, and the thresholds
of its canary analysis. Each answer is recorded under the command's id, like a rollout's."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

import structlog

from services.activator.analysis import AnalysisPolicy
from services.activator.deps import ActivatorDeps
from services.activator.plans import OPERATING_ROLES, Outcome, Refused, RequestAction
from shared.events import CommandHeader, SetCanaryAnalysis, SetReplicas
from shared.kafka.dispatch import PermanentError

log = structlog.get_logger(__name__)


def replica_urls(urls: list[str]) -> list[str]:
    """The URLs as stored (no trailing slash), or Refused naming the first bad one."""
    cleaned = [url.rstrip("/") for url in urls]
    for url in cleaned:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise Refused(f"{url!r} is not an http(s) URL of a replica")
    duplicates = sorted({url for url in cleaned if cleaned.count(url) > 1})
    if duplicates:
        raise Refused(f"a replica is named twice: {', '.join(duplicates)}")
    return cleaned


def analysis_settings(
    steps: tuple[int, ...], current: Mapping[str, object], given: Mapping[str, str]
) -> dict[str, object]:
    """The `given` settings as the policy reads them (numbers, flags), or Refused unless,
    with the `current` ones, they make a valid policy for the environment's steps."""
    try:
        policy = AnalysisPolicy.from_settings(steps, {**current, **given})
    except (ValueError, TypeError) as exc:
        raise Refused(f"canary analysis settings refused: {exc}") from exc
    return {key: getattr(policy, key) for key in given}


async def _answer(
    deps: ActivatorDeps,
    header: CommandHeader,
    action: RequestAction,
    outcome: Outcome,
    detail: str,
    evidence: Mapping[str, str] | None = None,
) -> None:
    await deps.store.record_outcome(
        cause_id=header.command_id,
        adapter=header.adapter,
        environment=header.environment,
        action=action,
        revision=None,
        outcome=outcome,
        detail=detail,
        principal=header.actor.principal,
        evidence=evidence,
    )


async def _allowed(deps: ActivatorDeps, header: CommandHeader) -> tuple[int, ...]:
    """The environment's canary steps, once the actor may change it; else Refused."""
    if header.actor.role not in OPERATING_ROLES:
        raise Refused(f"{header.actor.principal} acts as {header.actor.role}, not an operator")
    spec = await deps.catalogue.environment(header.environment)
    if spec is None:
        raise Refused(f"no environment {header.environment!r}: `adapterctl env set` it first")
    return tuple(spec.canary_steps)


async def on_set_replicas(command: SetReplicas, deps: ActivatorDeps) -> None:
    header = command.header
    if await deps.store.outcome(header.command_id) is not None:
        return  # redelivered: answered already
    try:
        await _allowed(deps, header)
        urls = replica_urls(command.urls)
    except Refused as exc:
        await _answer(deps, header, RequestAction.SET_REPLICAS, Outcome.REFUSED, str(exc))
        raise PermanentError(str(exc)) from exc
    stored = await deps.store.set_replicas(header.environment, urls)
    detail = f"{header.environment} is served by {len(stored)} replica(s)"
    log.info("replicas_set", environment=header.environment, replicas=stored)
    evidence = {"replicas": " ".join(stored)}
    await _answer(deps, header, RequestAction.SET_REPLICAS, Outcome.COMMITTED, detail, evidence)


async def on_set_canary_analysis(command: SetCanaryAnalysis, deps: ActivatorDeps) -> None:
    header = command.header
    if await deps.store.outcome(header.command_id) is not None:
        return
    try:
        steps = await _allowed(deps, header)
        current = await deps.store.analysis_settings(header.environment)
        typed = analysis_settings(steps, current, command.settings)
    except Refused as exc:
        await _answer(deps, header, RequestAction.SET_ANALYSIS, Outcome.REFUSED, str(exc))
        raise PermanentError(str(exc)) from exc
    merged = await deps.store.merge_analysis_settings(
        header.environment, typed, header.actor.principal
    )
    log.info("canary_analysis_set", environment=header.environment, settings=merged)
    detail = f"canary analysis of {header.environment}: " + (
        ", ".join(f"{k}={v}" for k, v in sorted(merged.items())) or "defaults"
    )
    await _answer(deps, header, RequestAction.SET_ANALYSIS, Outcome.COMMITTED, detail)
