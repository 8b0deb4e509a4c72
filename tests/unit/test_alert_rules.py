"""The alert rules (infra/prometheus/rules.yml) parse and fire as their unit tests say
(rules_test.yml: input series and the alerts expected of them), checked by Debian's
promtool, which `make setup` unpacks: a missing promtool fails here, never skips."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "infra" / "prometheus" / "rules.yml"
RULES_TEST = REPO / "infra" / "prometheus" / "rules_test.yml"
PROMTOOL = REPO / ".cache" / "prometheus" / "root" / "usr" / "bin" / "promtool"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not PROMTOOL.exists():
        pytest.fail(f"{PROMTOOL} is missing: run `make setup` (infra/prometheus/fetch.sh)")
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_alert_rules_pass_promtools_check() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_the_alert_rules_fire_as_their_unit_tests_expect() -> None:
    tested = promtool("test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_expects_it_to_fire() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load(RULES_TEST.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert alerts == fired
