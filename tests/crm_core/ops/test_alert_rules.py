"""The shipped alert rules and Grafana dashboard name only series the code defines.

``promtool check rules`` runs when it is installed; the parser check runs always: the rules
file is well formed, and every name in every expression is a PromQL function or keyword,
a series Prometheus makes itself, or one ``crm_core.ops.metrics`` defines. With promtool,
``tests/fixtures/operations/alerts_test.yml`` also shows each promised alert firing on the
series that should raise it (``promtool test rules``).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from crm_core.ops import metrics
from tests.processes import REPO

OPERATIONS = REPO / "docs" / "operations"
RULES = OPERATIONS / "alerts.yml"
DASHBOARD = OPERATIONS / "grafana-dashboard.json"
PROMQL_WORDS = {
    # functions
    "abs", "absent", "absent_over_time", "avg_over_time", "ceil", "changes", "clamp_min",
    "clamp_max", "count_over_time", "delta", "deriv", "floor", "histogram_quantile", "increase",
    "irate", "label_replace", "last_over_time", "max_over_time", "min_over_time", "predict_linear",
    "rate", "resets", "round", "scalar", "sort", "sort_desc", "sum_over_time", "time", "timestamp",
    "vector",
    # aggregations and keywords
    "sum", "avg", "min", "max", "count", "topk", "bottomk", "quantile", "by", "without", "on",
    "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    # series Prometheus makes itself
    "up",
}  # fmt: skip
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
}


def defined_series() -> set[str]:
    """Every series name the metric definitions expose."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            base = value._name  # type: ignore[attr-defined]
            names.update(base + suffix for suffix in _SUFFIXES[value._type])  # type: ignore[attr-defined]
    return names


def names_in(expr: str) -> set[str]:
    """The identifiers of a PromQL expression that are not label names, values or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # label values, quantile labels
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges and subqueries
    text = re.sub(r"\$\w+", "", text)  # Grafana's variables
    return set(re.findall(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b", text)) - PROMQL_WORDS


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_parser_finds_the_series_and_nothing_else() -> None:
    expr = 'sum by (source) (rate(crm_webhooks_received_total{code="401"}[10m])) / up > 0.5'
    assert names_in(expr) == {"crm_webhooks_received_total"}
    assert names_in("time() - crm_nonsense > 3") == {"crm_nonsense"}
    assert "crm_webhooks_received_total" in defined_series()
    assert "crm_webhook_intake_seconds_bucket" in defined_series()
    assert "crm_inbox_events" in defined_series()


def test_every_rule_is_complete_and_names_only_defined_series() -> None:
    defined = defined_series()
    rules = _rules()
    alerts = {rule["alert"] for rule in rules}
    # What operators were promised an alert for.
    assert {
        "CrmDeadEvents",
        "CrmInboxBacklogGrowing",
        "CrmSourceFailingSignatures",
        "CrmCampaignUnknownSends",
        "CrmNoWorkerHeartbeat",
    } <= alerts
    assert len(alerts) == len(rules)
    for rule in rules:
        assert rule["labels"]["severity"] in {"page", "ticket"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        unknown = names_in(rule["expr"]) - defined
        assert not unknown, f"{rule['alert']} names series no code defines: {unknown}"


def test_every_dashboard_panel_names_only_defined_series() -> None:
    defined = defined_series()
    exprs = _dashboard_exprs()
    assert len(exprs) > 10
    for expr in exprs:
        assert not names_in(expr) - defined, expr
    used = set().union(*(names_in(expr) for expr in exprs))
    # Each series family is on the dashboard.
    families = {name.removesuffix("_total").removesuffix("_bucket") for name in used}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            assert value._name in families, value._name  # type: ignore[attr-defined]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_each_promised_alert_fires_on_the_series_that_should_raise_it() -> None:
    cases = REPO / "tests" / "fixtures" / "operations" / "alerts_test.yml"
    result = subprocess.run(
        ["promtool", "test", "rules", str(cases)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_file_is_where_the_docs_say() -> None:
    assert RULES.is_file()
    assert DASHBOARD.is_file()
    assert "alerts.yml" in (REPO / "docs" / "operations" / "metrics.md").read_text()
