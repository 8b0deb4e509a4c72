"""Simulated users for the local stack (`make stack-up`): steady chat requests for every
adapter the activator routes in an environment, sent to the environment's gateway by the
adapter's name when one is given (`--gateway-url`, with `$GATEWAY_CLIENT_KEY`), else spread
over its replicas, so a canary there gathers the samples its analysis waits for. It stands
in for production traffic on a laptop; it is not a load test (`benchmarks/` has those).

    python -m infra.traffic [--environment production] [--rate 4] [--activator-url URL]
                            [--gateway-url URL]

What it reads (routes and replicas) comes from the activator's read API, refreshed every few
seconds, so an adapter you promote starts receiving requests without a restart. A line per
`--report-every-s` says what was sent and answered, by adapter and status.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

import httpx

QUESTION = "what is the capital of france?"


def targets(routing: Mapping[str, Any], replicas: list[str]) -> list[tuple[str, str]]:
    """(replica URL, adapter) pairs to send to: every routed adapter on every replica."""
    adapters = sorted(routing.get("adapters", {}))
    return [(url, adapter) for adapter in adapters for url in replicas]


def summary(counts: Counter[tuple[str, int]]) -> str:
    """`my-adapter 200 x41, 503 x1; other 200 x40`, or `nothing routed yet`."""
    if not counts:
        return "nothing routed yet"
    by_adapter: dict[str, list[str]] = {}
    for (adapter, status), n in sorted(counts.items()):
        by_adapter.setdefault(adapter, []).append(f"{status} x{n}")
    return "; ".join(f"{adapter} {', '.join(parts)}" for adapter, parts in by_adapter.items())


def refresh(
    client: httpx.Client, activator: str, environment: str, gateway: str | None
) -> list[tuple[str, str]]:
    routing = client.get(f"{activator}/routing/{environment}").json()
    if gateway:
        return targets(routing, [gateway])
    replicas = client.get(f"{activator}/environments/{environment}/replicas").json()["replicas"]
    return targets(routing, list(replicas))


def run(
    activator: str, environment: str, rate: float, report_every_s: float, gateway: str | None
) -> None:
    stop = False

    def ask_to_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, ask_to_stop)
    signal.signal(signal.SIGINT, ask_to_stop)
    counts: Counter[tuple[str, int]] = Counter()
    client_key = os.environ.get("GATEWAY_CLIENT_KEY", "")
    key = {"Authorization": f"Bearer {client_key}"} if gateway and client_key else {}
    pairs: list[tuple[str, str]] = []
    refreshed = reported = 0.0
    cycle: Iterator[tuple[str, str]] = iter(())
    with httpx.Client(timeout=30) as client:
        while not stop:
            now = time.monotonic()
            if now - refreshed >= 3:
                try:
                    pairs = refresh(client, activator, environment, gateway)
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    print(f"traffic: cannot read the activator at {activator}: {exc}", flush=True)
                    pairs = []
                cycle = itertools.cycle(pairs) if pairs else iter(())
                refreshed = now
            if now - reported >= report_every_s:
                print(f"traffic: {summary(counts)}", flush=True)
                counts.clear()
                reported = now
            pair = next(cycle, None)
            if pair is None:
                time.sleep(1)
                continue
            url, adapter = pair
            try:
                response = client.post(
                    f"{url}/v1/chat/completions",
                    json={
                        "model": adapter,
                        "max_tokens": 2,
                        "messages": [{"role": "user", "content": QUESTION}],
                    },
                    headers={"x-request-id": uuid.uuid4().hex, **key},
                )
                counts[(adapter, response.status_code)] += 1
            except httpx.TransportError:
                counts[(adapter, 0)] += 1  # 0: no answer at all (a replica down)
            time.sleep(1 / rate)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.traffic", description=__doc__)
    parser.add_argument(
        "--activator-url",
        default=os.environ.get("ACTIVATOR_URL", "http://127.0.0.1:8490"),
        help="where routes and replicas are read (default: $ACTIVATOR_URL or %(default)s)",
    )
    parser.add_argument("--environment", default="production", help="default: %(default)s")
    parser.add_argument(
        "--gateway-url",
        default=os.environ.get("GATEWAY_URL") or None,
        help="send every request to this gateway by the adapter's name, with "
        "$GATEWAY_CLIENT_KEY (default: $GATEWAY_URL; unset: to the replicas)",
    )
    parser.add_argument(
        "--rate", type=float, default=4.0, help="requests per second (default: %(default)s)"
    )
    parser.add_argument("--report-every-s", type=float, default=30.0, help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0")
    gateway = args.gateway_url.rstrip("/") if args.gateway_url else None
    run(args.activator_url.rstrip("/"), args.environment, args.rate, args.report_every_s, gateway)
    return 0


if __name__ == "__main__":
    sys.exit(main())
