"""The gateway's metrics in Prometheus text, named and labelled as the Gateway API Inference
Extension names them: per logical model (`model_name`) and per revision it was forwarded
to (`target_model_name`), so canary analysis reads the same series on any replica kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
TOKEN_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
LABELS = ("model_name", "target_model_name")
UNREACHABLE = "unreachable"  # the error code of a transport failure


class GatewayTelemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "inference_model_request_total", "requests forwarded", LABELS, registry=registry
        )
        self.errors = Counter(
            "inference_model_request_error_total",
            "requests that failed on the serving side: a replica's 5xx (its status) or a "
            "transport failure (unreachable); never a client's 4xx",
            (*LABELS, "error_code"),
            registry=registry,
        )
        self.duration = Histogram(
            "inference_model_request_duration_seconds",
            "time from the request to the answer's last byte",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.first_token = Histogram(
            "inference_model_time_to_first_token_seconds",
            "time from a streamed request to its first chunk",
            LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.input_tokens = Histogram(
            "inference_model_input_tokens",
            "prompt tokens, from the answer's usage",
            LABELS,
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.output_tokens = Histogram(
            "inference_model_output_tokens",
            "completion tokens, from the answer's usage",
            LABELS,
            buckets=TOKEN_BUCKETS,
            registry=registry,
        )
        self.generation = Gauge(
            "gateway_routing_generation",
            "generation of the routing document applied",
            ("environment",),
            registry=registry,
        )

    def observe_usage(self, model: str, target: str, usage: Mapping[str, Any] | None) -> None:
        if not isinstance(usage, Mapping):
            return
        for key, histogram in (
            ("prompt_tokens", self.input_tokens),
            ("completion_tokens", self.output_tokens),
        ):
            if isinstance(count := usage.get(key), int):
                histogram.labels(model, target).observe(count)

    def fail(self, model: str, target: str, code: int | str) -> None:
        self.errors.labels(model, target, str(code)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
