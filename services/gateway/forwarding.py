"""The replicas behind the gateway: which one takes a request (least in flight, turns
taken among equals), and the answer of the first that can serve it.

A replica that refuses the connection is skipped; so is one that answers 404 for a
revision (not loaded there). Once a replica has the request, a failure is not retried
elsewhere: it may have generated already, and the client sees the failure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import httpx

from services.gateway.telemetry import UNREACHABLE

_NOT_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class NoReplica(Exception):
    """No replica could take the request: the answer the client gets, and the error code
    counted against the revision."""

    def __init__(self, status: int, message: str, error_code: str) -> None:
        super().__init__(message)
        self.status, self.message, self.error_code = status, message, error_code


@dataclass
class Upstream:
    """A replica's answer, headers read, body still to come."""

    replica: str
    response: httpx.Response
    pool: ReplicaPool

    async def close(self) -> None:
        await self.response.aclose()
        self.pool.release(self.replica)


class ReplicaPool:
    def __init__(self, urls: Sequence[str], client: httpx.AsyncClient) -> None:
        self.urls = tuple(urls)
        self.client = client
        self._in_flight = dict.fromkeys(self.urls, 0)
        self._turn = 0

    def order(self) -> list[str]:
        """Every replica, least busy first; equals in turn, so load spreads when idle."""
        start, self._turn = self._turn % len(self.urls), self._turn + 1
        rotated = self.urls[start:] + self.urls[:start]
        return sorted(rotated, key=self._in_flight.__getitem__)  # stable: keeps the turn

    def release(self, url: str) -> None:
        self._in_flight[url] -= 1

    async def open(
        self, path: str, body: bytes, headers: Mapping[str, str], *, revision: str | None
    ) -> Upstream:
        """The first usable answer to `POST path`. `revision`: the lora name asked for,
        whose 404 means "not loaded here, ask the next"."""
        not_loaded = 0
        for url in self.order():
            self._in_flight[url] += 1
            request = self.client.build_request("POST", url + path, content=body, headers=headers)
            try:
                response = await self.client.send(request, stream=True)
            except _NOT_CONNECTED:
                self.release(url)
                continue
            except httpx.TransportError as exc:
                self.release(url)
                raise NoReplica(502, f"replica {url} failed: {exc!r}", UNREACHABLE) from exc
            if response.status_code == 404 and revision is not None:
                await response.aclose()
                self.release(url)
                not_loaded += 1
                continue
            return Upstream(url, response, self)
        if not_loaded:
            raise NoReplica(
                503, f"revision {revision} is not loaded on any reachable replica", "503"
            )
        raise NoReplica(503, "no replica is reachable", UNREACHABLE)
