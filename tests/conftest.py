"""Session-wide fixtures: the real Kafka and PostgreSQL, and unique names per test.

The infrastructure is started once per test session by the project's own `infra/`
scripts (or reused when `make infra-up` already runs it), and stopped again only if
this session started it. With `ADAPTERS_TEST_INFRA=docker` and a Docker engine, the
pytest-docker profile starts `docker-compose.yml` instead.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.kafka.acl import ADMIN
from shared.kafka.auth import KafkaEndpoint, read_password, sasl_env

REPO = Path(__file__).resolve().parents[1]
INFRA_ENV = REPO / "var" / "infra.env"


@dataclass(frozen=True)
class Infra:
    bootstrap_servers: str
    database_url: str
    # Where infra/ keeps each Kafka principal's password file (None: brokers without auth).
    credentials_dir: str | None = None

    @property
    def kafka(self) -> KafkaEndpoint:
        """The brokers as the admin (topics, users, ACLs): what a test's own clients use."""
        return self.as_principal(ADMIN)

    def as_principal(self, principal: str) -> KafkaEndpoint:
        """The brokers as `principal` (one of shared.kafka.acl.PRINCIPALS, or the admin)."""
        if self.credentials_dir is None:
            return KafkaEndpoint(self.bootstrap_servers)
        password = read_password(Path(self.credentials_dir) / f"{principal}.password")
        return KafkaEndpoint(self.bootstrap_servers, principal, password)

    def principal_env(self, principal: str) -> dict[str, str]:
        """The variables that make a process connect to Kafka as `principal`."""
        if self.credentials_dir is None:
            return {}
        return sasl_env(Path(self.credentials_dir), principal)

    def env(self, principal: str = ADMIN) -> dict[str, str]:
        """The environment a process needs to reach this infrastructure as `principal`."""
        return {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "DATABASE_URL": self.database_url,
            "PYTHONPATH": str(REPO),
            **({"KAFKA_CREDENTIALS_DIR": self.credentials_dir} if self.credentials_dir else {}),
            **self.principal_env(principal),
        }


# What docker-compose.yml publishes: the ports infra/up.sh uses.
COMPOSED = Infra("127.0.0.1:39092", "postgresql://postgres@127.0.0.1:35432/adapters")


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            values[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
    return values


def _port_open(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


def _pg_host_port(url: str) -> str:
    m = re.match(r"^postgres(?:ql)?://[^@]*@([^/:]+):(\d+)/", url)
    assert m, f"unexpected DATABASE_URL {url!r}"
    return f"{m.group(1)}:{m.group(2)}"


def _reachable(infra: Infra) -> bool:
    first_broker = infra.bootstrap_servers.split(",")[0]
    return _port_open(first_broker) and _port_open(_pg_host_port(infra.database_url))


def _from_values(values: dict[str, str]) -> Infra | None:
    if "KAFKA_BOOTSTRAP_SERVERS" in values and "DATABASE_URL" in values:
        return Infra(
            values["KAFKA_BOOTSTRAP_SERVERS"],
            values["DATABASE_URL"],
            values.get("KAFKA_CREDENTIALS_DIR") or None,
        )
    return None


@pytest.fixture(scope="session")
def infra(request: pytest.FixtureRequest) -> Iterator[Infra]:
    if os.environ.get("ADAPTERS_TEST_INFRA") == "docker":
        # pytest-docker: `docker compose up` now, `down` at the session's end.
        services = request.getfixturevalue("docker_services")
        services.wait_until_responsive(check=lambda: _reachable(COMPOSED), timeout=180, pause=1)
        yield COMPOSED
        return
    given = _from_values(dict(os.environ))
    if given is not None:
        yield given
        return
    if INFRA_ENV.exists():
        running = _from_values(_read_env_file(INFRA_ENV))
        if running is not None and _reachable(running):
            yield running  # started by `make infra-up`: leave it running
            return
    subprocess.run([str(REPO / "infra" / "up.sh")], check=True, cwd=REPO)
    try:
        started = _from_values(_read_env_file(INFRA_ENV))
        assert started is not None, f"{INFRA_ENV} lacks KAFKA_BOOTSTRAP_SERVERS/DATABASE_URL"
        yield started
    finally:
        subprocess.run([str(REPO / "infra" / "down.sh")], check=False, cwd=REPO)


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(REPO / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    """Only the compose file's Kafka and PostgreSQL: tests start the services themselves."""
    return ["up --wait kafka postgres"]


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses, so tests need no cleanup: `unique("topic")`."""
    token = uuid.uuid4().hex[:10]

    def make(prefix: str) -> str:
        return f"{prefix}-{token}"

    return make
