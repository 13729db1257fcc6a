"""The fault tests' summary table: one line per test, its fault, outcome and time."""

from __future__ import annotations

import pytest

from tests import fault_summary


def _report(nodeid: str, when: str, outcome: str, seconds: float) -> pytest.TestReport:
    return pytest.TestReport(
        nodeid, ("f.py", 1, "t"), {}, outcome, None, when,
        duration=seconds, user_properties=[(fault_summary.FAULT, "broker restarted")],
    )  # fmt: skip


def test_each_fault_test_gets_a_line_with_its_outcome_and_total_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fault_summary, "_results", {})
    ok = "tests/integration/test_a.py::test_ok[redis]"
    bad = "tests/integration/test_a.py::test_bad[rabbitmq]"
    for nodeid, when, outcome, seconds in [
        (ok, "setup", "passed", 1.0), (ok, "call", "passed", 10.0), (ok, "teardown", "passed", 0.5),
        (bad, "setup", "passed", 1.0), (bad, "call", "failed", 20.0),
    ]:  # fmt: skip
        fault_summary.pytest_runtest_logreport(_report(nodeid, when, outcome, seconds))
    # A test without the marker is not in the table.
    plain = pytest.TestReport("tests/x.py::t", ("x.py", 1, "t"), {}, "passed", None, "call")
    fault_summary.pytest_runtest_logreport(plain)

    lines = fault_summary.summary_lines()
    assert lines[0].split() == ["fault", "test", "outcome", "seconds"]
    rows = [line.split("  ") for line in lines[2:-1]]
    cells = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    assert cells == [
        ["broker restarted", "test_a.py::test_bad[rabbitmq]", "failed", "21.0"],
        ["broker restarted", "test_a.py::test_ok[redis]", "passed", "11.5"],
    ]
    assert lines[-1] == "2 fault tests: 1 failed, 1 passed"


def test_a_faults_test_outside_the_integration_tests_is_refused() -> None:
    class Item:
        nodeid = "tests/crm_core/test_x.py::test_y"
        user_properties: list[tuple[str, object]] = []

        def get_closest_marker(self, name: str) -> pytest.Mark | None:
            return pytest.mark.faults("x").mark if name == "faults" else None

    with pytest.raises(pytest.UsageError, match="must live in tests/integration/"):
        fault_summary.pytest_collection_modifyitems([Item()])  # type: ignore[list-item]
