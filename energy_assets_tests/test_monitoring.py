"""Forecast accuracy against actuals and baselines, and the rolling summary that warns (no Dagster)."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from energy_assets.monitoring.accuracy import (
    ACCURACY_COLUMNS,
    ACCURACY_DTYPES,
    INTERVAL_METRICS,
    OVERALL,
    PER_HORIZON,
    PER_SERIES,
    SCOPE,
    accuracy_alerts,
    accuracy_by_issue_hour,
    coverage_alerts,
    issue_hours_lacking_actuals,
    summarize_window,
)
from energy_assets.monitoring.plots import plot_mape_over_time
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    DATETIME,
    FORECAST,
    FORECAST_COLUMNS,
    HORIZON,
    INTERVAL_COVERAGES,
    ISSUED_AT,
    MODEL_VERSION,
    SERIES_KEY,
    TARGET,
    interval_column,
)
from energy_assets.sources.synthetic import synthetic_consumption

FIRST_ISSUE = pd.Timestamp("2023-01-09 00:00", tz="UTC")
HISTORY = synthetic_consumption(pd.Timestamp("2023-01-01 00:00", tz="UTC"), pd.Timestamp("2023-01-11 00:00", tz="UTC"))


def forecasts_off_by(factor: float, issue_hours: int = 3, history: pd.DataFrame = HISTORY) -> pd.DataFrame:
    """Forecasts that are the actuals times `factor` (so MAPE and RMSPE are |factor - 1|), as energy_forecasts stores
    them from a model without intervals (null bounds)."""
    origins = pd.date_range(FIRST_ISSUE, periods=issue_hours, freq="h")
    frame = pd.DataFrame(
        [(origin, origin + pd.Timedelta(hours=h), h) for origin in origins for h in range(1, 25)],
        columns=[ISSUED_AT, DATETIME, HORIZON],
    ).astype({ISSUED_AT: "datetime64[us, UTC]", DATETIME: "datetime64[us, UTC]", HORIZON: "int16"})
    rows = frame.merge(history, on=DATETIME)
    return rows.assign(**{FORECAST: rows[TARGET] * factor, MODEL_VERSION: 3}).reindex(columns=FORECAST_COLUMNS)


def with_bounds_covering(forecasts: pd.DataFrame, actuals: pd.DataFrame, covered: dict[float, float]) -> pd.DataFrame:
    """`forecasts` with bounds around their actuals for the first `covered[coverage]` of every 20 rows and just
    above them for the rest, so each interval's empirical coverage is that share (to within 1/20 / rows)."""
    actual = forecasts.merge(actuals[[*SERIES_KEY, DATETIME, TARGET]], on=[*SERIES_KEY, DATETIME], how="left")[TARGET]
    rank = np.arange(len(forecasts)) % 20
    bounded = forecasts.copy()
    for coverage, share in covered.items():
        inside = rank < round(share * 20)
        bounded[interval_column("lower", coverage)] = np.where(inside, 0.9, 1.01) * actual.to_numpy()
        bounded[interval_column("upper", coverage)] = np.where(inside, 1.1, 1.2) * actual.to_numpy()
    return bounded


def seasonal_naive_mape(issued_at: pd.Timestamp, season_hours: int) -> float:
    """MAPE of repeating the value `season_hours` earlier, for the 24 hours after `issued_at` (computed directly)."""
    actual = HISTORY.set_index([*SERIES_KEY, DATETIME])[TARGET]
    targets = pd.date_range(issued_at + pd.Timedelta(hours=1), periods=24, freq="h")
    now = actual[actual.index.get_level_values(DATETIME).isin(targets)]
    before = actual.rename(lambda t: t + pd.Timedelta(hours=season_hours), level=DATETIME).reindex(now.index)
    return float(np.mean(np.abs(now - before) / now))


def test_accuracy_scores_the_model_and_both_baselines_at_every_level():
    accuracy = accuracy_by_issue_hour(forecasts_off_by(1.1), HISTORY)

    assert list(accuracy.columns) == ACCURACY_COLUMNS
    counts = accuracy.groupby([ISSUED_AT, "model", SCOPE]).size().unstack(SCOPE)
    assert counts.index.get_level_values("model").unique().tolist() == ["model", "snaive168", "snaive24"]
    assert (counts[OVERALL] == 1).all() and (counts[PER_HORIZON] == 24).all() and (counts[PER_SERIES] == 76).all()
    model = accuracy[accuracy["model"] == "model"]
    np.testing.assert_allclose(model[["mape", "rmspe"]].to_numpy(), 0.1)
    horizons = accuracy[accuracy[SCOPE] == PER_HORIZON]
    assert sorted(horizons[HORIZON].unique()) == list(range(1, 25)) and horizons[AREA].isna().all()
    series = accuracy[accuracy[SCOPE] == PER_SERIES]
    assert len(series[SERIES_KEY].drop_duplicates()) == 76 and series[HORIZON].isna().all()
    overall = accuracy[accuracy[SCOPE] == OVERALL].set_index([ISSUED_AT, "model"])["mape"]
    for issued_at in pd.date_range(FIRST_ISSUE, periods=3, freq="h"):
        assert overall[(issued_at, "snaive24")] == pytest.approx(seasonal_naive_mape(issued_at, 24))
        assert overall[(issued_at, "snaive168")] == pytest.approx(seasonal_naive_mape(issued_at, 168))


def test_the_model_intervals_are_scored_at_every_level_and_the_baselines_have_none():
    forecasts = forecasts_off_by(1.1)
    # The actual is forecast / 1.1: inside the 80 % interval, below the 95 % one.
    for coverage, (low, high) in {0.8: (1 / 1.2, 1.0), 0.95: (0.95, 1.05)}.items():
        forecasts[interval_column("lower", coverage)] = forecasts[FORECAST] * low
        forecasts[interval_column("upper", coverage)] = forecasts[FORECAST] * high

    accuracy = accuracy_by_issue_hour(forecasts, HISTORY)

    model = accuracy[accuracy["model"] == "model"]
    assert len(model) == 3 * (1 + 24 + 76)
    np.testing.assert_allclose(model["coverage_80"], 1.0)
    np.testing.assert_allclose(model["winkler_80"], 1.1 * (1 - 1 / 1.2))
    np.testing.assert_allclose(model["coverage_95"], 0.0)
    # Width 0.1 forecast, plus 2 / 0.05 times the miss of 0.05 forecast - the actual's 1/11 of it, per actual.
    np.testing.assert_allclose(model["winkler_95"], 1.1 * 0.1 + 40 * (1.1 * 0.95 - 1))
    baselines = accuracy[accuracy["model"] != "model"]
    interval_metrics = [name for names in INTERVAL_METRICS.values() for name in names]
    assert interval_metrics == ["coverage_80", "winkler_80", "coverage_95", "winkler_95"]
    assert baselines[interval_metrics].isna().all().all()


def test_forecasts_without_bounds_have_null_interval_metrics():
    forecasts = forecasts_off_by(1.1)
    without_columns = forecasts.drop(columns=[interval_column(side, c) for c in INTERVAL_COVERAGES for side in ("lower", "upper")])

    for frame in (forecasts, without_columns):
        accuracy = accuracy_by_issue_hour(frame, HISTORY)
        assert list(accuracy.columns) == ACCURACY_COLUMNS
        assert accuracy[[name for names in INTERVAL_METRICS.values() for name in names]].isna().all().all()
        np.testing.assert_allclose(accuracy.loc[accuracy["model"] == "model", "mape"], 0.1)


def test_baselines_are_scored_only_on_the_series_the_model_forecast():
    forecasts = forecasts_off_by(1.1)
    only_dk1 = forecasts[forecasts[AREA] == 1]

    accuracy = accuracy_by_issue_hour(only_dk1, HISTORY)

    series = accuracy[accuracy[SCOPE] == PER_SERIES]
    assert set(series[AREA]) == {1}
    assert set(accuracy.loc[accuracy[SCOPE] == OVERALL, "n"]) == {38 * 24}


def test_issue_hours_whose_actuals_are_not_all_in_are_named_and_not_scored():
    forecasts = forecasts_off_by(1.1)
    # The actuals end with the target hour of the first issue hour's horizon 24.
    history = HISTORY[HISTORY[DATETIME] <= FIRST_ISSUE + pd.Timedelta(hours=24)]

    lacking = issue_hours_lacking_actuals(forecasts, history)

    assert list(lacking) == [FIRST_ISSUE + pd.Timedelta(hours=1), FIRST_ISSUE + pd.Timedelta(hours=2)]
    assert issue_hours_lacking_actuals(forecasts, HISTORY).empty
    with pytest.raises(ValueError, match="actuals are not all in yet.*2023-01-09T01:00"):
        accuracy_by_issue_hour(forecasts, history)


def test_one_missing_actual_of_one_series_holds_its_issue_hour_back():
    forecasts = forecasts_off_by(1.1, issue_hours=1)
    missing = (HISTORY[DATETIME] == FIRST_ISSUE + pd.Timedelta(hours=5)) & (HISTORY[CONSUMER_TYPE] == 212)
    assert list(issue_hours_lacking_actuals(forecasts, HISTORY[~missing])) == [FIRST_ISSUE]


@cache  # scoring takes a while; the tests only read the frame
def accuracy_of_four_hours(factor_of_last_two: float) -> pd.DataFrame:
    """Accuracy of 4 issue hours: the model is 5 % off for the first two, then `factor_of_last_two` off."""
    forecasts = forecasts_off_by(1.05, issue_hours=4)
    last_two = forecasts[ISSUED_AT] >= FIRST_ISSUE + pd.Timedelta(hours=2)
    forecasts.loc[last_two, FORECAST] *= factor_of_last_two / 1.05
    return accuracy_by_issue_hour(forecasts, HISTORY)


def test_the_summary_pools_every_forecast_of_the_window_ending_at_the_newest_issue_hour():
    accuracy = accuracy_of_four_hours(1.1)

    summary = summarize_window(accuracy, window_hours=2)

    assert summary.last_issued == FIRST_ISSUE + pd.Timedelta(hours=3)
    assert summary.first_issued == FIRST_ISSUE + pd.Timedelta(hours=2)
    assert summary.issue_hours == 2
    assert summary.mape("model") == pytest.approx(0.1)
    assert summarize_window(accuracy, window_hours=4).mape("model") == pytest.approx(0.075)
    # Pooled over series and issue hours, the window's MAPE is the mean over all its forecast rows.
    window = accuracy[(accuracy[SCOPE] == OVERALL) & (accuracy[ISSUED_AT] >= summary.first_issued)]
    assert summary.mape("snaive168") == pytest.approx(window.loc[window["model"] == "snaive168", "mape"].mean())
    over_time = summary.per_area_over_time
    assert len(over_time) == 2 * 2 * 3 and set(over_time[AREA]) == {1, 2}


def test_the_worst_series_come_first_with_their_baselines_beside_them():
    forecasts = forecasts_off_by(1.05)
    bad = (forecasts[AREA] == 2) & (forecasts[CONSUMER_TYPE] == 441)
    forecasts.loc[bad, FORECAST] *= 1.5
    accuracy = accuracy_by_issue_hour(forecasts, HISTORY)

    worst = summarize_window(accuracy, window_hours=3, worst=3).worst_series

    assert list(worst.columns) == [AREA, CONSUMER_TYPE, "model_mape", "snaive168_mape", "snaive24_mape"]
    assert len(worst) == 3
    assert worst.iloc[0][[AREA, CONSUMER_TYPE]].tolist() == [2, 441]
    assert worst.iloc[0]["model_mape"] == pytest.approx(1.05 * 1.5 - 1)


def test_the_summary_pools_interval_coverage_over_the_window_and_warns_beyond_the_tolerance():
    calibrated = accuracy_by_issue_hour(with_bounds_covering(forecasts_off_by(1.02), HISTORY, {0.8: 0.8, 0.95: 0.95}), HISTORY)
    too_narrow = accuracy_by_issue_hour(with_bounds_covering(forecasts_off_by(1.02), HISTORY, {0.8: 0.7, 0.95: 0.95}), HISTORY)

    good, bad = summarize_window(calibrated, window_hours=3), summarize_window(too_narrow, window_hours=3)

    assert good.intervals["nominal"].tolist() == list(INTERVAL_COVERAGES)
    np.testing.assert_allclose(good.intervals["coverage"], [0.8, 0.95], atol=0.002)
    assert good.intervals["n"].tolist() == [3 * 24 * 76] * 2
    assert coverage_alerts(good, 0.05) == []
    assert bad.intervals["coverage"].iloc[0] == pytest.approx(0.7, abs=0.002)
    [alert] = coverage_alerts(bad, 0.05)
    assert alert.startswith("the 80% interval covered 70.") and "below nominal" in alert
    assert coverage_alerts(bad, 0.15) == []


def test_accuracy_stored_before_intervals_summarizes_without_interval_scores():
    accuracy = accuracy_of_four_hours(1.1)
    old = accuracy.drop(columns=[name for names in INTERVAL_METRICS.values() for name in names])

    summary = summarize_window(old, window_hours=4)

    assert summary.mape("model") == pytest.approx(0.075)
    assert summary.intervals["n"].tolist() == [0, 0] and summary.intervals["coverage"].isna().all()
    assert coverage_alerts(summary, 0.05) == []
    assert {column: str(dtype) for column, dtype in accuracy.dtypes.items() if column in ACCURACY_DTYPES} == ACCURACY_DTYPES


@pytest.mark.parametrize(
    ("model_factor", "threshold", "expected"),
    [
        (1.01, 0.10, []),
        (1.01, 0.005, ["exceeds the threshold 0.50%"]),
        (1.3, 0.50, ["worse than the 168 h seasonal naive baseline's"]),
        (1.3, 0.10, ["exceeds the threshold 10.00%", "worse than the 168 h seasonal naive baseline's"]),
    ],
)
def test_alerts_name_a_breached_threshold_and_a_model_worse_than_last_week(model_factor, threshold, expected):
    summary = summarize_window(accuracy_of_four_hours(model_factor), window_hours=2)

    alerts = accuracy_alerts(summary, threshold)

    assert len(alerts) == len(expected)
    for alert, text in zip(alerts, expected):
        assert text in alert


def test_the_mape_plot_is_a_png():
    summary = summarize_window(accuracy_of_four_hours(1.1), window_hours=4)
    png = plot_mape_over_time(summary.per_area_over_time)
    assert png.startswith(b"\x89PNG")
