"""Where canary analysis reads per-revision counters (the `MetricsSource` port): each
replica's `/metrics` (the default), a gateway's `/metrics`, or a Prometheus server's HTTP
API. Each gives the same snapshot, cumulative `Counters` by origin and then by lora name,
which `metrics.window` diffs against the step's baseline, so a counter that went down (a
replica or gateway restarted) counts from zero whichever source read it.

An unreachable replica is left out, as before; a gateway or a Prometheus server is the
only origin there is, so one that cannot be read raises `MetricsUnavailable` and the step
holds (the analysis round logs it), never passing on counters it did not see.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
import structlog

from services.activator.metrics import GATEWAY, Counters, Names, counters_of, parse_metrics
from services.activator.ports import MetricsUnavailable, ServingTarget

log = structlog.get_logger(__name__)
Snapshots = dict[str, dict[str, Counters]]
ANY_ENVIRONMENT = "*"


class ReplicaMetrics:
    """Each reachable replica's own `/metrics`, keyed by its URL (our replicas' names)."""

    def __init__(self, targets: Callable[[str], Awaitable[Sequence[ServingTarget]]]) -> None:
        self.targets = targets

    async def snapshot(self, environment: str) -> Snapshots:
        targets = await self.targets(environment)
        texts = await asyncio.gather(*(t.metrics() for t in targets), return_exceptions=True)
        scraped = {}
        for target, text in zip(targets, texts, strict=True):
            if isinstance(text, BaseException):
                log.warning("scrape_failed", url=target.url, error=str(text))
            else:
                scraped[target.url] = parse_metrics(text)
        return scraped


async def _get(client: httpx.AsyncClient, url: str, **params: str) -> httpx.Response:
    """The answer to a GET; MetricsUnavailable when none came or it is a server's error."""
    try:
        response = await client.get(url, params=params or None)
    except httpx.HTTPError as exc:
        raise MetricsUnavailable(url, f"no answer: {exc!r}", unreachable=True) from exc
    if response.status_code >= 500:
        raise MetricsUnavailable(
            url, f"answered {response.status_code}: {response.text[:200]}", unreachable=True
        )
    return response


class GatewayMetrics:
    """The environment's gateway's `/metrics`, keyed by its URL. `urls` maps each
    environment (or `*`, every other one) to its gateway's metrics URL: one gateway fronts
    one environment, and its series carry no environment label."""

    def __init__(self, urls: Mapping[str, str], client: httpx.AsyncClient) -> None:
        self.urls = dict(urls)
        self.client = client

    async def snapshot(self, environment: str) -> Snapshots:
        url = self.urls.get(environment) or self.urls.get(ANY_ENVIRONMENT)
        if not url:
            raise MetricsUnavailable(
                "(none)",
                f"no gateway metrics URL for environment {environment!r}",
                unreachable=False,
            )
        response = await _get(self.client, url)
        if response.status_code != 200:
            raise MetricsUnavailable(url, f"answered {response.status_code}", unreachable=False)
        try:
            return {url: parse_metrics(response.text, GATEWAY)}
        except ValueError as exc:  # not Prometheus text: a wrong URL, say
            raise MetricsUnavailable(url, f"unreadable metrics: {exc}", unreachable=False) from exc


def _quoted(value: str) -> str:
    """A PromQL string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def prometheus_queries(
    environment: str, names: Names = GATEWAY, environment_label: str = "environment"
) -> dict[str, str]:
    """The instant queries of the environment's cumulative counters, by kind. Summed per
    scraped instance, not across them, so one gateway restarting (its counters going down)
    resets only its own share, as a replica's restart does."""
    selector = f"{{{environment_label}={_quoted(environment)}}}"
    by = f"instance, {names.label}"
    return {
        "requests": f"sum by ({by}) ({names.requests}{selector})",
        "errors": f"sum by ({by}) ({names.errors}{selector})",
        "buckets": f"sum by ({by}, le) ({names.buckets}{selector})",
    }


def parse_vector(body: Any, url: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of each sample of an instant query's answer; MetricsUnavailable for
    an error answer or anything but a vector."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else None
        raise MetricsUnavailable(url, f"query failed: {error or body!r}", unreachable=False)
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise MetricsUnavailable(
            url, f"not a vector: {data.get('resultType')!r}", unreachable=False
        )
    try:
        return [(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise MetricsUnavailable(url, f"unreadable answer: {exc!r}", unreachable=False) from exc


def snapshot_of_vectors(
    origin: str, vectors: Mapping[str, list[tuple[dict[str, str], float]]], names: Names = GATEWAY
) -> Snapshots:
    """The snapshot from the answers to `prometheus_queries`, one origin per instance."""
    requests: dict[str, dict[str, float]] = {}
    errors: dict[str, dict[str, float]] = {}
    buckets: dict[str, dict[str, dict[float, float]]] = {}
    for kind, totals in (("requests", requests), ("errors", errors)):
        for labels, value in vectors.get(kind, []):
            instance, lora = labels.get("instance", ""), labels.get(names.label)
            if lora is not None:
                per = totals.setdefault(instance, {})
                per[lora] = per.get(lora, 0.0) + value
    for labels, value in vectors.get("buckets", []):
        instance, lora = labels.get("instance", ""), labels.get(names.label)
        if lora is not None and "le" in labels:
            per_lora = buckets.setdefault(instance, {}).setdefault(lora, {})
            per_lora[float(labels["le"])] = value
    instances = set(requests) | set(errors) | set(buckets)
    return {
        f"{origin}#{instance}": counters_of(
            requests.get(instance, {}), errors.get(instance, {}), buckets.get(instance, {})
        )
        for instance in sorted(instances)
    }


class PrometheusMetrics:
    """A Prometheus server that scrapes the gateways, asked over its HTTP API: instant
    queries of the cumulative counters whose `environment` label (a scrape target label)
    names the environment. Keyed `<server URL>#<instance>`."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        names: Names = GATEWAY,
        environment_label: str = "environment",
    ) -> None:
        self.url = url.rstrip("/")
        self.client = client
        self.names = names
        self.environment_label = environment_label

    async def _query(self, query: str, at: str) -> list[tuple[dict[str, str], float]]:
        endpoint = f"{self.url}/api/v1/query"
        response = await _get(self.client, endpoint, query=query, time=at)
        try:
            body = response.json()
        except ValueError as exc:
            raise MetricsUnavailable(
                endpoint, f"answered {response.status_code}, not JSON", unreachable=False
            ) from exc
        return parse_vector(body, endpoint)

    async def snapshot(self, environment: str) -> Snapshots:
        queries = prometheus_queries(environment, self.names, self.environment_label)
        at = f"{time.time():.3f}"  # one instant for all three: counts and buckets agree
        answers = await asyncio.gather(*(self._query(q, at) for q in queries.values()))
        return snapshot_of_vectors(self.url, dict(zip(queries, answers, strict=True)), self.names)
