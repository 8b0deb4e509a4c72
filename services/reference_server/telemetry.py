"""Per-revision serving metrics in Prometheus text: adapter requests, errors and latency
apart from the base model's, so an incident shows at once which one misbehaves."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Telemetry:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("adapter", "lora")
        self.lora_requests = Counter(
            "lora_requests", "requests answered by a LoRA revision", labels, registry=self.registry
        )
        self.lora_errors = Counter(
            "lora_request_errors",
            "requests a LoRA revision failed",
            labels,
            registry=self.registry,
        )
        self.lora_latency = Histogram(
            "lora_request_duration_seconds",
            "time to answer, per LoRA revision",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.base_requests = Counter(
            "base_requests",
            "requests answered by the base model",
            ("model",),
            registry=self.registry,
        )
        self.base_errors = Counter(
            "base_request_errors",
            "requests the base model failed",
            ("model",),
            registry=self.registry,
        )
        self.base_latency = Histogram(
            "base_request_duration_seconds",
            "time to answer, base model",
            ("model",),
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.loaded = Gauge("lora_adapters_loaded", "LoRA revisions loaded", registry=self.registry)
        self.unrouted = Counter(
            "lora_requests_unrouted",
            "requests for an adapter no loaded revision serves",
            ("adapter",),
            registry=self.registry,
        )

    def observe_lora(self, lora: str, seconds: float, *, failed: bool) -> None:
        adapter = lora.split("@", 1)[0]
        self.lora_requests.labels(adapter, lora).inc()
        self.lora_latency.labels(adapter, lora).observe(seconds)
        if failed:
            self.lora_errors.labels(adapter, lora).inc()

    def observe_base(self, model: str, seconds: float, *, failed: bool) -> None:
        self.base_requests.labels(model).inc()
        self.base_latency.labels(model).observe(seconds)
        if failed:
            self.base_errors.labels(model).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
