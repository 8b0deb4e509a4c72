"""`python -m shared.registry`: run the outbox relay (leader or standby) until SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import structlog

from shared.codec import Codec
from shared.logs import configure_logging
from shared.registry.relay import relay_from_settings
from shared.registry.store import PostgresRegistry
from shared.settings import KernelSettings


async def _main() -> None:
    settings = KernelSettings.from_env("relay")
    configure_logging("relay", fmt=settings.log_format, level=settings.log_level)
    registry = await PostgresRegistry.connect(settings.database_url, Codec.from_env())
    await registry.close()  # migrations applied; the relay needs only its own session
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    relay = relay_from_settings(settings)
    structlog.get_logger().info("relay_started")
    await relay.run(stop)


if __name__ == "__main__":
    asyncio.run(_main())
