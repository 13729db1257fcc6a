"""The metric definitions: bounded labels, the backlog gauges, and adding up across processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.parser import text_string_to_metric_families

from crm_core.ops import metrics
from tests.processes import REPO

# A process that counts into the shared directory and exits, as a gunicorn or pool worker does.
_COUNT = """
import sys
from crm_core.ops import metrics
for _ in range(int(sys.argv[1])):
    metrics.WEBHOOKS_RECEIVED.labels(source="shop", kind="leads", code="202").inc()
metrics.EVENT_LAG_SECONDS.labels(kind="leads").observe(0.3)
"""


def samples(exposition: bytes | str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a text exposition, by name and sorted labels."""
    text = exposition.decode() if isinstance(exposition, bytes) else exposition
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _count_in_a_process(directory: Path, times: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory), "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", _COUNT, str(times)], env=env, cwd=REPO, check=True)


def test_two_processes_counts_add_up_in_the_shared_directory(tmp_path: Path) -> None:
    _count_in_a_process(tmp_path, 2)
    _count_in_a_process(tmp_path, 3)
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # one file per process
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(tmp_path))
    found = samples(generate_latest(registry))
    labels = (("code", "202"), ("kind", "leads"), ("source", "shop"))
    assert found[("crm_webhooks_received_total", labels)] == 5
    assert found[("crm_event_received_to_processed_seconds_count", (("kind", "leads"),))] == 2


def test_the_exposition_reads_the_directory_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _count_in_a_process(tmp_path, 4)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    labels = (("code", "202"), ("kind", "leads"), ("source", "shop"))
    assert samples(metrics.exposition())[("crm_webhooks_received_total", labels)] == 4


def test_stale_files_of_dead_processes_go_and_live_ones_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _count_in_a_process(tmp_path, 1)
    dead = list(tmp_path.glob("*.db"))  # a file for each type of metric it wrote
    live = tmp_path / f"counter_{os.getpid()}.db"
    live.write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert metrics.remove_stale_files() == len(dead) > 1
    assert [path.name for path in tmp_path.iterdir()] == [live.name]


def test_source_labels_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "_sources", set())
    names = [f"source-{n}" for n in range(metrics.MAX_SOURCES)]
    assert [metrics.source_label(name) for name in names] == names
    assert metrics.source_label("one-too-many") == metrics.OTHER
    assert metrics.source_label(names[0]) == names[0]  # the known ones keep their label
    assert metrics.source_label(None) == metrics.NONE


def test_a_backlog_reading_sets_every_status_and_zero_for_the_empty_ones() -> None:
    metrics.record_backlog(
        {"inbox events": {"received": 7, "dead": 2}, "campaign sends": {"unknown": 1}},
        statuses={"inbox events": ("received", "processed", "dead"), "campaign sends": ("sent",)},
        workers_alive=3,
        now=1_700_000_000.0,
    )
    metrics.record_backlog(
        {"inbox events": {"received": 4}},
        statuses={"inbox events": ("received", "processed", "dead")},
        workers_alive=2,
        now=1_700_000_015.0,
    )
    found = samples(generate_latest())
    assert found[("crm_inbox_events", (("status", "received"),))] == 4
    assert found[("crm_inbox_events", (("status", "dead"),))] == 0
    assert found[("crm_inbox_events", (("status", "processed"),))] == 0
    assert found[("crm_campaign_send_rows", (("status", "unknown"),))] == 1
    assert found[("crm_workers_alive", ())] == 2
    assert found[("crm_backlog_read_timestamp_seconds", ())] == 1_700_000_015.0
