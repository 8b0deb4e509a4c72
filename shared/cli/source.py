"""Where adapterctl's audit commands read the lifecycle log from, and the errors it may hit."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from confluent_kafka import KafkaException

from shared.audit import AuditReport, Entry, Position, read_entry, verify
from shared.codec import Codec
from shared.kafka.reader import LogRecord, iter_topic
from shared.lifecycle import LifecycleEvent

# (bootstrap servers, topic, timeout in seconds) -> every record from the beginning to the end.
Reader = Callable[[str, str, float], Iterable[LogRecord]]


class CliError(Exception):
    """What went wrong and what to do about it; adapterctl prints it and exits with 2."""


def read_kafka(bootstrap_servers: str, topic: str, timeout_s: float) -> Iterable[LogRecord]:
    return iter_topic(bootstrap_servers, topic, timeout_s=timeout_s)


@dataclass(frozen=True, slots=True)
class Source:
    read: Reader
    bootstrap_servers: str
    topic: str
    timeout_s: float

    def entries(self, codec: Codec | None = None) -> list[Entry]:
        """Every record of the topic, decoded for the audit (bad records become error entries)."""
        codec = codec or Codec.from_env()
        try:
            return [
                read_entry(codec, Position(r.topic, r.partition, r.offset), r.key, r.value)
                for r in self.read(self.bootstrap_servers, self.topic, self.timeout_s)
            ]
        except KafkaException as exc:
            detail = str(exc.args[0]) if exc.args else str(exc)
            if "not found" in detail:
                raise CliError(
                    f"topic {self.topic!r} does not exist on {self.bootstrap_servers}: pass the "
                    "lifecycle topic with --topic or set LIFECYCLE_TOPIC"
                ) from exc
            raise CliError(self._unreachable(detail)) from exc
        except TimeoutError as exc:
            raise CliError(self._unreachable(str(exc))) from exc

    def _unreachable(self, detail: str) -> str:
        return (
            f"cannot read {self.topic!r} from Kafka at {self.bootstrap_servers} ({detail}): "
            "check that the broker runs (infra/up.sh starts a local one) and that "
            "--bootstrap or KAFKA_BOOTSTRAP_SERVERS names it; --timeout waits longer"
        )


def audit(source: Source) -> AuditReport:
    """Read the whole topic and verify it: the report's accepted entries drop duplicates."""
    return verify(source.entries())


def accepted_events(report: AuditReport) -> list[LifecycleEvent]:
    """The chain's events in log order, each once, ready for `pointers.fold`."""
    return [entry.event for entry in report.accepted if entry.event is not None]
