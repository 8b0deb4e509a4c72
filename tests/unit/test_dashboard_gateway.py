"""The Grafana dashboard charts each revision the gateway serves (requests, share, errors,
p95, time to first token) beside its model's other revisions, and every query on it is
PromQL that Prometheus parses (checked by promtool, as recording rules)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from tests.unit.test_alert_rules import REPO, promtool

DASHBOARD = REPO / "infra" / "grafana" / "adapters-dashboard.json"
# Grafana's variables, as a query would be sent once it substituted them.
VARIABLES = {
    "$__rate_interval": "1m",
    "$environment": ".*",
    "$model": ".*",
    "$adapter": ".*",
    "$service": ".*",
}


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_the_gateway_panels_chart_each_revision_by_its_target_model_name() -> None:
    gateway = [q for q in queries() if "inference_model_" in q]
    for name in (
        "inference_model_request_total",
        "inference_model_request_error_total",
        "inference_model_request_duration_seconds_bucket",
        "inference_model_time_to_first_token_seconds_bucket",
    ):
        assert any(name in q for q in gateway), name
    assert all("target_model_name" in q for q in gateway)
    assert all('environment=~"$environment"' in q for q in gateway)


def test_every_dashboard_query_is_promql_prometheus_parses(tmp_path: Path) -> None:
    rules = []
    for n, query in enumerate(queries()):
        for variable, value in VARIABLES.items():
            query = query.replace(variable, value)
        assert not re.search(r"\$\w", query), f"a variable left unsubstituted: {query}"
        rules.append({"record": f"dashboard:query_{n}", "expr": query})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
