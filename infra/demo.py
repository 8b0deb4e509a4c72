"""`make demo`: start the local stack and send an adapter's first event through it.

Today's journey: Kafka + PostgreSQL up, topics provisioned, one `AdapterTrained`
published by the training-cluster client path, read back from the broker and decoded.
Later stages (registry, validation, evaluation, approval, rollout, archive) extend it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared.codec import Codec  # noqa: E402
from shared.events import AdapterTrained, BaseModelRef, DataScope, TrainingRecipe  # noqa: E402
from shared.kafka.producer import make_producer, publish  # noqa: E402
from shared.kafka.reader import read_topic  # noqa: E402
from shared.kafka.topics import TRAINED, admin_client, catalogue, provision  # noqa: E402


def step(title: str) -> float:
    print(f"\n==> {title}", flush=True)
    return time.monotonic()


def done(started: float) -> None:
    print(f"    done in {time.monotonic() - started:.1f}s", flush=True)


def load_infra_env() -> dict[str, str]:
    values = {}
    for line in (REPO / "var" / "infra.env").read_text().splitlines():
        if "=" in line:
            key, _, value = line.removeprefix("export ").partition("=")
            values[key.strip()] = value.strip().strip("'\"")
    return values


def main() -> int:
    t = step("Starting Kafka (KRaft) and PostgreSQL with infra/up.sh")
    subprocess.run([str(REPO / "infra" / "up.sh")], check=True, cwd=REPO)
    env = load_infra_env()
    os.environ.update(env)
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    done(t)

    t = step("Provisioning topics")
    report = provision(admin_client(bootstrap), catalogue())
    print(f"    created: {report.created or 'none (already there)'}")
    done(t)

    t = step("A training cluster publishes AdapterTrained")
    event = AdapterTrained(
        event_id=str(uuid.uuid4()),
        adapter="support-summarizer",
        submitter="trainer@cluster-a",
        submitted_at=datetime.now(UTC),
        base_model=BaseModelRef(model_id="tiny-llama", revision="sha256:demo-base"),
        tokenizer_revision="tok-1",
        tokenizer_hash="sha256:demo-tokenizer",
        chat_template_hash="sha256:demo-template",
        quantization_profile="bf16",
        target_environments=["staging", "production"],
        recipe=TrainingRecipe(
            seed=1234,
            dataset_ids=["tickets-2026-q3"],
            hyperparameters={"rank": "8", "alpha": "16", "lr": "2e-4"},
        ),
        data_scope=DataScope(
            corpora=["support-tickets"],
            time_window_start="2026-07-01",
            time_window_end="2026-09-30",
            filtering_rules=["pii-scrubbed"],
        ),
        artifact_uri="file:///var/adapters/support-summarizer/run-42",
    )
    codec = Codec.from_env()
    delivered = publish(
        make_producer(bootstrap), TRAINED, key=event.adapter.encode(), value=codec.encode(event)
    )
    print(f"    stored at {TRAINED}[{delivered.partition()}]@{delivered.offset()}")
    done(t)

    t = step("Reading it back from the broker and decoding it")
    records = [
        r
        for r in read_topic(bootstrap, TRAINED)
        if r.partition == delivered.partition() and r.offset == delivered.offset()
    ]
    decoded = codec.decode(records[0].value or b"")
    assert decoded == event, "the broker returned different bytes"
    print(json.dumps(asdict(decoded), indent=2, default=str))
    done(t)

    print("\nThe stack is still running. Stop it with: make infra-down")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
