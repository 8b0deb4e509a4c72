"""The flow in code: what each service consumes, handles and may commit.

Each service declares one `FLOW` beside its handler map (`services/<name>/handlers.py`);
`infra/flow.py` assembles them into the map the README's services table and diagram are
generated from, and the in-process runner (tests/inprocess.py) refuses a commit of an
event its service did not declare.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from shared.settings import KernelSettings


class Topic(StrEnum):
    """The logical topics; settings name the real ones."""

    TRAINED = "trained"
    LIFECYCLE = "lifecycle"
    COMMANDS = "commands"

    def name_in(self, settings: KernelSettings) -> str:
        topics = {
            Topic.TRAINED: settings.trained_topic,
            Topic.LIFECYCLE: settings.lifecycle_topic,
            Topic.COMMANDS: settings.commands_topic,
        }
        return topics[self]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceFlow:
    """One service's place in the flow."""

    service: str
    consumes: tuple[Topic, ...]
    handles: tuple[type, ...]  # the message types of its handler map
    emits: tuple[type, ...]  # the lifecycle events it may commit through the registry
    inputs: tuple[str, ...] = ()  # what else drives it (HTTP, a timer), for the docs

    @property
    def command(self) -> str:
        return f"python -m services.{self.service}"

    def topics(self, settings: KernelSettings) -> list[str]:
        """The real topic names this service consumes, in the order it declares them."""
        return [topic.name_in(settings) for topic in self.consumes]

    def undeclared(self, committed: Iterable[object]) -> list[str]:
        """Names of committed events this service did not declare it may emit."""
        return [type(e).__name__ for e in committed if not isinstance(e, self.emits)]


def handled_by(flows: Sequence[ServiceFlow], message_type: type) -> list[str]:
    """The services with a handler for `message_type`, in the map's order."""
    return [f.service for f in flows if message_type in f.handles]
