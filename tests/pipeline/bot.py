"""Following the lifecycle topic as it grows, and an approver bot on top of it: a principal
other than the submitter who approves every passed evaluation over the approval service's
HTTP API the moment RevisionEvaluated arrives, retrying while that service is down or has
not yet projected the evaluation."""

from __future__ import annotations

import hashlib
import heapq
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
from confluent_kafka import Consumer

from shared.codec import Codec
from shared.events import RevisionEvaluated, RevisionRegistered
from shared.kafka.auth import Kafka, client_config
from tests.pipeline.outcomes import Seen


def seen_of(codec: Codec, value: bytes) -> Seen:
    event = codec.decode(value)
    envelope = event.envelope
    return Seen(
        event_id=envelope.event_id,
        event_type=type(event).__name__,
        adapter=envelope.adapter,
        revision=envelope.revision,
        environment=envelope.environment,
        seq=envelope.seq,
        payload_digest=hashlib.sha256(value).hexdigest(),
    )


@dataclass(order=True)
class Ballot:
    due: float
    adapter: str = field(compare=False)
    revision: str = field(compare=False)
    environment: str = field(compare=False)
    manifest_digest: str = field(compare=False)
    report_digest: str = field(compare=False)
    attempts: int = field(default=0, compare=False)


class Follower(threading.Thread):
    """Every record of the lifecycle topic, in arrival order, as `Seen`; RevisionEvaluated
    (first copy of each) also handed to the approver."""

    def __init__(self, bootstrap_servers: Kafka, topic: str, approver: Approver) -> None:
        super().__init__(name="lifecycle-follower", daemon=True)
        self.topic = topic
        self.approver = approver
        self.records: list[Seen] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.consumer = Consumer(
            {
                **client_config(bootstrap_servers),
                "group.id": f"drill-follower-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 20,
            }
        )

    def snapshot(self) -> list[Seen]:
        with self.lock:
            return list(self.records)

    def run(self) -> None:
        codec = Codec.from_env()
        manifests: dict[tuple[str, str], str] = {}
        ids: set[str] = set()
        self.consumer.subscribe([self.topic])
        try:
            while not self.stopping.is_set():
                msg = self.consumer.poll(0.1)
                if msg is None:
                    continue
                if msg.error():
                    self.errors.append(str(msg.error()))  # transient on a broker's loss
                    continue
                value = msg.value() or b""
                seen = seen_of(codec, value)
                with self.lock:
                    self.records.append(seen)
                if seen.event_id in ids:
                    continue
                ids.add(seen.event_id)
                event = codec.decode(value)
                key = (seen.adapter, seen.revision)
                if isinstance(event, RevisionRegistered):
                    manifests[key] = event.manifest_digest
                elif isinstance(event, RevisionEvaluated) and key in manifests:
                    self.approver.enqueue(
                        Ballot(
                            time.monotonic(),
                            seen.adapter,
                            seen.revision,
                            seen.environment,
                            manifests[key],
                            event.report_digest,
                        )
                    )
        finally:
            self.consumer.close()


class Approver(threading.Thread):
    """Casts one approving ballot per evaluation; retries what the service could not take yet."""

    RETRY = frozenset({"not-awaiting-decision", "conflict"})  # projection lag, a race
    DONE = frozenset({"already-decided"})  # decided before a crash: nothing left to do

    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(name="approver-bot", daemon=True)
        self.base_url = base_url
        self.token = token
        self.queue: list[Ballot] = []
        self.wake = threading.Condition()
        self.stopping = threading.Event()
        self.counts: Counter[str] = Counter()
        self.failures: dict[str, str] = {}  # adapter -> why the bot gave up on it

    def enqueue(self, ballot: Ballot) -> None:
        with self.wake:
            heapq.heappush(self.queue, ballot)
            self.wake.notify()

    def stop(self) -> None:
        self.stopping.set()
        with self.wake:
            self.wake.notify()

    def _next(self) -> Ballot | None:
        with self.wake:
            while not self.stopping.is_set():
                now = time.monotonic()
                if self.queue and self.queue[0].due <= now:
                    return heapq.heappop(self.queue)
                self.wake.wait(min(0.5, self.queue[0].due - now) if self.queue else 0.5)
        return None

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base_url, headers=headers, timeout=30) as client:
            while (ballot := self._next()) is not None:
                outcome = self._cast(client, ballot)
                self.counts[outcome] += 1
                if outcome.startswith("retry"):
                    ballot.attempts += 1
                    ballot.due = time.monotonic() + min(1.0, 0.1 * ballot.attempts)
                    self.enqueue(ballot)

    def _cast(self, client: httpx.Client, ballot: Ballot) -> str:
        path = (
            f"/api/v1/environments/{ballot.environment}/revisions/"
            f"{ballot.adapter}/{ballot.revision}/decisions"
        )
        body = {
            "decision": "approve",
            "comment": "approved by the drill's bot",
            "manifest_digest": ballot.manifest_digest,
            "report_digest": ballot.report_digest,
        }
        try:
            response = client.post(path, json=body)
        except httpx.TransportError:
            return "retry: service unreachable"
        if response.status_code == 200:
            return "approved"
        if response.status_code >= 500:
            return f"retry: {response.status_code}"
        problem = response.json().get("type", "") if response.content else ""
        slug = str(problem).rsplit(":", 1)[-1]
        if slug in self.RETRY:
            return f"retry: {response.status_code} {slug}"
        if slug in self.DONE:
            return "already decided"
        self.failures[ballot.adapter] = f"{response.status_code} {response.text[:300]}"
        return "refused"
