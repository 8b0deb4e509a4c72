"""Where canary analysis reads per-revision counters (the `MetricsSource` port): each
replica's `/metrics` (the default), each of the environment's gateways' `/metrics`, or a
Prometheus server's HTTP API. Each gives the same snapshot, cumulative `Counters` by
origin and then by lora name, which `metrics.window` diffs against the step's baseline, so
a counter that went down (a replica or gateway restarted) counts from zero whichever
source read it.

An unreachable replica or gateway is left out, as a replica always was; but the gateways,
or the Prometheus server, are all the counters there are, so when none can be read the
source raises `MetricsUnavailable` and the step holds (the analysis round logs it), never
judged on counters nobody read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import structlog

from services.activator.metrics import (
    GATEWAY,
    REPLICA,
    Counters,
    Names,
    counters_of,
    parse_metrics,
)
from services.activator.ports import MetricsUnavailable, TargetError

log = structlog.get_logger(__name__)
Snapshots = dict[str, dict[str, Counters]]


class Exporter(Protocol):
    """A page of Prometheus text: a replica or a gateway (`ServingTarget.metrics`), or a
    `MetricsPage`."""

    @property
    def url(self) -> str: ...

    async def metrics(self) -> str: ...


Exporters = Callable[[str], Awaitable[Sequence[Exporter]]]


class ScrapedMetrics:
    """Each of the environment's exporters' own `/metrics`, keyed by its URL; one that
    cannot be read is left out, logged (`scrape_failed`). `required`: none at all, or none
    that answers, raises MetricsUnavailable (a gateway source: they are all there is)."""

    def __init__(self, exporters: Exporters, names: Names, *, required: bool, kind: str) -> None:
        self.exporters = exporters
        self.names = names
        self.required = required
        self.kind = kind

    async def snapshot(self, environment: str) -> Snapshots:
        exporters = await self.exporters(environment)
        texts = await asyncio.gather(*(e.metrics() for e in exporters), return_exceptions=True)
        scraped, failures = {}, []
        for exporter, text in zip(exporters, texts, strict=True):
            if not isinstance(text, BaseException):
                try:
                    scraped[exporter.url] = parse_metrics(text, self.names)
                    continue
                except ValueError as exc:  # not Prometheus text: a wrong URL, say
                    text = exc
            log.warning("scrape_failed", url=exporter.url, error=str(text))
            failures.append(text)
        if self.required and not scraped:
            urls = ", ".join(e.url for e in exporters) or "(none)"
            why = "; ".join(str(f) for f in failures) or f"no {self.kind} for {environment!r}"
            unreachable = bool(failures) and all(
                isinstance(f, TargetError) and f.unreachable for f in failures
            )
            raise MetricsUnavailable(urls, why, unreachable=unreachable)
        return scraped


def replica_metrics(replicas: Exporters) -> ScrapedMetrics:
    """Each reachable replica's `lora_*` series (our reference replica's; the default)."""
    return ScrapedMetrics(replicas, REPLICA, required=False, kind="replica")


def gateway_metrics(gateways: Exporters) -> ScrapedMetrics:
    """Each of the environment's gateways' `inference_model_*` series; one gateway fronts
    one environment, and its series carry no environment label."""
    return ScrapedMetrics(gateways, GATEWAY, required=True, kind="gateway")


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


@dataclass(frozen=True, slots=True)
class MetricsPage:
    """A `/metrics` page at a URL of its own (a gateway's, given by a setting)."""

    url: str
    client: httpx.AsyncClient

    async def metrics(self) -> str:
        response = await _get(self.client, self.url)
        if response.status_code != 200:
            raise MetricsUnavailable(
                self.url, f"answered {response.status_code}", unreachable=False
            )
        return response.text


ANY_ENVIRONMENT = "*"


def gateway_pages(
    catalogued: Exporters, urls: Mapping[str, str], client: httpx.AsyncClient
) -> Exporters:
    """The environment's gateways' pages: the `/metrics` URL `urls` names for it (or for
    `*`, every environment), else each gateway the catalogue puts in front of it."""

    async def pages(environment: str) -> Sequence[Exporter]:
        url = urls.get(environment) or urls.get(ANY_ENVIRONMENT)
        return [MetricsPage(url, client)] if url else await catalogued(environment)

    return pages


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
