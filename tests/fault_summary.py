"""The ``faults`` marker's summary: one line per fault-injection test at the end of the run.

``@pytest.mark.faults("what is broken")`` marks a test (or a module) as a fault
test: ``make faults`` runs them as a stage of their own and ends with a table of
each fault, the test that injects it, its outcome and how long it took. The
hooks below are imported into ``tests/conftest.py``; they work under
pytest-xdist (the fault travels in the reports' ``user_properties``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

FAULT = "fault"
# ``make faults`` collects only here, and ``make test`` leaves the marker out.
FAULTS_HOME = "tests/integration/"


@dataclass
class FaultResult:
    fault: str
    outcome: str = "passed"
    seconds: float = 0.0


_results: dict[str, FaultResult] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("faults")
        if marker is not None:
            if not item.nodeid.startswith(FAULTS_HOME):
                raise pytest.UsageError(
                    f"{item.nodeid}: a faults test must live in {FAULTS_HOME}, "
                    "or neither make test nor make faults runs it"
                )
            item.user_properties.append((FAULT, str(marker.args[0]) if marker.args else item.name))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    fault = dict(report.user_properties).get(FAULT)
    if fault is None:
        return
    result = _results.setdefault(report.nodeid, FaultResult(str(fault)))
    result.seconds += report.duration
    if report.skipped and result.outcome == "passed":
        result.outcome = "skipped"
    elif report.failed:
        result.outcome = "failed" if report.when == "call" else "error"


def summary_lines() -> list[str]:
    """The table, as lines: fault, test, outcome, seconds; totals last."""
    rows = sorted(_results.items(), key=lambda item: (item[1].fault, item[0]))
    fault_width = max([len("fault"), *(len(r.fault) for _, r in rows)])
    test_width = max([len("test"), *(len(_name(nodeid)) for nodeid, _ in rows)])
    lines = [
        f"{'fault':<{fault_width}}  {'test':<{test_width}}  {'outcome':<7}  seconds",
        f"{'-' * fault_width}  {'-' * test_width}  -------  -------",
    ]
    for nodeid, result in rows:
        lines.append(
            f"{result.fault:<{fault_width}}  {_name(nodeid):<{test_width}}  "
            f"{result.outcome:<7}  {result.seconds:7.1f}"
        )
    outcomes = [r.outcome for _, r in rows]
    counts = ", ".join(f"{outcomes.count(o)} {o}" for o in sorted(set(outcomes)))
    lines.append(f"{len(rows)} fault tests: {counts}")
    return lines


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _results:
        return
    terminalreporter.section("fault injection summary")
    for line in summary_lines():
        terminalreporter.write_line(line)


def _name(nodeid: str) -> str:
    """``test_file.py::test_name[params]`` without the directories."""
    return nodeid.rsplit("/", 1)[-1]
