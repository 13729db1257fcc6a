"""The server-drawn chart's geometry."""

from __future__ import annotations

import datetime as dt

import pytest

from webhooks.console.charts import HEIGHT, nice_ceiling, stacked_bars


@pytest.mark.parametrize(
    ("value", "ceiling"), [(0, 1), (0.3, 0.5), (1, 1), (1.2, 2), (2.2, 2.5), (7, 10), (130, 200)]
)
def test_the_scale_ends_at_a_round_number(value: float, ceiling: float) -> None:
    assert nice_ceiling(value) == pytest.approx(ceiling)


def test_bars_stack_in_their_slot_and_scale_to_the_tallest() -> None:
    start = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    chart = stacked_bars(
        {"processed": [0, 3, 1], "failed": [0, 1, 0]},
        start=start,
        step=dt.timedelta(minutes=15),
        unit="events per minute",
        label_every=2,
    )
    assert not chart.empty
    assert [bar.css for bar in chart.bars] == ["s2", "s3", "s2"]
    processed, failed, later = chart.bars
    assert processed.x == failed.x < later.x
    assert failed.y + failed.height == pytest.approx(processed.y)  # stacked on top
    plot = chart.plot_bottom - chart.plot_top
    assert processed.height + failed.height == pytest.approx(plot * 4 / 5)  # 4 on a scale of 5
    assert failed.title == "00:15 UTC: 1 failed events per minute"
    assert [t.label for t in chart.x_ticks] == ["00:00", "00:30"]
    assert [t.label for t in chart.y_ticks] == ["0", "1.25", "2.5", "3.75", "5"]
    assert all(0 <= bar.y <= HEIGHT for bar in chart.bars)


def test_an_empty_chart_says_so() -> None:
    chart = stacked_bars(
        {}, start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), step=dt.timedelta(minutes=15), unit="x"
    )
    assert chart.empty
    assert chart.bars == []
