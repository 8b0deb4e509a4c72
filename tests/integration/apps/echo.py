"""A minimal service for runner tests: echoes each AdapterTrained's adapter name to a topic.

Run as its own process (`python -m tests.integration.apps.echo SOURCE OUT GROUP`), like a
real service, so the test sees a real faust worker consume, dead-letter and go on.
"""

from __future__ import annotations

import sys

from shared.backoff import Backoff
from shared.codec import Codec
from shared.events import AdapterTrained
from shared.kafka.app import FaustDeadLetters, attach_consumer, make_app, run_worker
from shared.kafka.dispatch import Dispatcher
from shared.logs import configure_logging
from shared.settings import KernelSettings


def main(source: str, out: str, group: str) -> None:
    settings = KernelSettings.from_env("echo")
    configure_logging("echo", fmt="json", level="info")
    app = make_app(settings, app_id=group)
    out_topic = app.topic(out, key_serializer="raw", value_serializer="raw")

    async def on_trained(event: AdapterTrained) -> None:
        pending = await out_topic.send(
            key=event.adapter.encode(), value=event.adapter.encode(), force=True
        )
        await pending

    dispatcher = Dispatcher(
        service="echo",
        codec=Codec.from_env(),
        handlers={AdapterTrained: on_trained},
        dead_letters=FaustDeadLetters(app),
        retry=Backoff(attempts=2, first_delay_s=0.05),
    )
    attach_consumer(app, [source], dispatcher)
    sys.argv = [sys.argv[0], "worker"]
    run_worker(app)


if __name__ == "__main__":
    main(*sys.argv[1:4])
