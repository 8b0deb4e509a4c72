"""How adapterctl asks a service to change its state, and reads its answer.

Everything goes to a service's HTTP API with a principal's bearer token, and the service
acts as the token's principal, never as a name adapterctl states. Rollout commands
(promote, expand, rollback, abort) go to the activator, which puts them on the commands
topic and answers with the command's id; it carries them out and records an answer under
that id, which its API serves. Changes to a service's own settings (replicas, canary
analysis, retention, legal holds) are carried out at once and answered."""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx

from adapterctl.source import CliError, CliRefusal


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except (ValueError, AttributeError):
        return response.text[:200]


def _refused(url: str, response: httpx.Response) -> CliError:
    """The error for a service's refusal: CliRefusal for the token (401/403), else CliError."""
    detail = _detail(response)
    if response.status_code in (401, 403):
        return CliRefusal(f"{url} refused the token ({response.status_code}): {detail}")
    return CliError(f"{url} answered {response.status_code}: {detail}")


def require_token(token: str, role: str = "operator") -> None:
    """CliRefusal, saying how to get one, when no bearer token was given."""
    if not token:
        raise CliRefusal(
            "this needs a principal's token: --token or ADAPTERCTL_TOKEN "
            f"(`adapterctl principal add NAME --role {role}` issues one)"
        )


def issue(url: str, body: dict[str, Any], token: str) -> str:
    """Ask the activator to issue a rollout command as the token's principal; the command's
    id, to wait for its answer. CliRefusal when the token is missing, unknown or lacks the role."""
    require_token(token)
    try:
        response = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {url} ({exc}): is the activator running?") from exc
    if response.status_code != 202:
        raise _refused(url, response)
    return str(response.json()["command_id"])


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
    parser.add_argument(
        "--no-wait",
        dest="wait",
        action="store_false",
        help="send, print the command's id and leave (default: wait for the answer)",
    )
    parser.add_argument(
        "--wait-s",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long to wait for the answer (default: %(default)s)",
    )


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
    require_token(token)
    try:
        response = httpx.request(
            method, url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
        )
    except httpx.TransportError as exc:
        raise CliError(f"cannot reach {url} ({exc}): is the service running?") from exc
    if response.status_code in (200, 409):
        answer: dict[str, Any] = response.json()
        return answer
    raise _refused(url, response)
