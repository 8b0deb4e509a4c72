"""The in-process runner: every service's handlers wired to one in-memory registry.

It plays the parts Kafka and the relay play in production: a submission goes to the
services whose FLOW handles `AdapterTrained`, and every event the registry commits is
delivered, in commit order, to every service whose FLOW handles its type. Each service
commits through a guard that refuses an event its FLOW does not declare, so the journey
test also proves the flow map. Timers (the activator's rounds, the archiver's sweep) run
when the test calls them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from infra.flow import FLOWS
from shared.flow import ServiceFlow
from shared.kafka.dispatch import Handler
from shared.lifecycle import LifecycleEvent
from shared.registry.memory import InMemoryRegistry
from shared.registry.port import Committed, Registry, Step


class UndeclaredCommit(AssertionError):
    """A service committed an event its FLOW does not say it may emit."""


class GuardedRegistry:
    """The shared registry as one service sees it: commits checked against its FLOW."""

    def __init__(self, inner: InMemoryRegistry, flow: ServiceFlow) -> None:
        self._inner = inner
        self._flow = flow

    async def commit(
        self, steps: Sequence[Step], *, inbox: tuple[str, str] | None = None
    ) -> Committed:
        undeclared = self._flow.undeclared(s.event for s in steps)
        if undeclared:
            raise UndeclaredCommit(f"{self._flow.service} committed {undeclared}")
        return await self._inner.commit(steps, inbox=inbox)

    async def transition(
        self, event: LifecycleEvent, expected_version: int | None = None
    ) -> Committed:
        return await self.commit([Step(event, expected_version)])

    def __getattr__(self, name: str) -> Any:  # every read goes to the shared registry
        return getattr(self._inner, name)


Wire = Callable[[Registry], Mapping[type, Handler]]


@dataclass
class InProcessFlow:
    """Route messages to handlers as the topics would, until nothing new is committed."""

    registry: InMemoryRegistry
    handlers: dict[str, Mapping[type, Handler]] = field(default_factory=dict)
    delivered: int = 0  # how much of the outbox has been handed to the services
    log: list[tuple[str, str]] = field(default_factory=list)  # (service, message type)

    @classmethod
    def wire(
        cls,
        registry: InMemoryRegistry,
        services: Mapping[str, Wire],
        flows: Sequence[ServiceFlow] = FLOWS,
    ) -> InProcessFlow:
        """`services[name](registry)` builds that service's handler map on its guarded view."""
        by_name = {f.service: f for f in flows}
        runner = cls(registry)
        for name, wire in services.items():
            flow = by_name[name]
            built = wire(GuardedRegistry(registry, flow))
            assert set(built) == set(flow.handles), f"{name}: handler map differs from its FLOW"
            runner.handlers[name] = built
        return runner

    def guarded(self, service: str) -> Registry:
        """The registry as `service` commits to it outside a handler (HTTP, timers)."""
        flow = next(f for f in FLOWS if f.service == service)
        return cast(Registry, GuardedRegistry(self.registry, flow))  # structurally one

    async def publish(self, message: object) -> None:
        """Deliver one message (a submission or a command), then everything it causes."""
        await self._deliver(message)
        await self.settle()

    async def settle(self) -> None:
        """Deliver committed events in order until the outbox has nothing new."""
        while self.delivered < len(self.registry.outbox):
            entry = self.registry.outbox[self.delivered]
            self.delivered += 1
            await self._deliver(self.registry.codec.decode(entry.payload))

    async def after(self, action: Awaitable[Any]) -> Any:
        """Run a timer's round or an HTTP-driven call, then deliver what it committed."""
        result = await action
        await self.settle()
        return result

    async def _deliver(self, message: object) -> None:
        for service, handlers in self.handlers.items():
            handler = handlers.get(type(message))
            if handler is not None:
                self.log.append((service, type(message).__name__))
                await handler(message)
