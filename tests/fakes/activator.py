"""The activator's surroundings in memory: its own tables (`InMemoryActivatorStore`, the
`ActivatorStore` port), serving replicas (`FakeReplica`, the `ServingTarget` port, grouped
in `FakeReplicas`), and `activator_deps`, which wires them with the real `Fleet`.

The replicas are what lies outside the activator's bounded context (vLLM); the fleet,
rollouts and canary analysis driving them are the code under test. The artifact store is
the real one on a folder: `store_revision` puts a one-file revision and its manifest there.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.activator.deps import ActivatorDeps
from services.activator.fleet import Fleet
from services.activator.plans import Outcome, RequestAction
from services.activator.ports import BaseCard, CanaryStep, TargetError
from shared.artifacts import LocalArtifactStore
from shared.backoff import Backoff
from shared.catalogue import EnvironmentSpec
from shared.contract import ServingContract
from shared.events import (
    RevisionApproved,
    RevisionEvaluated,
    RevisionRegistered,
    RevisionValidated,
)
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.pointers import EnvironmentPointer
from shared.registry.memory import InMemoryCatalogue, InMemoryRegistry
from shared.registry.port import Catalogue, Registry, Step
from shared.registry.principals import Role, Roles
from tests.factories import TEST_DECISION_KEYS, lifecycle
from tests.fakes.approval import persons_of

CONTRACT = ServingContract(
    base_model_id="tiny",
    base_model_revision="sha256:" + "b" * 64,
    tokenizer_hash="sha256:" + "c" * 64,
    chat_template_hash="sha256:" + "d" * 64,
    quantization_profile="bf16",
)


def environment_spec(name: str, **fields: Any) -> EnvironmentSpec:
    """An environment serving `CONTRACT`, with `fields` overriding its policy."""
    return EnvironmentSpec(
        name=name,
        base_model_id=CONTRACT.base_model_id,
        base_model_revision=CONTRACT.base_model_revision,
        tokenizer_hash=CONTRACT.tokenizer_hash,
        chat_template_hash=CONTRACT.chat_template_hash,
        quantization_profile=CONTRACT.quantization_profile,
        **fields,
    )


def store_revision(
    artifacts: LocalArtifactStore, adapter: str, content: bytes, **fields: Any
) -> tuple[Manifest, str]:
    """A one-file revision trained for `CONTRACT` stored with its manifest; (manifest, digest)."""
    stored = artifacts.put_stream(io.BytesIO(content), max_bytes=1 << 20)
    entry = FileEntry(path="adapter_model.safetensors", sha256=stored.sha256, size=stored.size)
    values: dict[str, Any] = {
        "adapter": adapter,
        "revision": revision_digest([entry]),
        "files": (entry,),
        "base_model_id": CONTRACT.base_model_id,
        "base_model_revision": CONTRACT.base_model_revision,
        "tokenizer_revision": "tok-1",
        "tokenizer_hash": CONTRACT.tokenizer_hash,
        "chat_template_hash": CONTRACT.chat_template_hash,
        "quantization_profile": CONTRACT.quantization_profile,
        "submitter": "trainer-alice",
        "trained_event_id": "trained-" + adapter,
        "source_uri": f"file:///incoming/{adapter}",
    }
    manifest = Manifest(**(values | fields))
    return manifest, artifacts.put_manifest(manifest)


@dataclass
class Served:
    """What a replica served under one lora name: cumulative, as Prometheus counters are."""

    requests: int = 0
    errors: int = 0
    buckets: dict[float, int] = field(default_factory=dict)  # le -> cumulative count


LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, float("inf"))


class FakeReplica:
    """One vLLM replica (`ServingTarget`): loads, unloads, lists, routing and metrics."""

    def __init__(self, url: str, contract: ServingContract | None = CONTRACT) -> None:
        self.url = url
        self.contract = contract
        self.loaded: dict[str, str] = {}  # lora name -> path
        self.load_failures: list[TargetError] = []  # raised by the next loads, in turn
        self.down = False  # no answer at all to anything: down or restarting
        self.silent = False  # answers loads with success without loading
        self.routing: Mapping[str, Any] | None = None
        self.served: dict[str, Served] = {}
        self.loads: list[str] = []  # every load asked for, in order
        self.unloads: list[str] = []
        self.base_card: BaseCard | None = None  # what `GET /v1/models` says of its base
        self.unserved: set[str] = set()  # listed, but a request under the name answers 404
        self.takes_routing = True
        self.probes: list[str] = []

    def _answer(self) -> None:
        if self.down:
            raise TargetError(self.url, "connection refused", retryable=True, unreachable=True)

    def fail_loads(self, message: str = "out of LoRA slots", *, retryable: bool = False) -> None:
        """Refuse every load from now on (a non-retryable one fails at once)."""
        self.load_failures = [TargetError(self.url, message, retryable=retryable)] * 100

    def serve(self, lora: str, requests: int, errors: int = 0, seconds: float = 0.08) -> None:
        """Count `requests` served under `lora` (`errors` of them failed), each in `seconds`."""
        served = self.served.setdefault(lora, Served())
        served.requests += requests
        served.errors += errors
        for le in LATENCY_BUCKETS:
            if seconds <= le:
                served.buckets[le] = served.buckets.get(le, 0) + requests

    async def describe(self) -> ServingContract | None:
        """The contract it runs."""
        self._answer()
        return self.contract

    async def models(self) -> Mapping[str, str]:
        """Every lora it serves now."""
        self._answer()
        return dict(self.loaded)

    async def base(self) -> BaseCard | None:
        """Its base card."""
        self._answer()
        return self.base_card

    async def probe(self, lora_name: str) -> int:
        """One request under the name: 200, or a 404 for a name it does not serve."""
        self._answer()
        self.probes.append(lora_name)
        if lora_name not in self.loaded or lora_name in self.unserved:
            raise TargetError(self.url, f"The model `{lora_name}` does not exist.", retryable=True)
        return 200

    async def routes_traffic(self) -> bool:
        """Whether it takes routing (stock vLLM does not)."""
        self._answer()
        return self.takes_routing

    async def load(self, lora_name: str, lora_path: str) -> None:
        """Load a lora, or raise the next queued failure."""
        self._answer()
        self.loads.append(lora_name)
        if self.load_failures:
            raise self.load_failures.pop(0)
        if not self.silent:
            self.loaded[lora_name] = lora_path

    async def unload(self, lora_name: str) -> None:
        """Unload a lora; one not loaded is not an error."""
        self._answer()
        self.unloads.append(lora_name)
        self.loaded.pop(lora_name, None)

    async def push_routing(self, document: Mapping[str, Any]) -> bool:
        """Take the routing document (unless it takes none)."""
        self._answer()
        if not self.takes_routing:
            return False
        self.routing = document
        return True

    async def metrics(self) -> str:
        """The Prometheus text the canary analysis scrapes."""
        self._answer()
        lines = []
        for lora, s in sorted(self.served.items()):
            lines.append(f'lora_requests_total{{lora="{lora}"}} {s.requests}')
            lines.append(f'lora_request_errors_total{{lora="{lora}"}} {s.errors}')
            for le in LATENCY_BUCKETS:
                bound = "+Inf" if le == float("inf") else str(le)
                count = sum(n for b, n in s.buckets.items() if b <= le)
                lines.append(
                    f'lora_request_duration_seconds_bucket{{lora="{lora}",le="{bound}"}} {count}'
                )
        return "\n".join(lines) + "\n"


class FakeReplicas:
    """The replicas by URL; `target` is the `make_target` the `Fleet` takes."""

    def __init__(self, urls: Sequence[str] = ()) -> None:
        self.by_url = {url: FakeReplica(url) for url in urls}

    def target(self, url: str, environment: str = "") -> FakeReplica:
        """The replica at `url`, made on first use."""
        return self.by_url.setdefault(url, FakeReplica(url))

    def __iter__(self) -> Any:
        return iter(self.by_url.values())

    def listing(self) -> list[set[str]]:
        """What each replica lists, in URL order."""
        return [set(r.loaded) for _, r in sorted(self.by_url.items())]


class InMemoryActivatorStore:
    """Implements `ActivatorStore` in memory; pointers are read from `registry`."""

    def __init__(
        self,
        registry: Registry,
        replicas: Mapping[str, Sequence[str]] | None = None,
        analysis: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.registry = registry
        self.replica_urls = {env: list(urls) for env, urls in (replicas or {}).items()}
        self.analysis = {env: dict(s) for env, s in (analysis or {}).items()}
        self.approvals: dict[tuple[str, str, str], list[str]] = {}
        self.steps: dict[tuple[str, str], CanaryStep] = {}
        self.decisions: dict[tuple[str, str], dict[str, str]] = {}
        self.outcomes: dict[str, dict[str, Any]] = {}
        self._seen: dict[str, dict[str, EnvironmentPointer]] = {}
        self._generation = 0

    async def replicas(self, environment: str) -> list[str]:
        """The environment's replica URLs."""
        return list(self.replica_urls.get(environment, []))

    async def served_environments(self) -> list[str]:
        """Every environment with a replica, sorted."""
        return sorted(env for env, urls in self.replica_urls.items() if urls)

    async def analysis_settings(self, environment: str) -> dict[str, Any]:
        """The environment's analysis thresholds."""
        return dict(self.analysis.get(environment, {}))

    async def set_replicas(self, environment: str, urls: Sequence[str]) -> list[str]:
        """Make `urls` the environment's replicas (a URL serves one environment)."""
        for listed in self.replica_urls.values():
            listed[:] = [url for url in listed if url not in urls]
        self.replica_urls[environment] = list(urls)
        return list(urls)

    async def merge_analysis_settings(
        self, environment: str, settings: Mapping[str, object], set_by: str
    ) -> dict[str, Any]:
        """Set the given thresholds, keeping the others."""
        self.analysis.setdefault(environment, {}).update(settings)
        return dict(self.analysis[environment])

    async def canary_rows(
        self, adapter: str | None, environment: str | None
    ) -> list[dict[str, Any]]:
        """The observed canary steps of `adapter` (or every one), by environment and adapter."""
        return [
            {**dataclasses.asdict(step), "last_decision": self.decisions.get(key)}
            for key, step in sorted(self.steps.items(), key=lambda kv: (kv[0][1], kv[0][0]))
            if adapter in (None, key[0]) and environment in (None, key[1])
        ]

    async def recent_outcomes(
        self, adapter: str, environment: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The newest answers about `adapter`."""
        found = [
            o
            for o in self.outcomes.values()
            if o["adapter"] == adapter and environment in (None, o["environment"])
        ]
        return sorted(found, key=lambda o: o["decided_at"], reverse=True)[:limit]

    async def record_approvers(
        self,
        adapter: str,
        revision: str,
        environment: str,
        approvers: Sequence[str],
        event_id: str,
        approved_at: datetime,
    ) -> None:
        """Who approved; the first record stands."""
        self.approvals.setdefault((adapter, revision, environment), list(approvers))

    async def approvers(self, adapter: str, revision: str, environment: str) -> list[str]:
        """Who approved the revision in the environment."""
        return list(self.approvals.get((adapter, revision, environment), []))

    async def pointers(self, environment: str) -> tuple[dict[str, EnvironmentPointer], int]:
        """The registry's pointers in `environment`; the generation rises when they move."""
        found = {
            adapter: pointer
            for (adapter, env), pointer in (await self.registry.pointers()).items()
            if env == environment
        }
        if self._seen.get(environment) != found:
            self._seen[environment] = found
            self._generation += 1
        return found, self._generation

    async def canaries(self) -> list[tuple[str, str, EnvironmentPointer]]:
        """Every running canary, by environment and adapter."""
        pointers = await self.registry.pointers()
        return sorted(
            ((adapter, env, p) for (adapter, env), p in pointers.items() if p.canary),
            key=lambda row: (row[1], row[0]),
        )

    async def canary_step(self, adapter: str, environment: str) -> CanaryStep | None:
        """The canary step being observed."""
        return self.steps.get((adapter, environment))

    async def start_canary_step(self, step: CanaryStep) -> None:
        """Observe `step` from now, forgetting the last decision."""
        self.steps[(step.adapter, step.environment)] = step
        self.decisions.pop((step.adapter, step.environment), None)

    async def note_decision(
        self, adapter: str, environment: str, evidence: Mapping[str, str]
    ) -> None:
        """Keep the analysis' last decision beside the step."""
        if (adapter, environment) in self.steps:
            self.decisions[(adapter, environment)] = dict(evidence)

    async def end_canary(self, adapter: str, environment: str) -> None:
        """Stop observing the adapter's canary."""
        self.steps.pop((adapter, environment), None)
        self.decisions.pop((adapter, environment), None)

    async def outcome(self, cause_id: str) -> Mapping[str, Any] | None:
        """The answer recorded for a request."""
        return self.outcomes.get(cause_id)

    async def record_outcome(
        self,
        *,
        cause_id: str,
        adapter: str,
        environment: str,
        action: RequestAction,
        revision: str | None,
        outcome: Outcome,
        detail: str,
        principal: str,
        evidence: Mapping[str, str] | None = None,
    ) -> None:
        """Record the answer to a request; the first stands."""
        self.outcomes.setdefault(
            cause_id,
            {
                "cause_id": cause_id,
                "adapter": adapter,
                "environment": environment,
                "action": action,
                "revision": revision,
                "outcome": outcome,
                "detail": detail,
                "evidence": dict(evidence or {}),
                "principal": principal,
                "decided_at": datetime.now(UTC),
            },
        )


async def _no_sleep(_seconds: float) -> None:
    """Retries in unit tests do not wait."""
    await asyncio.sleep(0)


# The principals the unit tests' commands name, with the roles they hold.
PRINCIPALS: Mapping[str, Collection[str]] = {
    "alice@example.internal": {"operator"},
    "op-carol": {"operator"},
    "olivia": {"operator", "admin"},
    "trainer-alice": {"trainer"},
    "op-bob": {"operator"},
}


# One person, two principals: approver-bob also operates as op-bob.
PERSONS: Mapping[str, str] = {"op-bob": "approver-bob"}


def held_roles(principals: Mapping[str, Collection[str]]) -> Roles:
    """The registry's answer, from a table: the active roles of each principal name."""

    async def roles(name: str) -> frozenset[Role]:
        return frozenset(Role(r) for r in principals.get(name, ()))

    return roles


def activator_deps(
    registry: Registry,
    catalogue: Catalogue,
    store: InMemoryActivatorStore,
    replicas: FakeReplicas,
    artifacts: LocalArtifactStore,
    *,
    clock: Any = None,
    principals: Mapping[str, Collection[str]] | None = None,
) -> ActivatorDeps:
    """The activator's deps on fakes, with the real `Fleet` (retries do not sleep);
    `principals` are the active roles the registry's principals hold (default: `PRINCIPALS`)."""
    fleet = Fleet(
        store, replicas.target, retry=Backoff(attempts=3, first_delay_s=0.0), sleep=_no_sleep
    )
    deps = ActivatorDeps(
        registry=registry,
        catalogue=catalogue,
        store=store,
        artifacts=artifacts,
        fleet=fleet,
        serving_path=lambda manifest: str(artifacts.revision_dir(manifest)),
        roles_of=held_roles(PRINCIPALS if principals is None else principals),
        persons_of=persons_of(PERSONS),
        decision_keys=lambda: TEST_DECISION_KEYS,
    )
    if clock is not None:
        deps.clock = clock
    return deps


class ActivatorWorld:
    """The activator on the in-memory registry, its store, fake replicas and a real artifact
    store under `root`; `approve` brings a revision to approved in the registry."""

    def __init__(
        self,
        root: Path,
        spec: EnvironmentSpec,
        urls: Sequence[str] = ("http://replica-1", "http://replica-2"),
        analysis: Mapping[str, Any] | None = None,
    ) -> None:
        self.environment = spec.name
        self.registry = InMemoryRegistry()
        self.catalogue = InMemoryCatalogue(environments=[spec])
        self.store = InMemoryActivatorStore(
            self.registry, {spec.name: urls}, {spec.name: dict(analysis or {})}
        )
        self.replicas = FakeReplicas(urls)
        self.artifacts = LocalArtifactStore(root)
        self.deps = activator_deps(
            self.registry, self.catalogue, self.store, self.replicas, self.artifacts
        )

    async def approve(
        self,
        adapter: str,
        content: bytes,
        approvers: Sequence[str] = ("approver-bob",),
        serving_contract: str = "",
    ) -> RevisionApproved:
        """Store a revision and commit it registered, validated, evaluated and approved; the
        sealed RevisionApproved (not yet handed to the activator)."""
        manifest, digest = store_revision(self.artifacts, adapter, content)
        revision, env = manifest.revision, self.environment
        events: list[Any] = [
            lifecycle(
                RevisionRegistered,
                adapter,
                revision,
                manifest_digest=digest,
                submitter=manifest.submitter,
            ),
            lifecycle(RevisionValidated, adapter, revision),
            lifecycle(RevisionEvaluated, adapter, revision, env),
            lifecycle(
                RevisionApproved,
                adapter,
                revision,
                env,
                manifest_digest=digest,
                approvers=list(approvers),
                serving_contract=serving_contract,
            ),
        ]
        committed = await self.registry.commit([Step(e) for e in events])
        approved = committed.events[-1]
        assert isinstance(approved, RevisionApproved)
        return approved
