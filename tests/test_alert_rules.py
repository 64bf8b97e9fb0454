"""docs/alerts.yml is a valid Prometheus rule file (promtool) and names only metrics the app exports."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parent.parent / "docs" / "alerts.yml"
PROMQL_WORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "bool", "offset"}
PROMQL_FUNCTIONS = {"delta", "increase", "rate", "irate", "sum", "max", "min", "avg", "count", "time", "absent"}
pytestmark = pytest.mark.django_db(databases=["default", "shop", "inventory", "shipping", "dashboard"])


def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def test_promtool_accepts_the_rules():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: `apt-get install prometheus` (bin/ensure-system test installs it)"
    result = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_rule_names_metrics_the_app_exports(client, kafka_bootstrap):
    response = client.get("/metrics")
    assert response.status_code == 200
    exported = set(re.findall(r"^# TYPE (\S+) ", response.content.decode(), re.M))
    # counters are exported as <name>_total; their TYPE line drops the suffix
    exported |= {f"{name}_total" for name in exported}
    rules = _rules()
    assert {r["alert"] for r in rules} >= {
        "ConveyorConsumerLagGrowing",
        "ConveyorDeadLetters",
        "ConveyorOutboxStuck",
        "ConveyorRelayDead",
    }
    for rule in rules:
        names = set(re.findall(r"\b(conveyor_[a-z_]+)\b", rule["expr"]))
        assert names, f"{rule['alert']}: its expr names no conveyor_ metric"
        words = set(re.findall(r"\b([a-z_]+)\b(?![{\[\]])", re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", rule["expr"])))
        unknown = words - names - PROMQL_WORDS - PROMQL_FUNCTIONS
        assert not unknown, f"{rule['alert']}: unexpected words {unknown} in {rule['expr']!r}"
        assert names <= exported, f"{rule['alert']}: {names - exported} not in /metrics"
