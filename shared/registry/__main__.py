"""`python -m shared.registry`: run the outbox relay (leader or standby) until SIGTERM.

`python -m shared.registry rotate-key NEW_KEY` announces a new log key: the current key
(`LOG_SIGNING_KEY`) signs a checkpoint naming NEW_KEY's public half (made when absent,
mode 0600) as its successor; install NEW_KEY as `LOG_SIGNING_KEY` and restart the relays.
Auditors keep trusting the first public key and follow the rotation through checkpoints.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import asyncpg
import structlog

from shared.codec import Codec
from shared.logs import configure_logging
from shared.registry.relay import relay_from_settings
from shared.registry.store import PostgresRegistry
from shared.settings import KernelSettings
from shared.shutdown import ExitDeadline
from shared.signing import load_or_create_signer, public_pem


async def _main() -> None:
    settings = KernelSettings.from_env("relay")
    configure_logging("relay", fmt=settings.log_format, level=settings.log_level)
    registry = await PostgresRegistry.connect(settings.database_url, Codec.from_env())
    await registry.close()  # migrations applied; the relay needs only its own session
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    deadline = ExitDeadline(settings.shutdown_grace_s)

    def on_signal() -> None:  # stop now; exit by the deadline whatever still waits
        deadline.arm()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    relay = relay_from_settings(settings)
    structlog.get_logger().info("relay_started")
    await relay.run(stop)


async def _rotate(new_key: Path) -> None:
    settings = KernelSettings.from_env("relay")
    relay = relay_from_settings(settings)
    successor = load_or_create_signer(new_key)
    conn = await asyncpg.connect(settings.database_url)
    try:
        announced = await relay.checkpoint(
            conn, next_key=public_pem(successor.public_key).decode(), always=True
        )
    finally:
        await conn.close()
    if announced is None:
        raise SystemExit("no checkpoint written (cold storage refused it): nothing rotated")
    print(
        f"checkpoint {announced.number} (signed by {announced.key_id}) names "
        f"{successor.key_id} as the next log key.\n"
        f"Now set LOG_SIGNING_KEY={new_key} for every relay and restart them."
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["rotate-key"] and len(sys.argv) == 3:
        asyncio.run(_rotate(Path(sys.argv[2])))
    elif len(sys.argv) > 1:
        raise SystemExit("usage: python -m shared.registry [rotate-key NEW_KEY_FILE]")
    else:
        asyncio.run(_main())
