"""The replicas behind the gateway: which one takes a request (least in flight, turns
taken among equals), and the answer of the first that can serve it.

A replica that refuses the connection, or drops a pooled one before answering, is skipped;
so is one that answers 404 for a revision (not loaded there), and one that refuses the
gateway's own key (401, 403: the client's key is not what it refused, so the client never
sees that status). Once a replica has answered, a failure is not retried elsewhere: the
client sees it. aiohttp, for its C HTTP parser:
the relay's cost is mostly parsing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.gateway.telemetry import UNREACHABLE

# Not connected, or a pooled connection the replica closed before it read the request.
_NOT_TAKEN = (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError)
_TRANSPORT = (aiohttp.ClientError, TimeoutError)
_KEY_REFUSED = (401, 403)  # the replica's key (vLLM's --api-key) is not the gateway's


class NoReplica(Exception):
    """No replica could take the request: the answer the client gets, and the error code
    counted against the revision."""

    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


class ReplicaBroken(Exception):
    """The replica's answer broke off after its headers."""


@dataclass
class Upstream:
    """A replica's answer, headers read, body still to come."""

    replica: str
    response: aiohttp.ClientResponse
    replicas: ReplicaPool
    closed: bool = False

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def media_type(self) -> str:
        return self.response.headers.get("content-type", "application/json")

    async def read(self) -> bytes:
        try:
            return await self.response.read()
        except _TRANSPORT as exc:
            raise ReplicaBroken(f"replica {self.replica} failed: {exc!r}") from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, in whatever pieces the network gives."""
        try:
            async for chunk in self.response.content.iter_any():
                yield chunk
        except _TRANSPORT as exc:
            raise ReplicaBroken(f"replica {self.replica} failed: {exc!r}") from exc

    async def close(self) -> None:
        """Hand the connection back, once, however the answer ended."""
        if not self.closed:
            self.closed = True
            self.response.release()
            self.replicas.release(self.replica)


class ReplicaPool:
    def __init__(self, urls: Sequence[str], *, timeout_s: float) -> None:
        self.urls = tuple(urls)
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=5.0, sock_read=timeout_s)
        self._in_flight = dict.fromkeys(self.urls, 0)
        self._turn = 0
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """One pooled session, made in the running loop on first use."""
        if self._session is None:
            # Idle connections close before a uvicorn replica's 5 s keep-alive ends them.
            connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=4.0)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def order(self) -> list[str]:
        """Every replica, least busy first; equals in turn, so load spreads when idle."""
        start, self._turn = self._turn % len(self.urls), self._turn + 1
        rotated = self.urls[start:] + self.urls[:start]
        return sorted(rotated, key=self._in_flight.__getitem__)  # stable: keeps the turn

    def in_flight(self) -> dict[str, int]:
        return dict(self._in_flight)

    def release(self, url: str) -> None:
        self._in_flight[url] -= 1

    async def open(
        self, path: str, body: bytes, headers: Mapping[str, str], *, revision: str | None
    ) -> Upstream:
        """The first usable answer to `POST path`. `revision`: the lora name asked for,
        whose 404 means "not loaded here, ask the next"."""
        not_loaded, key_refused = 0, ""  # key_refused: the status of the last refusal
        for url in self.order():
            self._in_flight[url] += 1
            try:
                response = await self.session.post(url + path, data=body, headers=headers)
            except _NOT_TAKEN:
                self.release(url)
                continue
            except _TRANSPORT as exc:
                self.release(url)
                raise NoReplica(502, f"replica {url} failed: {exc!r}", UNREACHABLE) from exc
            skipped = response.status in _KEY_REFUSED or (
                response.status == 404 and revision is not None
            )
            if not skipped:
                return Upstream(url, response, self)
            response.release()
            self.release(url)
            if response.status in _KEY_REFUSED:
                key_refused = str(response.status)
            else:
                not_loaded += 1
        if not_loaded:
            raise NoReplica(
                503, f"revision {revision} is not loaded on any reachable replica", "503"
            )
        if key_refused:
            message = "the replicas refused the gateway's key (GATEWAY_REPLICA_KEY_FILE)"
            raise NoReplica(502, message, key_refused)
        raise NoReplica(503, "no replica is reachable", UNREACHABLE)

    async def get_json(self, url: str) -> Any:
        """A JSON document (the activator's routing), within 10 s."""
        async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as response:
            response.raise_for_status()
            return await response.json(content_type=None)
