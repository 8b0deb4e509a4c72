"""Where adapterctl's audit commands read the lifecycle log from, and the errors it may hit."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import asyncpg
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from shared.audit import AuditReport, Entry, Position, read_entry, verify
from shared.bundle import Bundle, BundleError
from shared.bundle import read as read_bundle
from shared.codec import Codec
from shared.coldstore.directory import path_of
from shared.kafka.auth import KafkaEndpoint, client_config
from shared.kafka.reader import LogRecord, iter_topic
from shared.lifecycle import LifecycleEvent
from shared.logseal import CHECKPOINT_PREFIX
from shared.registry.migrate import migrate
from shared.registry.store import init_connection
from shared.schemas import SchemaCatalogue

T = TypeVar("T")

# (brokers as a principal, topic, timeout in seconds) -> every record from start to end.
Reader = Callable[[KafkaEndpoint, str, float], Iterable[LogRecord]]


class CliError(Exception):
    """What went wrong and what to do about it; adapterctl prints it and exits with 2."""


class CliRefusal(CliError):
    """The request was understood and refused (nothing to act on, already done, not
    allowed); adapterctl prints the reason and exits with 1, as the help promises."""


def read_kafka(kafka: KafkaEndpoint, topic: str, timeout_s: float) -> Iterable[LogRecord]:
    """Check quietly that the broker answers and has `topic`, then read it from the start.

    Without the check, librdkafka reports every failed connection attempt on stderr until
    the timeout. Listing all topics (not asking for one) never auto-creates it.
    """
    admin = AdminClient(client_config(kafka, logger=_QUIET))
    if topic not in admin.list_topics(timeout=timeout_s).topics:
        raise CliError(_missing(topic, kafka.bootstrap_servers))
    return iter_topic(kafka, topic, timeout_s=timeout_s)


def bundle_source(folder: Path, kafka: KafkaEndpoint, timeout_s: float) -> Source:
    """A Source that reads an auditor's bundle (`adapterctl audit export`) instead of Kafka."""
    try:
        bundle = read_bundle(folder)
    except BundleError as exc:
        raise CliError(str(exc)) from exc

    def read(_kafka: KafkaEndpoint, _topic: str, _timeout_s: float) -> Iterable[LogRecord]:
        return bundle.records

    return Source(read, kafka, bundle.topic, timeout_s, bundle=bundle, schemas=folder / "schemas")


def checkpoint_documents(location: str, topic: str) -> list[tuple[str, bytes]]:
    """Every `checkpoints/<topic>/*.json` under a cold storage directory, by name."""
    if "://" in location and not location.startswith("file://"):
        raise CliError(
            f"--checkpoints {location}: read checkpoints from a directory (copy "
            f"{CHECKPOINT_PREFIX}/{topic}/ out of object storage first)"
        )
    root = path_of(location) if location.startswith("file://") else Path(location)
    folder = root / CHECKPOINT_PREFIX / topic
    try:
        return [
            (f"{CHECKPOINT_PREFIX}/{topic}/{p.name}", p.read_bytes())
            for p in sorted(folder.glob("*.json"))
        ]
    except OSError as exc:
        raise CliError(f"cannot read checkpoints in {folder}: {exc}") from exc


def _missing(topic: str, bootstrap_servers: str) -> str:
    return (
        f"topic {topic!r} does not exist on {bootstrap_servers}: pass the lifecycle topic "
        "with --topic or set LIFECYCLE_TOPIC"
    )


def _quiet_logger() -> logging.Logger:
    quiet = logging.getLogger("adapterctl.librdkafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return quiet


_QUIET = _quiet_logger()


@dataclass(frozen=True, slots=True)
class Source:
    read: Reader
    kafka: KafkaEndpoint
    topic: str
    timeout_s: float
    database_url: str = ""  # the registry, for the commands that manage catalogues
    trained_topic: str = "adapters.trained.v1"  # where `submit` publishes
    bundle: Bundle | None = None  # --bundle: the log comes from an auditor's bundle
    schemas: Path | None = None  # decode with these schemas (a bundle's own)

    def entries(self, codec: Codec | None = None) -> list[Entry]:
        """Every record of the topic, decoded for the audit (bad records become error entries)."""
        if codec is None:
            codec = Codec(SchemaCatalogue.load(self.schemas)) if self.schemas else Codec.from_env()
        try:
            return [
                read_entry(
                    codec, Position(r.topic, r.partition, r.offset), r.key, r.value, r.headers
                )
                for r in self.read(self.kafka, self.topic, self.timeout_s)
            ]
        except KafkaException as exc:
            error = exc.args[0] if exc.args else exc
            detail = error.str() if isinstance(error, KafkaError) else str(error)
            if "not found" in detail:  # iter_topic's own check: the topic vanished meanwhile
                raise CliError(_missing(self.topic, self.kafka.bootstrap_servers)) from exc
            raise CliError(self._unreachable(detail)) from exc
        except TimeoutError as exc:
            raise CliError(self._unreachable(str(exc))) from exc

    def _unreachable(self, detail: str) -> str:
        return (
            f"cannot read {self.topic!r} from Kafka at {self.kafka.bootstrap_servers} ({detail}): "
            "check that the broker runs (infra/up.sh starts a local one) and that "
            "--bootstrap or KAFKA_BOOTSTRAP_SERVERS names it; --timeout waits longer"
        )


def audit(source: Source) -> AuditReport:
    """Read the whole topic and verify it: the report's accepted entries drop duplicates."""
    return verify(source.entries())


def accepted_events(report: AuditReport) -> list[LifecycleEvent]:
    """The chain's events in log order, each once, ready for `pointers.fold`."""
    return [entry.event for entry in report.accepted if entry.event is not None]


def with_registry(source: Source, work: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    """Run `work` against the registry (migrating it first), or a CliError."""

    async def go() -> T:
        try:
            conn = await asyncpg.connect(source.database_url, timeout=source.timeout_s)
        except (OSError, asyncpg.PostgresError) as exc:
            raise CliError(
                f"cannot reach the registry at {source.database_url} ({exc}): check DATABASE_URL "
                "and that PostgreSQL runs (infra/up.sh starts a local one)"
            ) from exc
        try:
            await migrate(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(
            source.database_url, min_size=1, max_size=2, init=init_connection
        )
        try:
            return await work(pool)
        finally:
            await pool.close()

    return asyncio.run(go())
