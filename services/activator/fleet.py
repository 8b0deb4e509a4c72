"""The replicas of an environment, driven together: check, load, verify, route, prune, scrape.

Nothing moves traffic until every replica lists the revision and answers a request under its
name: a load endpoint's success is not proof (vLLM once answered 200 for a path that did not
exist), a listing from the process that just answered 200 is barely more, and runtime-loaded
adapters are not shared between replicas, so each one is asked on its own. A replica that
cannot describe its contract (stock vLLM has no `/info`) proves its base through its
`/v1/models` card, or the rollout stops unless the environment opts out.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import structlog
from tenacity import RetryCallState

from services.activator.compat import base_problems, contract_problems
from services.activator.metrics import Counters
from services.activator.metrics_sources import replica_metrics
from services.activator.ports import (
    ActivatorStore,
    BaseCard,
    MetricsSource,
    MetricsUnavailable,
    ServingTarget,
    TargetError,
)
from services.activator.routing import lora_name, routing_document, served_names
from shared.backoff import Backoff
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.manifest import Manifest
from shared.registry.port import Catalogue

log = structlog.get_logger(__name__)
T = TypeVar("T")


LOAD_BACKOFF = Backoff(max_delay_s=3.0)


class RolloutStopped(Exception):
    """The replicas cannot serve the revision; no traffic moved. `evidence` says where."""

    def __init__(self, message: str, evidence: Mapping[str, str]) -> None:
        super().__init__(message)
        self.evidence = dict(evidence)


class ReplicasUnreachable(Exception):
    """A replica gave no answer at all, even after the retries (down, restarting): an outage
    the activator waits out (ADR 0008), not the revision's fault, so nothing is recorded as
    failed and the event is handled again once the replica answers."""


def raise_if_unreachable(errors: Sequence[BaseException]) -> None:
    """ReplicasUnreachable when every error is a replica that could not be reached."""
    if errors and all(isinstance(e, TargetError) and e.unreachable for e in errors):
        raise ReplicasUnreachable("; ".join(str(e) for e in errors))


class Fleet:
    def __init__(
        self,
        store: ActivatorStore,
        make_target: Callable[[str, str], ServingTarget],
        *,
        retry: Backoff = LOAD_BACKOFF,
        routing_dir: Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        catalogue: Catalogue | None = None,
        make_gateway: Callable[[str, str], ServingTarget] | None = None,
        metrics: MetricsSource | None = None,
    ) -> None:
        self.store = store
        self.metrics: MetricsSource = metrics or replica_metrics(self.targets)
        self.make_target = make_target
        self.catalogue = catalogue
        self.make_gateway = make_gateway or make_target
        self.retry = retry
        self.routing_dir = routing_dir
        self.sleep = sleep
        self._targets: dict[tuple[str, str], ServingTarget] = {}
        self._gateways: dict[tuple[str, str], ServingTarget] = {}

    async def targets(self, environment: str) -> list[ServingTarget]:
        """The environment's replicas; `make_target(url, environment)` makes each once (its
        credentials are the environment's)."""
        urls = await self.store.replicas(environment)
        for url in urls:
            if (url, environment) not in self._targets:
                self._targets[url, environment] = self.make_target(url, environment)
        return [self._targets[u, environment] for u in urls]

    async def gateways(self, environment: str) -> list[ServingTarget]:
        """The gateways the catalogue puts in front of the environment's replicas; each is
        driven through its routing endpoints only (`make_gateway(url, environment)`)."""
        spec = await self.catalogue.environment(environment) if self.catalogue else None
        urls = spec.gateways if spec else ()
        for url in urls:
            if (url, environment) not in self._gateways:
                self._gateways[url, environment] = self.make_gateway(url, environment)
        return [self._gateways[u, environment] for u in urls]

    async def _retrying(self, call: Callable[[], Awaitable[T]]) -> T:
        def note(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            url = exc.url if isinstance(exc, TargetError) else None
            log.warning("target_retry", url=url, attempt=state.attempt_number, error=str(exc))

        retrying = self.retry.retrying(
            retry_on=lambda exc: isinstance(exc, TargetError) and exc.retryable,
            sleep=self.sleep,
            before_sleep=note,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def check_contract(
        self, targets: Sequence[ServingTarget], spec: EnvironmentSpec, manifest: Manifest
    ) -> None:
        """RolloutStopped unless the environment and every replica run what the manifest needs."""
        wanted = ServingContract.of_manifest(manifest)
        environment = ServingContract.of_environment(spec)
        problems = contract_problems(wanted, environment, f"environment {spec.name}")
        described = await asyncio.gather(
            *(self._retrying(t.describe) for t in targets), return_exceptions=True
        )
        raise_if_unreachable([f for f in described if isinstance(f, BaseException)])
        stock = [t for t, found in zip(targets, described, strict=True) if found is None]
        cards = await asyncio.gather(
            *(self._retrying(t.base) for t in stock), return_exceptions=True
        )
        raise_if_unreachable([c for c in cards if isinstance(c, BaseException)])
        for target, found in zip(targets, described, strict=True):
            if isinstance(found, BaseException):
                problems.append(f"replica {target.url} cannot describe itself: {found}")
            elif found is not None:
                problems.extend(contract_problems(wanted, found, f"replica {target.url}"))
        for target, card in zip(stock, cards, strict=True):
            if isinstance(card, BaseException):
                problems.append(f"replica {target.url} cannot show its base: {card}")
            else:
                problems.extend(self._unproven_base(target, card, spec))
        if problems:
            raise RolloutStopped(
                "the serving contract does not match: " + "; ".join(problems),
                {"stopped_by": "contract", "problems": " | ".join(problems)},
            )

    @staticmethod
    def _unproven_base(
        target: ServingTarget, card: BaseCard | None, spec: EnvironmentSpec
    ) -> list[str]:
        """Why a replica without `/info` has not proved its base through `/v1/models`: what
        its base card contradicts, and what it leaves unproven unless the environment serves
        on unproven replicas (then logged)."""
        contradicted, unproven = base_problems(card, spec, f"replica {target.url}")
        if unproven and spec.allow_unproven_replica_base:
            log.warning("replica_base_unproven", url=target.url, problems=unproven)
            return contradicted
        return contradicted + unproven

    async def check_routing(self, environment: str, percent: int) -> None:
        """RolloutStopped unless traffic is split by the routing the activator hands out:
        by the environment's gateways when it has any (every one must take routing), else
        by every replica. A canary share nobody applies must never be recorded as applied."""
        gateways = await self.gateways(environment)
        targets = gateways or await self.targets(environment)
        answers = await asyncio.gather(
            *(self._retrying(t.routes_traffic) for t in targets), return_exceptions=True
        )
        raise_if_unreachable([a for a in answers if isinstance(a, BaseException)])
        refusing = [t.url for t, a in zip(targets, answers, strict=True) if a is not True]
        if gateways and refusing:
            urls = ", ".join(refusing)
            raise RolloutStopped(
                f"the gateways of {environment} would not send {percent}% of traffic to the "
                f"canary: {urls} take no routing (GET /v1/routing answered 404; is it a "
                "gateway, or a replica listed as one?)",
                {"stopped_by": "routing", "takes_no_routing": urls},
            )
        if refusing or not targets:
            urls = ", ".join(refusing) or "(no replicas)"
            raise RolloutStopped(
                f"nothing here would send {percent}% of traffic to the canary: {urls} take no "
                "routing (stock vLLM serves exactly the name it is asked for); put a router "
                "that follows the activator's GET /routing in front of them, or activate "
                "without a canary",
                {"stopped_by": "routing", "takes_no_routing": urls},
            )

    async def _load_one(self, target: ServingTarget, name: str, path: str) -> bool:
        """Load unless listed already; True when it was (a warm load)."""
        listed = await self._retrying(target.models)
        if name in listed:
            return True
        await self._retrying(lambda: target.load(name, path))
        return False

    async def prepare(
        self, environment: str, spec: EnvironmentSpec, loads: Sequence[tuple[Manifest, str]]
    ) -> dict[str, str]:
        """Check the contract, load each revision on every replica, and see each one listed."""
        targets = await self.targets(environment)
        evidence = {"replicas": str(len(targets))}
        for manifest, path in loads:
            await self.check_contract(targets, spec, manifest)
            name = lora_name(manifest.adapter, manifest.revision)
            warm = 0
            pending = list(targets)
            for attempt in range(1, self.retry.attempts + 1):
                missing, warm_now = await self._load_and_verify(pending, name, path)
                warm += warm_now if attempt == 1 else 0
                if not missing:
                    break
                if attempt == self.retry.attempts:
                    urls = ", ".join(t.url for t in missing)
                    raise RolloutStopped(
                        f"{name} is not listed by {urls} after loading, or listed but not "
                        "served (a load that answered success without loading, or a probe "
                        "request under the name answered 404): no traffic moved",
                        {"stopped_by": "verify", "lora_name": name, "missing_on": urls},
                    )
                # A replica that restarted between the load and the listing lost it: load
                # again; one that keeps answering success without loading stops the rollout.
                log.warning("load_not_listed", lora_name=name, urls=[t.url for t in missing])
                await self.sleep(self.retry.delay(attempt))
                pending = missing
            evidence[f"loaded.{name}"] = f"{len(targets)} replicas, {warm} already warm"
        return evidence

    async def _load_and_verify(
        self, targets: Sequence[ServingTarget], name: str, path: str
    ) -> tuple[list[ServingTarget], int]:
        """Load `name` where it is not listed; the replicas that still do not list it, and
        how many listed it before any load."""
        results = await asyncio.gather(
            *(self._load_one(t, name, path) for t in targets), return_exceptions=True
        )
        raise_if_unreachable([r for r in results if isinstance(r, BaseException)])
        failed = [
            f"{t.url}: {r}"
            for t, r in zip(targets, results, strict=True)
            if isinstance(r, BaseException)
        ]
        if failed:
            raise RolloutStopped(
                f"{name} did not load on every replica: " + "; ".join(failed),
                {"stopped_by": "load", "lora_name": name, "failures": " | ".join(failed)},
            )
        # A replica that listed the name before any load has proved it; ask the others, then
        # ask each to serve one token under the name (a 404 there: the name is not served).
        cold = [t for t, warm in zip(targets, results, strict=True) if warm is not True]
        listings = await asyncio.gather(
            *(self._retrying(t.models) for t in cold), return_exceptions=True
        )
        missing = [
            t
            for t, listed in zip(cold, listings, strict=True)
            if isinstance(listed, BaseException) or name not in listed
        ]
        listed = [t for t in targets if t not in missing]
        probes = await asyncio.gather(*(t.probe(name) for t in listed), return_exceptions=True)
        raise_if_unreachable([p for p in probes if isinstance(p, BaseException)])
        for target, probed in zip(listed, probes, strict=True):
            if isinstance(probed, BaseException):
                log.warning("probe_unserved", lora_name=name, url=target.url, error=str(probed))
                missing.append(target)
        return missing, sum(1 for r in results if r is True)

    async def publish(
        self, environment: str, targets: Sequence[ServingTarget] | None = None
    ) -> dict[str, Any]:
        """Push the environment's routing to its replicas (or `targets`) and write the export."""
        pointers, generation = await self.store.pointers(environment)
        document = routing_document(
            environment, pointers, generation=generation, generated_at=datetime.now(UTC)
        )
        if targets is None:
            targets = [*await self.targets(environment), *await self.gateways(environment)]

        async def push(target: ServingTarget) -> None:
            try:
                await self._retrying(lambda: target.push_routing(document))
            except TargetError as exc:  # the next reconcile pushes again
                log.error("routing_push_failed", url=target.url, error=str(exc))

        await asyncio.gather(*(push(t) for t in targets))
        self.export(environment, document)
        return document

    def export(self, environment: str, document: Mapping[str, Any]) -> None:
        if self.routing_dir is None:
            return
        self.routing_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.routing_dir, suffix=".tmp")
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp, self.routing_dir / f"{environment}.json")

    async def prune(self, environment: str, adapter: str) -> None:
        """Unload the adapter's revisions that neither serve nor wait as the rollback target."""
        pointers, _ = await self.store.pointers(environment)
        keep = served_names(adapter, pointers[adapter]) if adapter in pointers else set()
        for target in await self.targets(environment):
            try:
                listed = await target.models()
                for name in listed:
                    if name.startswith(f"{adapter}@") and name not in keep:
                        await target.unload(name)
            except TargetError as exc:
                log.warning("prune_failed", url=target.url, error=str(exc))

    async def scrape(self, environment: str) -> dict[str, dict[str, Counters]]:
        """The metrics source's per-lora counters by origin (by default each reachable
        replica's; an unreachable one is left out). A source that cannot be read at all
        gives none, logged: a step's baseline then begins at its next read (`rebase`)."""
        try:
            return await self.metrics.snapshot(environment)
        except MetricsUnavailable as exc:
            log.warning("metrics_unavailable", url=exc.url, error=str(exc))
            return {}
