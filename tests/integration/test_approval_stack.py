"""The approval service on a private stack (its own database and topics on the session's
real Kafka and PostgreSQL), as its own process on a free loopback port: the fixture and
helpers every approval test module shares (each module gets its own stack).

Revisions reach the service the way they will in production: RevisionRegistered,
RevisionValidated and RevisionEvaluated committed through the registry, published by the
relay, read back from the lifecycle topic by the service's consumer. The manifest and the
evaluation report are real blobs in the stack's artifact store.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra import processes
from shared.artifacts import LocalArtifactStore
from shared.catalogue import EnvironmentSpec
from shared.codec import Codec
from shared.events import (
    Actor,
    BaseModelRef,
    Envelope,
    Finding,
    MetricResult,
    RevisionActivated,
    RevisionEvaluated,
    RevisionEvaluationFailed,
    RevisionRegistered,
    RevisionValidated,
)
from shared.manifest import FileEntry, Manifest, revision_digest
from shared.registry.catalogue_store import PostgresCatalogue
from shared.registry.store import PostgresRegistry, Step
from tests.conftest import Infra
from tests.eventually import eventually
from tests.stack import ServiceDied, Stack

STAGING, PRODUCTION = "staging", "production"
SUBMITTER = "trainer-alice"
# name -> roles; trainer-alice also approves, so separation of duties has someone to stop.
PRINCIPALS = {
    SUBMITTER: ("trainer", "approver"),
    "bob": ("approver",),
    "carol": ("approver",),
    "dave": ("approver",),
    "olga": ("operator",),
    "audrey": ("auditor",),
    "adam": ("admin",),
}
ROLES = ("trainer", "approver", "operator", "auditor", "admin")
# one principal per role, for the role matrix
AS_ROLE = {
    "trainer": (SUBMITTER, "trainer"),
    "approver": ("bob", "approver"),
    "operator": ("olga", "operator"),
    "auditor": ("audrey", "auditor"),
    "admin": ("adam", "admin"),
}
METRICS = [
    MetricResult(name="accuracy", value=0.82, baseline=0.74, threshold=">= 0.70", passed=True),
    MetricResult(
        name="latency_p95_ms", value=143.0, baseline=120.0, threshold="<= 180", passed=True
    ),
    MetricResult(name="no_op_rate", value=0.05, baseline=None, threshold="<= 0.20", passed=True),
]
# Items as the evaluator's report writes them (adapters.evaluation_report.v1).
ITEMS = [
    {
        "id": "q1",
        "prompt": [{"role": "user", "content": "Summarise ticket 812"}],
        "base": {"output": "Ticket 812."},
        "baseline": {"output": "Printer jam.", "passed": True},
        "candidate": {
            "output": "Customer reports a paper jam on floor 3; resolved by reseating the tray.",
            "passed": True,
        },
    },
    {
        "id": "q2",
        "prompt": [{"role": "user", "content": "Summarise ticket 815"}],
        "baseline": {"output": "VPN down."},
        "candidate": {"output": "VPN down."},
    },
    {"id": "q3", "prompt": [{"role": "user", "content": "Rate it"}], "candidate": {}},
]
REPORT_METRICS = {
    "candidate": {"accuracy": 0.82, "tokens_per_s": 41.5},
    "baseline": {"accuracy": 0.74, "tokens_per_s": 44.0},
}


PROBLEM = "application/problem+json"
STALE = "sha256:" + "0" * 64  # a digest no evidence has
BASELINE = "sha256:" + "9" * 64  # the baseline `seed` names unless told: no revision has it
RECIPE = {"seed": 7, "dataset_ids": ["tickets-q3"]}
DATA_SCOPE = {"corpora": ["support-tickets"], "filtering_rules": ["pii-scrubbed"]}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """`response` is an RFC 9457 problem of `status` and type `slug`; its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:adapters:problem:{slug}", body
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    return body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Seeded:
    adapter: str
    revision: str
    environment: str
    manifest_digest: str
    report_digest: str

    @property
    def api_path(self) -> str:
        return f"/api/v1/environments/{self.environment}/revisions/{self.adapter}/{self.revision}"

    @property
    def page_path(self) -> str:
        return f"/environments/{self.environment}/revisions/{self.adapter}/{self.revision}"

    def ballot(
        self, decision: str = "approve", comment: str = "", **changes: str
    ) -> dict[str, str]:
        body = {
            "decision": decision,
            "comment": comment,
            "manifest_digest": self.manifest_digest,
            "report_digest": self.report_digest,
        }
        return {**body, **changes}


@dataclass
class ApprovalStack:
    stack: Stack
    registry: PostgresRegistry
    port: int
    key_path: Path
    process: Any = None  # the service process serving `port`
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, role) -> token

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def public_key(self) -> Path:
        return self.key_path.with_name(self.key_path.name + ".pub")

    @property
    def store(self) -> LocalArtifactStore:
        return LocalArtifactStore(self.stack.artifacts)

    def token(self, name: str, role: str) -> str:
        return self.tokens[(name, role)]

    def session(self, name: str, role: str) -> str:
        """A page session opened by logging in with `name`'s token in `role`: its cookie."""
        with self.page_client() as client:
            response = client.post("/login", data={"token": self.token(name, role)})
            assert response.status_code == 303, response.text
            return str(response.cookies["approval_session"])

    def page_client(self, session: str | None = None) -> httpx.Client:
        """A client that posts as the page's own forms do: `Origin` is the page's origin."""
        cookies = {"approval_session": session} if session is not None else None
        return httpx.Client(
            base_url=self.base_url, headers={"Origin": self.base_url}, cookies=cookies, timeout=30
        )

    def client(self, name: str | None = None, role: str | None = None) -> httpx.Client:
        headers = {}
        if name is not None:
            headers["Authorization"] = f"Bearer {self.token(name, role or PRINCIPALS[name][0])}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def add_principal(self, name: str, role: str) -> str:
        """A new token for `name` in `role` (the first time, the one the stack made for its
        trainers at creation, if it did)."""
        if (name, role) in self.stack.tokens and (name, role) not in self.tokens:
            token = self.stack.tokens[name, role]
        else:
            out = self.stack.adapterctl("principal", "add", name, "--role", role, "--json")
            token = json.loads(out.stdout)["token"]
            self.stack.tokens[name, role] = token
        self.tokens[(name, role)] = token
        return token

    def put_blob(self, data: bytes) -> str:
        entry = self.store.put_stream(io.BytesIO(data), max_bytes=1 << 20)
        return entry.sha256

    async def seed(
        self,
        adapter: str,
        environment: str = STAGING,
        *,
        submitter: str = SUBMITTER,
        metrics: list[MetricResult] | None = None,
        items: list[dict[str, Any]] | None = None,
        recipe: dict[str, Any] | None = None,
        data_scope: dict[str, Any] | None = None,
        baseline_revision: str | None = BASELINE,
        report_metrics: dict[str, Any] | None = None,
        variant: str = "",
        failure: str | None = None,
        findings: list[Finding] | None = None,
    ) -> Seeded:
        """A revision registered, validated and evaluated in `environment`, with real blobs.

        `variant` makes another revision of the same adapter (other weights); `failure`
        makes the evaluation a RevisionEvaluationFailed with that cause (and `findings`)."""
        weights = self.put_blob(f"weights of {adapter}{variant}".encode())
        files = (FileEntry(path="adapter_model.safetensors", sha256=weights, size=20),)
        revision = revision_digest(files)
        manifest = Manifest(
            adapter=adapter,
            revision=revision,
            files=files,
            base_model_id="tiny-llama",
            base_model_revision="sha256:" + "b" * 64,
            tokenizer_revision="tok-1",
            tokenizer_hash="sha256:" + "c" * 64,
            chat_template_hash="sha256:" + "d" * 64,
            quantization_profile="bf16",
            target_environments=(STAGING, PRODUCTION),
            recipe=RECIPE if recipe is None else recipe,
            data_scope=DATA_SCOPE if data_scope is None else data_scope,
            submitter=submitter,
            trained_event_id=str(uuid.uuid4()),
            source_uri=f"file:///incoming/{adapter}",
        )
        manifest_digest = self.store.put_manifest(manifest)
        report = {
            "schema": "adapters.evaluation_report.v1",
            "metrics": REPORT_METRICS if report_metrics is None else report_metrics,
            "items": ITEMS if items is None else items,
        }
        report_hex = self.put_blob(json.dumps(report).encode())
        report_digest = "sha256:" + report_hex
        correlation = str(uuid.uuid4())

        def envelope(environment: str = "") -> Envelope:
            return _envelope(adapter, revision, environment, correlation)

        events: list[Any] = [
            RevisionRegistered(
                envelope=envelope(),
                manifest_digest=manifest_digest,
                manifest_uri=f"store://manifests/{manifest_digest}",
                base_model=BaseModelRef(model_id="tiny-llama", revision="sha256:" + "b" * 64),
                tokenizer_revision="tok-1",
                tokenizer_hash=manifest.tokenizer_hash,
                chat_template_hash=manifest.chat_template_hash,
                quantization_profile="bf16",
                target_environments=[STAGING, PRODUCTION],
                submitter=submitter,
                file_count=1,
                total_bytes=20,
                trained_event_id=manifest.trained_event_id,
            ),
            RevisionValidated(
                envelope=envelope(),
                findings=[Finding(code="rank_padded", severity="warning", message="rank 8 < 16")],
                checked_environments=[STAGING, PRODUCTION],
            ),
        ]
        suite = "sha256:" + hashlib.sha256(b"suite").hexdigest()
        measured = METRICS if metrics is None else metrics
        if failure is None:
            evaluation: RevisionEvaluated | RevisionEvaluationFailed = RevisionEvaluated(
                envelope=envelope(environment),
                report_digest=report_digest,
                report_uri=f"store://blobs/sha256/{report_hex}",
                suite_digest=suite,
                baseline_revision=baseline_revision,
                backend="transformers",
                metrics=measured,
            )
        else:
            evaluation = RevisionEvaluationFailed(
                envelope=envelope(environment),
                cause=failure,
                report_digest=report_digest,
                report_uri=f"store://blobs/sha256/{report_hex}",
                suite_digest=suite,
                baseline_revision=baseline_revision,
                metrics=measured,
                findings=findings or [],
            )
        events.append(evaluation)
        await self.registry.commit([Step(e) for e in events])
        return Seeded(adapter, revision, environment, manifest_digest, report_digest)

    async def serve(self, seeded: Seeded, approvers: tuple[str, ...]) -> None:
        """`seeded` approved over the API by `approvers` (as many as its environment needs),
        then activated there, as the activator would commit it: the revision serving it."""
        self.wait_pending(seeded)
        for name in approvers:
            with self.client(name, "approver") as client:
                body = seeded.ballot(comment=f"{name} read the evidence")
                response = client.post(seeded.api_path + "/decisions", json=body)
                assert response.status_code == 200, response.text
        activated = RevisionActivated(
            envelope=_envelope(
                seeded.adapter, seeded.revision, seeded.environment, str(uuid.uuid4())
            ),
            reason="promoted for the test",
        )
        await self.registry.commit([Step(activated)])

    async def evaluate_also_in(self, seeded: Seeded, environment: str) -> Seeded:
        """The same revision evaluated in a second environment, on the same report."""
        event = RevisionEvaluated(
            envelope=_envelope(seeded.adapter, seeded.revision, environment, str(uuid.uuid4())),
            report_digest=seeded.report_digest,
            report_uri="store://blobs/" + seeded.report_digest,
            suite_digest="sha256:" + "e" * 64,
            backend="transformers",
            metrics=METRICS,
        )
        await self.registry.commit([Step(event)])
        return Seeded(
            seeded.adapter,
            seeded.revision,
            environment,
            seeded.manifest_digest,
            seeded.report_digest,
        )

    def wait_pending(self, seeded: Seeded, timeout_s: float = 60) -> None:
        """Until the service's consumer has projected the evaluation and lists it."""
        with self.client("audrey") as client:

            def listed() -> bool:
                if self.stack.processes["approval"].poll() is not None:
                    raise ServiceDied(self.stack.log_of("approval"))
                path = f"/api/v1/environments/{seeded.environment}/pending"
                return any(
                    r["revision"] == seeded.revision and r["adapter"] == seeded.adapter
                    for r in client.get(path).json().get("revisions", [])
                )

            message = f"{seeded.adapter} listed:\n{self.stack.log_of('approval')}"
            eventually(listed, timeout=timeout_s, message=message)

    def events_of(self, adapter: str) -> list[Any]:
        return self.stack.events(adapter)


def _envelope(adapter: str, revision: str, environment: str, correlation: str) -> Envelope:
    return Envelope(
        event_id=str(uuid.uuid4()),
        adapter=adapter,
        revision=revision,
        environment=environment,
        occurred_at=datetime.now(UTC),
        actor=Actor(principal="svc", role="service"),
        correlation_id=correlation,
    )


def environment(name: str, required_approvals: int, approver_may_operate: bool) -> EnvironmentSpec:
    return EnvironmentSpec(
        name=name,
        base_model_id="tiny-llama",
        base_model_revision="sha256:" + "b" * 64,
        tokenizer_hash="sha256:" + "c" * 64,
        chat_template_hash="sha256:" + "d" * 64,
        required_approvals=required_approvals,
        approver_may_operate=approver_may_operate,
    )


async def start_approval_stack(infra: Infra, root: Path) -> ApprovalStack:
    stack = Stack(infra, root)
    await stack.create()
    registry = await PostgresRegistry.connect(stack.database_url, Codec.from_env())
    catalogue = PostgresCatalogue(registry.pool)
    await catalogue.put_environment(environment(STAGING, 1, True))
    await catalogue.put_environment(environment(PRODUCTION, 2, False))
    approval = ApprovalStack(stack, registry, free_port(), root / "keys" / "signing.key")
    for name, roles in PRINCIPALS.items():
        for role in roles:
            approval.add_principal(name, role)
    approval.process = stack.start(
        "approval",
        APPROVAL_HTTP_PORT=str(approval.port),
        APPROVAL_SIGNING_KEY=str(approval.key_path),
    )

    def alive() -> None:
        if stack.processes["approval"].poll() is not None:
            raise ServiceDied(f"approval died:\n{stack.log_of('approval')}")

    try:
        processes.wait_http(approval.base_url + "/healthz", timeout_s=60, check=alive)
    except TimeoutError:
        raise AssertionError(f"approval never served:\n{stack.log_of('approval')}") from None
    return approval


async def stop_approval_stack(approval: ApprovalStack) -> None:
    approval.stack.stop()
    await approval.registry.close()


@pytest.fixture(scope="module", name="approval")
async def approval_fixture(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[ApprovalStack]:
    """The approval stack of one test module (import `approval_fixture` to use it there)."""
    started = await start_approval_stack(infra, tmp_path_factory.mktemp("approval"))
    yield started
    await stop_approval_stack(started)


def test_the_stack_serves_health_and_the_openapi_document_without_a_token(
    approval: ApprovalStack,
) -> None:
    document = httpx.get(approval.base_url + "/openapi.json").json()
    assert document["info"]["title"] == "Adapter approval service"
    assert "/api/v1/environments/{environment}/pending" in document["paths"]
    assert httpx.get(approval.base_url + "/healthz").json() == {"status": "ok"}
