"""How adapterctl asks a service to change its state, and reads its answer.

Rollout commands (promote, expand, rollback, abort) go to the commands topic; the activator
carries them out and records an answer under the command's id, which its HTTP API serves.
Changes to a service's own settings (replicas, canary analysis, retention, legal holds) go
to its HTTP API with a principal's bearer token: the service acts as the token's principal,
and answers at once."""

from __future__ import annotations

import argparse
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from confluent_kafka import KafkaException

from adapterctl.source import CliError, CliRefusal
from shared.codec import Codec
from shared.events import Actor, CommandHeader
from shared.kafka.producer import make_producer, publish


def header_for(
    args: argparse.Namespace, *, adapter: str, environment: str, reason: str, principal: str
) -> CommandHeader:
    return CommandHeader(
        command_id=str(uuid.uuid4()),
        adapter=adapter,
        environment=environment,
        actor=Actor(principal=principal, role=getattr(args, "role", "operator")),
        issued_at=datetime.now(UTC),
        correlation_id=str(uuid.uuid4()),
        reason=reason,
    )


def send(args: argparse.Namespace, command: Any, key: str) -> None:
    """Publish `command` to the commands topic, keyed by `key` (an adapter or environment)."""
    producer = make_producer(args.kafka)
    value = Codec.from_env().encode(command)
    try:
        publish(producer, args.commands_topic, key=key.encode(), value=value)
    except (KafkaException, TimeoutError) as exc:
        where = f"{args.commands_topic} at {args.bootstrap}"
        raise CliError(f"cannot publish to {where}: {exc}") from exc


def get(url: str, timeout_s: float = 10.0) -> Any:
    """GET a service's read API; CliError when it cannot be reached or refuses."""
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {url} ({exc}): is the service running?") from exc
    if response.status_code != 200:
        raise CliError(f"{url} answered {response.status_code}: {response.text[:200]}")
    return response.json()


def wait_for_answer(base_url: str, command_id: str, timeout_s: float) -> dict[str, Any] | None:
    """The service's answer to the command, or None if none came within `timeout_s`.

    Neither a service that is not up yet nor one that has not answered yet is an error:
    the command stays on the topic and is carried out when the service runs.
    """
    url = f"{base_url.rstrip('/')}/outcomes/{command_id}"
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(url)
            except httpx.TransportError:
                response = None
            if response is not None and response.status_code == 200:
                answer: dict[str, Any] = response.json()
                return answer
            if response is not None and response.status_code != 404:
                raise CliError(f"{url} answered {response.status_code}: {response.text[:200]}")
            time.sleep(0.1)
    return None


def add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-wait", dest="wait", action="store_false", help="send and leave")
    parser.add_argument("--wait-s", type=float, default=60.0, help="how long to wait")


def add_token_option(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--token",
        default=default,
        help="a principal's bearer token (default: $ADAPTERCTL_TOKEN; the variable keeps it "
        "out of the process list)",
    )


def change(method: str, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    """Ask a service to change its state as the token's principal; its recorded answer,
    committed or refused. CliRefusal when the token is missing, unknown or lacks the role."""
    if not token:
        raise CliRefusal(
            "this change needs a principal's token: --token or ADAPTERCTL_TOKEN "
            "(`adapterctl principal add NAME --role admin` issues one)"
        )
    try:
        response = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {url} ({exc}): is the service running?") from exc
    if response.status_code in (200, 409):
        answer: dict[str, Any] = response.json()
        return answer
    try:
        detail = str(response.json().get("detail", response.text))
    except ValueError:
        detail = response.text[:200]
    if response.status_code in (401, 403):
        raise CliRefusal(f"{url} refused the token ({response.status_code}): {detail}")
    raise CliError(f"{url} answered {response.status_code}: {detail}")
