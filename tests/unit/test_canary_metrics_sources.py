"""Canary analysis reads a metrics source: replicas (the default), a gateway's `/metrics` or a
Prometheus server's HTTP API. Each gives the same per-origin counters the analysis diffs; a
gateway or Prometheus that cannot be read raises `MetricsUnavailable`, and the step holds."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from services.activator.metrics import (
    GATEWAY,
    REPLICA,
    Counters,
    parse_metrics,
)
from services.activator.metrics_sources import (
    PrometheusMetrics,
    gateway_metrics,
    gateway_pages,
    parse_vector,
    prometheus_queries,
    snapshot_of_vectors,
)
from services.activator.ports import MetricsUnavailable, TargetError
from services.gateway.telemetry import GatewayTelemetry

GATEWAY_URL = "http://gateway:8600/metrics"
PROMETHEUS_URL = "http://prometheus:9090"


def gateway_text(*served: tuple[str, str, float, int | None]) -> str:
    """What a gateway exports after forwarding `served` (model, target, seconds, error code),
    under the names and labels the gateway exports."""
    registry = CollectorRegistry()
    labels = ("model_name", "target_model_name")
    requests = Counter("inference_model_request_total", "", labels, registry=registry)
    errors = Counter(
        "inference_model_request_error_total", "", (*labels, "error_code"), registry=registry
    )
    duration = Histogram(
        "inference_model_request_duration_seconds",
        "",
        labels,
        buckets=(0.05, 0.5, 5.0),
        registry=registry,
    )
    for model, target, seconds, code in served:
        requests.labels(model, target).inc()
        duration.labels(model, target).observe(seconds)
        if code is not None:
            errors.labels(model, target, str(code)).inc()
    return generate_latest(registry).decode()


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        ([], {}),
        (
            [("a", "a@1", 0.01, None), ("a", "a@1", 1.0, 503), ("a", "a@2", 0.01, None)],
            {
                "a@1": Counters(2, 1, ((0.05, 1), (0.5, 1), (5.0, 2), (math.inf, 2))),
                "a@2": Counters(1, 0, ((0.05, 1), (0.5, 1), (5.0, 1), (math.inf, 1))),
            },
        ),
        (  # errors of every code and transport failures add up per target
            [("a", "a@1", 0.01, 500), ("a", "a@1", 0.01, 502), ("b", "b@1", 9.0, None)],
            {
                "a@1": Counters(2, 2, ((0.05, 2), (0.5, 2), (5.0, 2), (math.inf, 2))),
                "b@1": Counters(1, 0, ((0.05, 0), (0.5, 0), (5.0, 0), (math.inf, 1))),
            },
        ),
    ],
)
def test_a_gateway_export_parses_into_counters_per_target_model(
    served: list[tuple[str, str, float, int | None]], expected: dict[str, Counters]
) -> None:
    assert parse_metrics(gateway_text(*served), GATEWAY) == expected


def test_the_gateways_own_export_reads_as_the_revisions_counters() -> None:
    """The contract with services/gateway: its telemetry, as it records a request, is what
    the gateway source and the Prometheus queries read."""
    telemetry = GatewayTelemetry()
    for failed in (False, False, True):
        telemetry.requests.labels("a", "a@1").inc()
        telemetry.duration.labels("a", "a@1").observe(0.02)
        if failed:
            telemetry.fail("a", "a@1", 502)
    telemetry.generation.labels("prod").set(3)

    [(target, counters)] = parse_metrics(telemetry.exposition().decode(), GATEWAY).items()

    assert (target, counters.requests, counters.errors) == ("a@1", 3, 1)
    assert dict(counters.buckets)[0.025] == 3 and dict(counters.buckets)[math.inf] == 3


def test_the_replica_names_read_nothing_of_a_gateway_export_nor_the_gateway_names_a_replicas() -> (
    None
):
    text = gateway_text(("a", "a@1", 0.01, None))
    assert parse_metrics(text, REPLICA) == {}
    assert parse_metrics('lora_requests_total{lora="a@1",adapter="a"} 3\n', GATEWAY) == {}


@pytest.mark.parametrize(
    ("environment", "label", "expected"),
    [
        (
            "staging",
            "environment",
            {
                "requests": "sum by (instance, target_model_name) "
                '(inference_model_request_total{environment="staging"})',
                "errors": "sum by (instance, target_model_name) "
                '(inference_model_request_error_total{environment="staging"})',
                "buckets": "sum by (instance, target_model_name, le) "
                '(inference_model_request_duration_seconds_bucket{environment="staging"})',
            },
        ),
        (  # quotes and backslashes cannot break out of the label matcher
            'pro"d\\x',
            "env",
            {
                "requests": "sum by (instance, target_model_name) "
                '(inference_model_request_total{env="pro\\"d\\\\x"})',
                "errors": "sum by (instance, target_model_name) "
                '(inference_model_request_error_total{env="pro\\"d\\\\x"})',
                "buckets": "sum by (instance, target_model_name, le) "
                '(inference_model_request_duration_seconds_bucket{env="pro\\"d\\\\x"})',
            },
        ),
    ],
)
def test_the_prometheus_queries_select_the_environment_and_keep_instances_apart(
    environment: str, label: str, expected: dict[str, str]
) -> None:
    assert prometheus_queries(environment, GATEWAY, label) == expected


def vector(*samples: tuple[dict[str, str], str]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": m, "value": [1700000000.0, v]} for m, v in samples],
        },
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "parse error"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "not a vector"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{}]}}, "unreadable"),
        ([], "query failed"),
    ],
)
def test_an_error_answer_or_an_unreadable_one_is_unavailable_not_empty(
    body: Any, message: str
) -> None:
    with pytest.raises(MetricsUnavailable, match=message) as raised:
        parse_vector(body, PROMETHEUS_URL)
    assert not raised.value.unreachable and raised.value.retryable


def test_the_query_answers_make_one_origin_per_scraped_instance() -> None:
    target = {"target_model_name": "a@1"}
    vectors = {
        "requests": parse_vector(
            vector(({**target, "instance": "g1:1"}, "10"), ({**target, "instance": "g2:1"}, "4")),
            PROMETHEUS_URL,
        ),
        "errors": parse_vector(vector(({**target, "instance": "g1:1"}, "2")), PROMETHEUS_URL),
        "buckets": parse_vector(
            vector(
                ({**target, "instance": "g1:1", "le": "0.5"}, "7"),
                ({**target, "instance": "g1:1", "le": "+Inf"}, "10"),
            ),
            PROMETHEUS_URL,
        ),
    }

    assert snapshot_of_vectors(PROMETHEUS_URL, vectors) == {
        f"{PROMETHEUS_URL}#g1:1": {"a@1": Counters(10, 2, ((0.5, 7), (math.inf, 10)))},
        f"{PROMETHEUS_URL}#g2:1": {"a@1": Counters(4, 0, ())},
    }


Handler = Callable[[httpx.Request], httpx.Response]


def client_of(handler: Handler) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


class Page:
    """A gateway as the catalogue gives it: a URL and its `/metrics` text, or an outage."""

    def __init__(self, url: str, text: str | Exception) -> None:
        self.url, self.text = url, text

    async def metrics(self) -> str:
        if isinstance(self.text, Exception):
            raise self.text
        return self.text


def catalogue_of(*pages: Page) -> Callable[[str], Awaitable[list[Page]]]:
    async def gateways(environment: str) -> list[Page]:
        return list(pages) if environment == "prod" else []

    return gateways


async def test_a_gateway_source_reads_every_catalogued_gateway_of_the_environment() -> None:
    one, two = gateway_text(("a", "a@1", 0.01, None)), gateway_text(("a", "a@2", 0.01, 500))
    source = gateway_metrics(catalogue_of(Page("http://g1", one), Page("http://g2", two)))

    assert await source.snapshot("prod") == {
        "http://g1": parse_metrics(one, GATEWAY),
        "http://g2": parse_metrics(two, GATEWAY),
    }


async def test_a_gateway_that_is_away_is_left_out_while_another_answers() -> None:
    text = gateway_text(("a", "a@1", 0.01, None))
    away = TargetError("http://g2", "refused", retryable=True, unreachable=True)
    source = gateway_metrics(catalogue_of(Page("http://g1", text), Page("http://g2", away)))

    assert await source.snapshot("prod") == {"http://g1": parse_metrics(text, GATEWAY)}


@pytest.mark.parametrize(
    ("pages", "unreachable", "message"),
    [
        ((), False, "no gateway for 'prod'"),
        (
            (
                Page(
                    "http://g1",
                    TargetError("http://g1", "refused", retryable=True, unreachable=True),
                ),
            ),
            True,
            "refused",
        ),
        ((Page("http://g1", "<html>a login page</html>\n"),), False, "invalid metric name"),
    ],
)
async def test_a_gateway_source_none_of_whose_gateways_can_be_read_raises(
    pages: tuple[Page, ...], unreachable: bool, message: str
) -> None:
    source = gateway_metrics(catalogue_of(*pages))
    with pytest.raises(MetricsUnavailable, match=message) as raised:
        await source.snapshot("prod")
    assert raised.value.unreachable is unreachable


async def test_a_gateway_page_named_by_the_setting_is_read_instead_of_the_catalogued_ones() -> None:
    text = gateway_text(("a", "a@1", 0.01, None))
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, text=text)

    catalogued = catalogue_of(Page("http://g1", "unused"))
    urls = {"prod": GATEWAY_URL, "*": "http://other/metrics"}
    source = gateway_metrics(gateway_pages(catalogued, urls, client_of(answer)))

    assert await source.snapshot("prod") == {GATEWAY_URL: parse_metrics(text, GATEWAY)}
    assert await source.snapshot("staging") == {
        "http://other/metrics": parse_metrics(text, GATEWAY)
    }
    assert asked == [GATEWAY_URL, "http://other/metrics"]


async def test_without_a_page_named_for_it_an_environment_reads_its_catalogued_gateways() -> None:
    text = gateway_text(("a", "a@1", 0.01, None))
    pages = gateway_pages(catalogue_of(Page("http://g1", text)), {}, client_of(refused))
    assert await gateway_metrics(pages).snapshot("prod") == {
        "http://g1": parse_metrics(text, GATEWAY)
    }


@pytest.mark.parametrize(
    ("handler", "unreachable"),
    [
        (refused, True),
        (lambda _: httpx.Response(503, text="restarting"), True),
        (lambda _: httpx.Response(404, text="no such path"), False),
    ],
)
async def test_a_gateway_page_that_cannot_be_read_makes_the_source_raise(
    handler: Handler, unreachable: bool
) -> None:
    pages = gateway_pages(catalogue_of(), {"*": GATEWAY_URL}, client_of(handler))
    with pytest.raises(MetricsUnavailable) as raised:
        await gateway_metrics(pages).snapshot("prod")
    assert raised.value.unreachable is unreachable


async def test_a_prometheus_source_asks_three_instant_queries_at_one_instant() -> None:
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        asked.append(params)
        samples = {
            "requests": vector(({"instance": "g:1", "target_model_name": "a@1"}, "5")),
            "errors": vector(),
            "buckets": vector(({"instance": "g:1", "target_model_name": "a@1", "le": "+Inf"}, "5")),
        }
        kind = next(k for k, q in prometheus_queries("prod").items() if q == params["query"])
        return httpx.Response(200, json=samples[kind])

    source = PrometheusMetrics(PROMETHEUS_URL + "/", client_of(answer))

    assert await source.snapshot("prod") == {
        f"{PROMETHEUS_URL}#g:1": {"a@1": Counters(5, 0, ((math.inf, 5),))}
    }
    assert sorted(p["query"] for p in asked) == sorted(prometheus_queries("prod").values())
    assert len({p["time"] for p in asked}) == 1


@pytest.mark.parametrize(
    ("handler", "unreachable"),
    [
        (refused, True),
        (lambda _: httpx.Response(503, text="Service Unavailable"), True),
        (
            lambda _: httpx.Response(
                400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
            ),
            False,
        ),
        (lambda _: httpx.Response(200, text="<html>not the API</html>"), False),
    ],
)
async def test_a_prometheus_that_is_down_or_answers_an_error_makes_the_source_raise(
    handler: Handler, unreachable: bool
) -> None:
    source = PrometheusMetrics(PROMETHEUS_URL, client_of(handler))
    with pytest.raises(MetricsUnavailable) as raised:
        await source.snapshot("prod")
    assert raised.value.unreachable is unreachable
