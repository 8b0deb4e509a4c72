"""OpenAI servers for tests, on free loopback ports in the test's own process: any ASGI app
under uvicorn (`Served`), and gateways in front of given replicas (`Gateways`), with the
key files, routing documents and metrics reading those tests share."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import uvicorn
from prometheus_client.parser import text_string_to_metric_families

from services.gateway.app import create_app
from services.gateway.keys import digest_of
from services.gateway.main import build
from services.gateway.settings import GatewaySettings
from services.gateway.state import GatewayState
from tests.eventually import eventually

CLIENT_KEY, ADMIN_KEY = "sk-client", "sk-admin"
ENVIRONMENT = "test"


class Served:
    """An ASGI app served by uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        eventually(lambda: self.server.started, timeout=30, interval=0.01, message="started")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


def refused_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def write_key_files(folder: Path, replica_key: str | None) -> dict[str, str]:
    """The gateway's key files (mode 600) in `folder`: CLIENT_KEY listed, ADMIN_KEY for
    pushes, and the replicas' key when they want one; the variables that name them."""
    files = {
        "GATEWAY_CLIENT_KEYS_FILE": ("clients", f"# test clients\n{digest_of(CLIENT_KEY)}\n"),
        "GATEWAY_ADMIN_KEY_FILE": ("admin", f"{ADMIN_KEY}\n"),
    }
    if replica_key:
        files["GATEWAY_REPLICA_KEY_FILE"] = ("replica", f"{replica_key}\n")
    env = {}
    for variable, (name, text) in files.items():
        path = folder / name
        path.write_text(text)
        path.chmod(0o600)
        env[variable] = str(path)
    return env


@dataclass
class Gateway:
    served: Served
    state: GatewayState

    @property
    def url(self) -> str:
        return self.served.url

    def client(self, key: str = CLIENT_KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)

    def push(self, document: dict[str, Any], key: str = ADMIN_KEY) -> httpx.Response:
        headers = {"authorization": f"Bearer {key}"}
        return httpx.post(f"{self.url}/v1/routing", json=document, headers=headers)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{self.url}/metrics").text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }


@dataclass
class Gateways:
    """Starts gateways for ENVIRONMENT over given replica URLs; `close` stops them all."""

    base_model: str
    key_files: dict[str, str]
    running: list[Served] = field(default_factory=list)

    def start(self, *replicas: str, **env: str) -> Gateway:
        settings = GatewaySettings.from_env(
            {
                "GATEWAY_ENVIRONMENT": ENVIRONMENT,
                "GATEWAY_REPLICAS": ",".join(replicas),
                "GATEWAY_BASE_MODEL": self.base_model,
                **self.key_files,
                **env,
            }
        )
        state = build(settings)
        served = Served(create_app(state)).__enter__()
        self.running.append(served)
        return Gateway(served, state)

    def close(self) -> None:
        for served in self.running:
            served.__exit__()


def routing(generation: int, **adapters: dict[str, Any]) -> dict[str, Any]:
    """A routing document for ENVIRONMENT."""
    return {"environment": ENVIRONMENT, "generation": generation, "adapters": adapters}


def entry(lora_name: str | None) -> dict[str, str] | None:
    """A revision as the routing names it; `name@<digest>` gives the digest."""
    if lora_name is None:
        return None
    return {"revision": "sha256:" + lora_name.split("@")[1], "lora_name": lora_name}


def route(
    active: str | None, canary: str | None = None, percent: int = 0, tenants: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One adapter's route: its active revision, and a canary with its share and tenants."""
    return {
        "active": entry(active),
        "canary": entry(canary),
        "canary_percent": percent,
        "canary_tenants": list(tenants),
    }
