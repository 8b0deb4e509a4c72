"""docker-compose.yml and its Dockerfile, read without a Docker engine: the file is valid
Compose, and the stack it describes could really run (a shared artifact store, writable
data directories, published HTTP ports, serving replicas).

tests/data/compose-spec.json is schema/compose-spec.json from github.com/compose-spec/
compose-spec at commit 170098ba07d9f53c383a41bfd4c5166b0a4529a6 (2026-06-23).
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from shared.kafka.acl import RELAY, service_principal
from tests.conftest import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
DOCKERFILE = (REPO / "infra" / "docker" / "Dockerfile").read_text()
# (service, its HTTP host and port variables, the default port the service listens on)
HTTP_SERVICES = [
    ("ingest", "INGEST_HTTP_HOST", 8470),
    ("approval", "APPROVAL_HTTP_HOST", 8480),
    ("activator", "ACTIVATOR_HTTP_HOST", 8490),
]


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else list(command)


def _ours() -> dict[str, dict[str, Any]]:
    """The services built from this repository's image: `python -m services.<name>`."""
    return {
        name: service
        for name, service in SERVICES.items()
        if any(word.startswith("services.") for word in _command(service))
    }


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Each volume's container path by its source, from the short `src:dst[:mode]` form."""
    return {v.split(":")[0]: v.split(":")[1] for v in service.get("volumes", [])}


def _is_replica(service: dict[str, Any]) -> bool:
    return "services.reference_server" in _command(service)


def test_the_file_is_valid_against_the_compose_specification() -> None:
    schema = json.loads((REPO / "tests" / "data" / "compose-spec.json").read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(COMPOSE), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("name", sorted(_ours()))
def test_every_service_mounts_the_one_artifact_volume_at_its_artifact_root(name: str) -> None:
    service = SERVICES[name]
    artifact_root = SERVICES["ingest"]["environment"]["ARTIFACT_ROOT"]
    if not _is_replica(service):  # a replica reads `lora_path`s the activator sends
        artifact_root = service["environment"]["ARTIFACT_ROOT"]
    assert _mounts(service).get("artifacts") == artifact_root
    assert "artifacts" in COMPOSE["volumes"]


@pytest.mark.parametrize("name", sorted(_ours()))
def test_every_mount_point_is_a_directory_the_image_gives_its_user(name: str) -> None:
    owned = set(re.findall(r"/data[\w/.-]*", DOCKERFILE.split("mkdir -p", 1)[1].split("&&")[0]))
    for target in _mounts(SERVICES[name]).values():
        assert target in owned, f"{name} mounts {target}, which the Dockerfile does not create"


@pytest.mark.parametrize(("name", "host_variable", "port"), HTTP_SERVICES)
def test_http_services_listen_beyond_the_container_and_publish_their_port(
    name: str, host_variable: str, port: int
) -> None:
    service = SERVICES[name]
    assert service["environment"][host_variable] == "0.0.0.0"
    assert f"127.0.0.1:{port}:{port}" in service["ports"]


def test_two_serving_replicas_listen_and_publish_their_port() -> None:
    replicas = {name: s for name, s in SERVICES.items() if _is_replica(s)}
    assert len(replicas) >= 2
    for name, replica in replicas.items():
        command = _command(replica)
        assert command[command.index("--host") + 1] == "0.0.0.0", name
        port = command[command.index("--port") + 1]
        assert any(p.endswith(f":{port}") for p in replica["ports"]), name


def test_the_compose_file_shows_how_to_register_its_replicas() -> None:
    replicas = [name for name, s in SERVICES.items() if _is_replica(s)]
    text = (REPO / "docker-compose.yml").read_text()
    urls = " ".join(f"http://{name}:8000" for name in replicas)
    assert f"adapterctl env replicas production {urls}" in text


def test_the_image_installs_the_lock_and_runs_as_a_user_owning_its_data() -> None:
    assert "uv sync --locked" in DOCKERFILE
    assert "pip install" not in DOCKERFILE
    users = re.findall(r"^USER (\S+)", DOCKERFILE, re.M)
    assert users and users[-1] not in {"root", "0", "nobody"}
    assert f"chown -R {users[-1]}:{users[-1]} /data" in DOCKERFILE
    assert re.findall(r"^WORKDIR (\S+)", DOCKERFILE, re.M)[-1] == "/data"


@pytest.mark.parametrize("name", sorted(n for n, s in _ours().items() if not _is_replica(s)))
def test_every_service_connects_to_kafka_as_its_own_principal_with_a_mounted_password(
    name: str,
) -> None:
    service = SERVICES[name]
    environment = service["environment"]
    principal = service_principal(f"services.{name}")
    assert environment["KAFKA_SASL_USERNAME"] == principal
    assert environment["RELAY_KAFKA_SASL_USERNAME"] == RELAY
    credentials = _mounts(service)["credentials"]
    for variable, who in (
        ("KAFKA_SASL_PASSWORD_FILE", principal),
        ("RELAY_KAFKA_SASL_PASSWORD_FILE", RELAY),
    ):
        assert environment[variable] == f"{credentials}/{who}.password"


def test_the_compose_broker_authenticates_and_authorises_like_infras() -> None:
    script = (REPO / "infra" / "docker" / "kafka-sasl.sh").read_text()
    for line in (
        "listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found=false",
    ):
        assert line in script
    assert "PLAINTEXT:PLAINTEXT" not in script
    access = SERVICES["kafka-access"]
    assert "infra/kafka_access.py" in " ".join(_command(access))
    for name in _ours():
        if not _is_replica(SERVICES[name]):
            condition = SERVICES[name]["depends_on"]["kafka-access"]["condition"]
            assert condition == "service_completed_successfully", name
