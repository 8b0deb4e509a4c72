"""The gateway's composition root: settings to a running state and app."""

from __future__ import annotations

from collections.abc import Mapping

import uvicorn

from services.gateway.app import create_app
from services.gateway.forwarding import ReplicaPool
from services.gateway.keys import ClientKeys, read_private
from services.gateway.settings import GatewaySettings
from services.gateway.state import GatewayState
from shared.logs import configure_logging
from shared.settings import exit_on_bad_settings
from shared.shutdown import DEFAULT_GRACE_S


def _first_line(text: str) -> str:
    return text.splitlines()[0].strip() if text.strip() else ""


def build(settings: GatewaySettings) -> GatewayState:
    """The state a gateway runs on; reads its key files (refusing any others may read)."""
    return GatewayState(
        settings=settings,
        keys=ClientKeys(settings.client_keys_file),
        replicas=ReplicaPool(settings.replicas, timeout_s=settings.replica_timeout_s),
        admin_key=_first_line(read_private(f)) if (f := settings.admin_key_file) else None,
        replica_key=_first_line(read_private(f)) if (f := settings.replica_key_file) else None,
    )


def run(env: Mapping[str, str] | None = None) -> None:
    configure_logging("gateway")
    with exit_on_bad_settings("gateway"):
        settings = GatewaySettings.from_env(env)
    app = create_app(build(settings))
    # A stream still open at SIGTERM gets the same grace every service keeps, then is cut.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=int(DEFAULT_GRACE_S),
    )
