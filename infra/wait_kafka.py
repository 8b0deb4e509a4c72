"""Wait until a Kafka cluster answers a metadata request listing the brokers we expect."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from shared.kafka.auth import Kafka, KafkaEndpoint, client_config, read_password


def wait_for_brokers(kafka: Kafka, brokers: int, ids: set[int], timeout: float) -> str | None:
    """Poll cluster metadata until at least `brokers` brokers, every id in `ids` and an
    active controller show. Return None then, else what was last seen after `timeout` s."""
    quiet = logging.getLogger("wait_kafka.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    # Connection refusals while brokers come up are expected, not news.
    admin = AdminClient(client_config(kafka, logger=quiet, error_cb=lambda _err: None))
    deadline = time.monotonic() + timeout
    seen = "no metadata answer yet"
    while True:
        try:
            metadata = admin.list_topics(timeout=max(1.0, min(5.0, deadline - time.monotonic())))
        except KafkaException as exc:
            seen = f"metadata request failed: {exc}"
        else:
            listed = set(metadata.brokers)
            if len(listed) >= brokers and ids <= listed and metadata.controller_id >= 0:
                return None
            seen = f"brokers {sorted(listed)}, controller {metadata.controller_id}"
        if time.monotonic() >= deadline:
            return seen
        time.sleep(0.25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="host:port[,host:port...]")
    parser.add_argument("--brokers", type=int, default=1, help="at least this many brokers")
    parser.add_argument("--ids", default="", help="node ids that must be listed, e.g. 2 or 1,3")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds")
    parser.add_argument("--username", help="the SASL/SCRAM principal to ask as")
    parser.add_argument("--password-file", type=Path, help="its password (a 0600 file)")
    args = parser.parse_args()
    ids = {int(part) for part in args.ids.split(",") if part}
    kafka = KafkaEndpoint(args.bootstrap)
    if args.username:
        kafka = kafka.as_user(args.username, read_password(args.password_file))
    problem = wait_for_brokers(kafka, args.brokers, ids, args.timeout)
    if problem is not None:
        print(f"kafka not ready after {args.timeout:.0f}s: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
