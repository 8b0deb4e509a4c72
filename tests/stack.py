"""A private copy of the pipeline for one test module: its own database, topics, artifact
store and service processes, on the session's real Kafka and PostgreSQL."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from infra import processes
from infra.processes import ServiceCommand
from shared.codec import Codec
from shared.kafka import acl
from shared.kafka.acl import TopicNames, apply_grants, grants
from shared.kafka.reader import LogRecord, read_topic
from shared.kafka.topics import TopicSpec, admin_client, dlq_of, provision
from shared.registry.principals import Role, add_principal
from shared.registry.store import PostgresRegistry
from tests.conftest import REPO, Infra
from tests.eventually import eventually
from tests.factories import write_test_public_key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answering(url: str) -> bool:
    """Whether `url` answers 200 now (a service still starting does not)."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


STACK_ADMIN = "stack-admin"
# The trainers of a stack: the submitters its tests name (ingest dead-letters a submission
# whose submitter holds no trainer token). `trainer_token` is the first one's.
STACK_TRAINERS = ("trainer-alice", "alice", "trainer")


class ServiceDied(Exception):
    """A service the test waits on exited: waiting longer cannot help."""


@dataclass
class Stack:
    infra: Infra
    root: Path
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # On a 3-broker cluster: 3 and 2, so the private topics survive a broker's loss.
    replication_factor: int = 1
    min_insync_replicas: int = 1
    # The read APIs adapterctl asks (ACTIVATOR_URL, ARCHIVER_URL): one port each per stack.
    activator_port: int = field(default_factory=free_port)
    archiver_port: int = field(default_factory=free_port)
    ingest_port: int = field(default_factory=free_port)
    # An admin's bearer token, issued by `create`: adapterctl's changes to a service's own
    # settings (replicas, analysis, retention, holds) are made as a proven principal.
    admin_token: str = ""
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def database_url(self) -> str:
        return self.infra.database_url.rsplit("/", 1)[0] + f"/stack_{self.token}"

    @property
    def trained_topic(self) -> str:
        return f"t{self.token}.trained"

    @property
    def lifecycle_topic(self) -> str:
        return f"t{self.token}.lifecycle"

    @property
    def commands_topic(self) -> str:
        return f"t{self.token}.commands"

    @property
    def log_key(self) -> Path:
        """The relays' log signing key; its public half (`.pub`) is what auditors trust."""
        return self.root / "registry" / "log.key"

    @property
    def incoming(self) -> Path:
        return self.root / "incoming"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    async def create(self) -> None:
        admin = await asyncpg.connect(self.infra.database_url)
        await admin.execute(f'CREATE DATABASE "stack_{self.token}"')
        await admin.close()
        topics = [self.trained_topic, self.lifecycle_topic, self.commands_topic]
        isr = (
            {"min.insync.replicas": str(self.min_insync_replicas)}
            if self.min_insync_replicas != 1
            else {}
        )
        admin = admin_client(self.infra.kafka)
        provision(
            admin,
            [TopicSpec(t, 3, isr) for t in topics] + [TopicSpec(dlq_of(t), 1, isr) for t in topics],
            replication_factor=self.replication_factor,
        )
        self.grant("adapters", f"t{self.token}")
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        write_test_public_key(self.root)
        registry = await PostgresRegistry.connect(self.database_url, Codec.from_env())
        try:
            self.admin_token = await add_principal(registry.pool, STACK_ADMIN, Role.ADMIN)
            for trainer in STACK_TRAINERS:
                token = await add_principal(registry.pool, trainer, Role.TRAINER)
                self.tokens[trainer, Role.TRAINER.value] = token
        finally:
            await registry.close()

    def grant(self, *group_prefixes: str) -> None:
        """The project's ACLs on this stack's private topics, for services in groups
        `<prefix>-<service>` (the default prefix, or a test's own)."""
        if self.infra.credentials_dir is None:
            return  # brokers without authentication
        names = TopicNames(self.trained_topic, self.lifecycle_topic, self.commands_topic)
        admin = admin_client(self.infra.kafka)
        apply_grants(admin, sorted({g for p in group_prefixes for g in grants(names, p)}))

    def let_readers_read(self, topic: str) -> None:
        """Let the auditor and the operator (adapterctl's readers) read a test's own `topic`."""
        if self.infra.credentials_dir is not None:
            readers = (acl.AUDITOR, acl.OPERATOR)
            apply_grants(
                admin_client(self.infra.kafka),
                [acl.Grant(who, "topic", topic, acl.Op.READ) for who in readers],
            )

    def env(self, principal: str = acl.OPERATOR, **extra: str) -> dict[str, str]:
        """This stack's environment, connecting to Kafka as `principal`."""
        return {
            **self.infra.env(principal),
            "DATABASE_URL": self.database_url,
            "TRAINED_TOPIC": self.trained_topic,
            "LIFECYCLE_TOPIC": self.lifecycle_topic,
            "COMMANDS_TOPIC": self.commands_topic,
            "ARTIFACT_ROOT": str(self.artifacts),
            "INGEST_ALLOWED_ROOTS": str(self.incoming),
            "LOG_FORMAT": "json",
            "ACTIVATOR_HTTP_PORT": str(self.activator_port),
            "ACTIVATOR_URL": f"http://127.0.0.1:{self.activator_port}",
            "ARCHIVER_HTTP_PORT": str(self.archiver_port),
            "ARCHIVER_URL": f"http://127.0.0.1:{self.archiver_port}",
            "INGEST_HTTP_PORT": str(self.ingest_port),
            "INGEST_URL": f"http://127.0.0.1:{self.ingest_port}",
            "ADAPTERCTL_TOKEN": self.admin_token,
            # The approval service signs with its key here; read models believe decisions
            # signed by it or by the tests' key (what `tests.factories` signs with).
            "APPROVAL_SIGNING_KEY": str(self.root / "approval" / "signing.key"),
            "DECISION_PUBLIC_KEYS": f"{self.root / 'test-decisions.pub'}:"
            f"{self.root / 'approval' / 'signing.key.pub'}",
            # The relays sign the log with this key and checkpoint it into the stack's cold
            # storage every second; `adapterctl audit verify` checks both.
            "LOG_SIGNING_KEY": str(self.log_key),
            "LOG_PUBLIC_KEYS": f"{self.log_key}.pub",
            "LOG_CHECKPOINT_INTERVAL_S": "1",
            "COLD_STORAGE_URL": str(self.root / "cold"),
            "LOG_CHECKPOINTS": str(self.root / "cold"),
            **extra,
        }

    def start(
        self, service: str, *, module: str | None = None, **extra: str
    ) -> subprocess.Popen[bytes]:
        """Run `python -m services.<service>` (or `module`, under the name `service`)."""
        process = self.command(service, ("-m", module or f"services.{service}"), **extra).start()
        self.processes[service] = process
        return process

    def service_env(self, module: str, **extra: str) -> dict[str, str]:
        """The environment of `python -m <module>`: a service connects to Kafka as its own
        principal, its outbox relay as `relay` (the only one that may write the log)."""
        relay = self.infra.principal_env(acl.RELAY)
        return self.env(
            acl.service_principal(module) or acl.ADMIN,
            **{f"RELAY_{k}": v for k, v in relay.items()},
            **extra,
        )

    def command(
        self, service: str, argv: Sequence[str], *, as_module: str | None = None, **extra: str
    ) -> ServiceCommand:
        """`python <argv>` in this stack's environment, logging to `<service>.log`; a
        `-m <module>` runs as that service's principal (`service_env`), and so does any
        `argv` given `as_module` (a service's composition root run another way)."""
        module = as_module or (argv[1] if len(argv) >= 2 and argv[0] == "-m" else None)
        env = self.service_env(module, **extra) if module else self.env(**extra)
        return ServiceCommand(service, argv, env, self.root / f"{service}.log")

    def log_of(self, service: str) -> str:
        path = self.root / f"{service}.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def stop(self) -> None:
        processes.stop(self.processes.values())

    def wait_ingest(self, timeout_s: float = 120) -> None:
        """Until ingest's submit API answers (it starts once ingest reached Kafka and the
        registry)."""
        url = f"http://127.0.0.1:{self.ingest_port}/healthz"
        eventually(partial(answering, url), timeout=timeout_s, message=f"ingest: {url}")

    @property
    def trainer_token(self) -> str:
        """A trainer's bearer token (`trainer-alice`): what `adapterctl submit` needs."""
        return self.tokens[STACK_TRAINERS[0], Role.TRAINER.value]

    def token_of(self, name: str, role: str) -> str:
        """A bearer token for principal `name` in `role`, made by `adapterctl principal add`
        the first time it is asked for."""
        if (name, role) not in self.tokens:
            made = self.adapterctl("principal", "add", name, "--role", role, "--json")
            self.tokens[name, role] = json.loads(made.stdout)["token"]
        return self.tokens[name, role]

    def adapterctl(
        self, *args: str, check: bool = True, token: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """adapterctl in this stack, with the stack admin's token (a trainer's for `submit`)
        unless `token` is given."""
        env = self.env(acl.cli_principal(args[0] if args else ""))
        if args and args[0] == "submit":
            self.wait_ingest()
            token = self.trainer_token if token is None else token
        if token is not None:
            env["ADAPTERCTL_TOKEN"] = token
        result = subprocess.run(
            [str(Path(sys.executable).parent / "adapterctl"), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"adapterctl {' '.join(args)}: {result.stdout}{result.stderr}")
        return result

    def both_verifiers_agree(self, approval_key: Path) -> dict[str, Any]:
        """`adapterctl audit verify` and the independent `logcheck` over this stack's log,
        checkpoints and keys: they must agree event for event (tests/verifiers.py)."""
        from tests.verifiers import assert_agree, build_logcheck, run_logcheck

        build_logcheck()
        ours = self.adapterctl(
            "audit", "verify", "--json", "--public-key", str(approval_key), check=False
        )
        report = json.loads(ours.stdout)
        env = self.env(acl.cli_principal("audit"))
        _, theirs = run_logcheck(
            "verify", "--bootstrap", env["KAFKA_BOOTSTRAP_SERVERS"],
            "--topic", env["LIFECYCLE_TOPIC"],
            *(["--user", env["KAFKA_SASL_USERNAME"],
               "--password-file", env["KAFKA_SASL_PASSWORD_FILE"]]
              if "KAFKA_SASL_USERNAME" in env else []),
            "--checkpoints", env["LOG_CHECKPOINTS"], "--log-key", env["LOG_PUBLIC_KEYS"],
            "--approval-key", str(approval_key),
        )  # fmt: skip
        assert_agree(report, theirs)
        return dict(report)

    def register_kit_base(self, kit: Any) -> tuple[str, str]:
        """Register the model kit's base in this stack's catalogue; its (id, revision)."""
        base_id, base_revision = kit.model_ids["main"], kit.revisions["main"]
        self.adapterctl(
            "base", "register", str(kit.base), "--id", base_id, "--revision", base_revision,
            "--tokenizer-revision", "tok-1",
        )  # fmt: skip
        return base_id, base_revision

    def records(self, topic: str | None = None) -> list[LogRecord]:
        return read_topic(self.infra.kafka, topic or self.lifecycle_topic)

    def events(self, adapter: str | None = None) -> list[Any]:
        codec = Codec.from_env()
        decoded = [codec.decode(r.value or b"") for r in self.records()]
        return [e for e in decoded if adapter is None or e.envelope.adapter == adapter]

    def wait_for(
        self,
        condition: Callable[[list[Any]], bool],
        *,
        adapter: str | None = None,
        timeout_s: float = 90,
        services: Sequence[str] = (),
    ) -> list[Any]:
        seen: list[Any] = []

        def met() -> tuple[list[Any]] | None:  # a tuple: truthy even when no event is seen
            seen[:] = self.events(adapter)
            if condition(seen):
                return (list(seen),)
            for name in services or self.processes:
                if self.processes[name].poll() is not None:
                    raise ServiceDied(f"{name} died:\n{self.log_of(name)}")
            return None

        try:
            found = eventually(met, timeout=timeout_s, interval=0.3)
        except AssertionError:
            logs = "\n".join(f"--- {n}\n{self.log_of(n)}" for n in self.processes)
            names = [type(e).__name__ for e in seen]
            raise AssertionError(f"timed out; events for {adapter}: {names}\n{logs}") from None
        return found[0]
