"""The source canary analysis reads, as the analysis sees it: a canary expands on a
gateway-like source's counters, holds while the source is away, and counts a step begun
then from the source's first read; and the composition root wires the source the
settings name (replicas by default, unchanged)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from services.activator.canary import tick
from services.activator.main import metrics_source
from services.activator.metrics import Counters, snapshot_from_json, snapshot_to_json
from services.activator.metrics_sources import PrometheusMetrics, ScrapedMetrics
from services.activator.ports import MetricsUnavailable
from services.activator.routing import lora_name
from services.activator.settings import ActivatorSettings
from shared.events import CanaryExpanded
from shared.settings import SettingsError
from tests.unit.test_activator_handlers import ADAPTER, ENV, Rollout
from tests.unit.test_canary_metrics_sources import (
    GATEWAY_URL,
    PROMETHEUS_URL,
    catalogue_of,
    client_of,
    refused,
)


class SettableSource:
    """A gateway-like source whose counters the test sets; `away` makes it unreadable."""

    def __init__(self) -> None:
        self.counters: dict[str, Counters] = {}
        self.away = False
        self.read = 0

    def serve(self, lora: str, requests: int, errors: int = 0) -> None:
        c = self.counters.get(lora, Counters())
        total = c.requests + requests
        self.counters[lora] = Counters(total, c.errors + errors, ((0.1, total), (math.inf, total)))

    async def snapshot(self, environment: str) -> dict[str, dict[str, Counters]]:
        self.read += 1
        if self.away:
            raise MetricsUnavailable(GATEWAY_URL, "connection refused", unreachable=True)
        return {GATEWAY_URL: dict(self.counters)}


QUICK = {"min_samples": 20, "step_interval_s": 0}


async def read_from_source(
    tmp_path: Path, *, away_at_start: bool = False
) -> tuple[Rollout, SettableSource, str]:
    """A rollout whose analysis reads a settable source, an active revision and a canary
    (its step begun while the source was away when `away_at_start`)."""
    rollout = Rollout(tmp_path, analysis=QUICK)
    source = SettableSource()
    rollout.world.deps.fleet.metrics = source
    await rollout.active(b"one")
    source.away = away_at_start
    canary = await rollout.canary(b"two")
    source.away = False
    return rollout, source, canary


async def test_a_canary_expands_on_a_gateway_sources_counters_not_the_replicas(
    tmp_path: Path,
) -> None:
    rollout, source, canary = await read_from_source(tmp_path)

    source.serve(lora_name(ADAPTER, canary), 25)
    await tick(rollout.world.deps)

    [expanded] = await rollout.since_mark()
    assert isinstance(expanded, CanaryExpanded)
    assert source.read >= 2  # the step's baseline, then its judging


async def test_a_gateway_source_that_is_away_holds_the_step_with_no_verdict(
    tmp_path: Path,
) -> None:
    rollout, source, canary = await read_from_source(tmp_path)
    source.serve(lora_name(ADAPTER, canary), 25, errors=25)  # would roll back if read
    source.away = True

    await tick(rollout.world.deps)
    await tick(rollout.world.deps)

    assert await rollout.since_mark() == []
    assert (await rollout.pointer()).canary == canary
    [row] = await rollout.world.store.canary_rows(ADAPTER, ENV)
    assert row["last_decision"]["decision"] == "hold"


async def test_a_step_begun_while_the_source_was_away_counts_from_its_first_read(
    tmp_path: Path,
) -> None:
    rollout, source, canary = await read_from_source(tmp_path, away_at_start=True)
    source.serve(lora_name(ADAPTER, canary), 400)  # served before the step's first read

    await tick(rollout.world.deps)  # the first read becomes the baseline
    source.serve(lora_name(ADAPTER, canary), 1)
    await tick(rollout.world.deps)

    assert await rollout.since_mark() == []
    [row] = await rollout.world.store.canary_rows(ADAPTER, ENV)
    assert row["last_decision"]["reason"] == "waiting for samples: 1 of 20"


def test_the_counters_of_a_snapshot_survive_the_steps_json_baseline() -> None:
    snapshot = {f"{PROMETHEUS_URL}#g:1": {"a@1": Counters(3, 1, ((0.5, 2), (math.inf, 3)))}}
    stored = json.loads(json.dumps(snapshot_to_json(snapshot)))
    assert snapshot_from_json(stored) == snapshot


@pytest.mark.parametrize(
    ("env", "kind"),
    [
        ({}, "replicas"),
        ({"ACTIVATOR_METRICS_SOURCE": "gateway"}, ScrapedMetrics),
        (
            {"ACTIVATOR_METRICS_SOURCE": "prometheus", "ACTIVATOR_PROMETHEUS_URL": PROMETHEUS_URL},
            PrometheusMetrics,
        ),
    ],
)
def test_the_composition_root_wires_the_source_the_settings_name(
    env: dict[str, str], kind: Any
) -> None:
    replicas = SettableSource()
    fleet: Any = SimpleNamespace(metrics=replicas, gateways=catalogue_of())
    source = metrics_source(ActivatorSettings.from_env(env), client_of(refused), fleet)
    if kind == "replicas":
        assert source is replicas  # the default: unchanged
    else:
        assert isinstance(source, kind)


def test_prometheus_as_the_source_needs_its_url() -> None:
    with pytest.raises(SettingsError, match="ACTIVATOR_PROMETHEUS_URL: required when"):
        ActivatorSettings.from_env({"ACTIVATOR_METRICS_SOURCE": "prometheus"})


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        ("", {}),
        ("http://g:8600/metrics", {"*": "http://g:8600/metrics"}),
        (
            "staging=http://g1/metrics, production=http://g2/metrics?x=1",
            {"staging": "http://g1/metrics", "production": "http://g2/metrics?x=1"},
        ),
    ],
)
def test_the_gateway_page_setting_names_one_url_or_one_per_environment(
    value: str, urls: dict[str, str]
) -> None:
    settings = ActivatorSettings.from_env({"ACTIVATOR_GATEWAY_METRICS_URL": value})
    assert settings.gateway_metrics_url == urls
