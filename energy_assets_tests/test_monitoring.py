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
from energy_assets.monitoring.plots import plot_score_over_time
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


def forecasts_off_by(
    factor: float, issue_hours: int = 3, history: pd.DataFrame = HISTORY, first_issue: pd.Timestamp = FIRST_ISSUE
) -> pd.DataFrame:
    """Forecasts issued at `issue_hours` hours from `first_issue` that are the actuals times `factor` (so MAPE and
    RMSPE are |factor - 1|), as energy_forecasts stores them from a model without intervals (null bounds)."""
    origins = pd.date_range(first_issue, periods=issue_hours, freq="h")
    frame = pd.DataFrame(
        [(origin, origin + pd.Timedelta(hours=h), h) for origin in origins for h in range(1, 25)],
        columns=[ISSUED_AT, DATETIME, HORIZON],
    ).astype({ISSUED_AT: "datetime64[us, UTC]", DATETIME: "datetime64[us, UTC]", HORIZON: "int16"})
    rows = frame.merge(history, on=DATETIME)
    return rows.assign(**{FORECAST: rows[TARGET] * factor, MODEL_VERSION: 3}).reindex(columns=FORECAST_COLUMNS)


def with_bounds_covering(forecasts: pd.DataFrame, actuals: pd.DataFrame, covered: dict[float, float]) -> pd.DataFrame:
    """`forecasts` with bounds around their actuals for the first horizons of each series and issue hour, and just
    above them for the rest, so that each interval's empirical coverage is `covered[coverage]`, of every series
    to within 1 / 24 and pooled over the series to within about 1 / (24 x series x issue hours): series j covers
    floor(24 s (k + 1) + j / series + 1/2) - floor(24 s k + j / series + 1/2) of the 24 forecasts issued at its
    k-th hour, so its count over any run of hours stays within one of 24 s per hour, and the phases j / series
    spread what rounding leaves over the series."""
    actual = forecasts.merge(actuals[[*SERIES_KEY, DATETIME, TARGET]], on=[*SERIES_KEY, DATETIME], how="left")[TARGET]
    phase = forecasts.groupby(SERIES_KEY).ngroup().to_numpy() / forecasts.groupby(SERIES_KEY).ngroups
    hour = ((forecasts[ISSUED_AT] - forecasts[ISSUED_AT].min()) / pd.Timedelta(hours=1)).to_numpy()
    step = forecasts[HORIZON].to_numpy()
    bounded = forecasts.copy()
    for coverage, share in covered.items():
        count = np.floor(24 * share * (hour + 1) + phase + 0.5) - np.floor(24 * share * hour + phase + 0.5)
        inside = step <= count
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
    np.testing.assert_allclose(model[["wape", "mape", "rmspe"]].to_numpy(), 0.1)
    np.testing.assert_allclose(model["mae"], 0.1 * model["mean_actual"])
    assert (accuracy["zero_actuals"] == 0).all()
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


# The smallest synthetic series (about 300 kWh an hour), where the input checks let a zero through.
SMALL_SERIES = (2, 215)
# The most any stored score may be on inputs the checks let through (one zero made MAPE 1.8e17).
PLAUSIBLE_SCORE = 1e6


def of_series(frame: pd.DataFrame, key: tuple[int, int]) -> pd.Series:
    return (frame[AREA] == key[0]) & (frame[CONSUMER_TYPE] == key[1])


def stored_scores(accuracy: pd.DataFrame) -> pd.DataFrame:
    """Every score column of stored accuracy rows (counts and keys left out)."""
    return accuracy[[c for c in ACCURACY_DTYPES if ACCURACY_DTYPES[c] == "float64"]]


def test_a_zero_actual_is_left_out_of_the_percentage_errors_counted_and_kept_in_wape():
    zero_hour = FIRST_ISSUE + pd.Timedelta(hours=3)
    history = HISTORY.copy()
    zero = of_series(history, SMALL_SERIES) & (history[DATETIME] == zero_hour)
    level = float(history.loc[zero, TARGET].iloc[0])
    history.loc[zero, TARGET] = 0.0
    forecasts = forecasts_off_by(1.01, history=history)
    # What a model forecasts for that hour: the series' usual level.
    forecasts.loc[of_series(forecasts, SMALL_SERIES) & (forecasts[DATETIME] == zero_hour), FORECAST] = level

    accuracy = accuracy_by_issue_hour(forecasts, history)

    scores = stored_scores(accuracy)
    assert np.isfinite(scores.fillna(0)).all().all() and (scores.fillna(0) <= PLAUSIBLE_SCORE).all().all()
    model = accuracy[accuracy["model"] == "model"]
    assert model[["wape", "mape", "rmspe", "mae"]].notna().all().all()
    # Every issue hour's 24 targets hold the zero once; MAPE and RMSPE are those of the other rows.
    small = model[(model[SCOPE] == PER_SERIES) & of_series(model, SMALL_SERIES)]
    assert small["zero_actuals"].tolist() == [1, 1, 1] and small["n"].tolist() == [24, 24, 24]
    np.testing.assert_allclose(small[["mape", "rmspe"]], 0.01)
    rows = forecasts[of_series(forecasts, SMALL_SERIES) & (forecasts[ISSUED_AT] == FIRST_ISSUE)]
    actual = rows.merge(history, on=[*SERIES_KEY, DATETIME])[TARGET]
    assert small["wape"].iloc[0] == pytest.approx(np.abs(actual - rows[FORECAST].to_numpy()).sum() / actual.sum())
    assert (model.loc[model[SCOPE] == OVERALL, "zero_actuals"] == 1).all()
    np.testing.assert_allclose(model.loc[model[SCOPE] == OVERALL, "mape"], 0.01)
    summary = summarize_window(accuracy, window_hours=3)
    assert summary.overall["zero_actuals"].tolist() == [3, 3, 3]
    assert summary.score("model") < 0.02 and accuracy_alerts(summary, 0.10) == []


def test_a_series_zero_throughout_neither_breaks_a_score_nor_tips_the_comparison():
    history = HISTORY.copy()
    history.loc[of_series(history, SMALL_SERIES), TARGET] = 0.0
    forecasts = forecasts_off_by(1.01, history=history)
    # The model forecasts half a kWh where nothing is consumed; the baselines repeat the zeros.
    forecasts.loc[of_series(forecasts, SMALL_SERIES), FORECAST] = 0.5

    accuracy = accuracy_by_issue_hour(forecasts, history)

    scores = stored_scores(accuracy)
    assert np.isfinite(scores.fillna(0)).all().all() and (scores.fillna(0) <= PLAUSIBLE_SCORE).all().all()
    small = accuracy[(accuracy[SCOPE] == PER_SERIES) & of_series(accuracy, SMALL_SERIES)]
    # Nothing to relate its errors to: no percentage error, its absolute error said in kWh.
    assert small[["wape", "mape", "rmspe"]].isna().all().all()
    assert (small["zero_actuals"] == 24).all() and (small["mean_actual"] == 0).all()
    assert small.loc[small["model"] == "model", "mae"].tolist() == [0.5] * 3
    assert (small.loc[small["model"] != "model", "mae"] == 0).all()  # the baselines' forecasts of zero are exact
    # Every other score is defined and as before.
    rest = accuracy.drop(small.index)
    assert rest[["wape", "mape", "rmspe", "mae"]].notna().all().all()
    model_overall = accuracy[(accuracy["model"] == "model") & (accuracy[SCOPE] == OVERALL)]
    np.testing.assert_allclose(model_overall["mape"], 0.01)
    assert model_overall["wape"].to_numpy() == pytest.approx(0.01, rel=1e-3)

    summary = summarize_window(accuracy, window_hours=3)
    assert accuracy_alerts(summary, 0.10) == []
    assert summary.score("model") < summary.score("snaive168")
    # It heads the worst series: forecast off with nothing consumed.
    first = summary.worst_series.iloc[0]
    assert (first[AREA], first[CONSUMER_TYPE]) == SMALL_SERIES
    assert pd.isna(first["model_wape"]) and first["model_mae"] == 0.5 and first["zero_actuals"] == 3 * 24


def test_forecasts_of_zero_score_a_whole_error_and_an_exact_zero_no_error():
    history = HISTORY.copy()
    history.loc[of_series(history, (1, 215)), TARGET] = 0.0
    forecasts = forecasts_off_by(1.1, history=history)
    forecasts.loc[of_series(forecasts, SMALL_SERIES) | of_series(forecasts, (1, 215)), FORECAST] = 0.0

    accuracy = accuracy_by_issue_hour(forecasts, history)

    series = accuracy[(accuracy["model"] == "model") & (accuracy[SCOPE] == PER_SERIES)].set_index(SERIES_KEY).sort_index()
    np.testing.assert_allclose(series.loc[SMALL_SERIES, ["wape", "mape", "rmspe"]], 1.0)
    exact = series.loc[(1, 215)]
    assert (exact["mae"] == 0).all() and exact["wape"].isna().all() and (exact["zero_actuals"] == 24).all()
    assert np.isfinite(stored_scores(accuracy).fillna(0)).all().all()
    worst = summarize_window(accuracy, window_hours=3).worst_series.set_index(SERIES_KEY)
    assert worst.index[0] == SMALL_SERIES and (1, 215) not in worst.index  # an exact forecast is nobody's worst


def test_a_window_of_objects_written_before_wape_and_after_pools_each_score_over_the_rows_that_have_it():
    accuracy = accuracy_of_four_hours(1.1)  # 5 % off for the first two hours, 10 % for the last two
    first_two = accuracy[ISSUED_AT] < FIRST_ISSUE + pd.Timedelta(hours=2)
    written_before = accuracy[first_two].drop(columns=["wape", "mae", "mean_actual", "zero_actuals"])
    mixed = pd.concat([written_before, accuracy[~first_two]], ignore_index=True)

    summary = summarize_window(mixed, window_hours=4)

    assert summary.issue_hours == 4 and summary.issue_hours_before_wape == 2 and summary.judged_on == "wape"
    assert summary.score("model") == pytest.approx(0.1)  # WAPE: the two hours that have it
    assert summary.score("model", "mape") == pytest.approx(0.075)  # MAPE: all four
    assert summary.per_area_over_time["wape"].isna().sum() == 2 * 2 * 3
    only_before = summarize_window(written_before, window_hours=4)
    assert only_before.judged_on == "mape" and only_before.score("model") == pytest.approx(0.05)
    assert accuracy_alerts(only_before, 0.01)[0].startswith("model MAPE 5.00% exceeds")
    assert list(only_before.worst_series.columns[:3]) == [AREA, CONSUMER_TYPE, "model_mape"]


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
    assert summary.issue_hours == 2 and summary.issue_hours_before_wape == 0
    assert summary.judged_on == "wape"
    assert summary.score("model") == pytest.approx(0.1)
    assert summary.score("model", "mape") == pytest.approx(0.1)
    assert summarize_window(accuracy, window_hours=4).score("model", "mape") == pytest.approx(0.075)
    # Pooled over series and issue hours, the window's MAPE is the mean over all its forecast rows, and its
    # WAPE the summed error over the summed actuals.
    window = accuracy[(accuracy[SCOPE] == OVERALL) & (accuracy[ISSUED_AT] >= summary.first_issued)]
    snaive168 = window[window["model"] == "snaive168"]
    assert summary.score("snaive168", "mape") == pytest.approx(snaive168["mape"].mean())
    assert summary.score("snaive168") == pytest.approx((snaive168["mae"] * snaive168["n"]).sum() / (snaive168["mean_actual"] * snaive168["n"]).sum())
    over_time = summary.per_area_over_time
    assert len(over_time) == 2 * 2 * 3 and set(over_time[AREA]) == {1, 2}


def test_the_worst_series_come_first_with_their_baselines_beside_them():
    forecasts = forecasts_off_by(1.05)
    bad = (forecasts[AREA] == 2) & (forecasts[CONSUMER_TYPE] == 441)
    forecasts.loc[bad, FORECAST] *= 1.5
    accuracy = accuracy_by_issue_hour(forecasts, HISTORY)

    worst = summarize_window(accuracy, window_hours=3, worst=3).worst_series

    assert list(worst.columns) == [
        AREA, CONSUMER_TYPE, "model_wape", "snaive168_wape", "snaive24_wape", "model_mape", "model_mae", "zero_actuals"
    ]
    assert len(worst) == 3
    assert worst.iloc[0][[AREA, CONSUMER_TYPE]].tolist() == [2, 441]
    assert worst.iloc[0]["model_wape"] == pytest.approx(1.05 * 1.5 - 1)
    assert worst.iloc[0]["model_mape"] == pytest.approx(1.05 * 1.5 - 1)
    assert worst["model_wape"].is_monotonic_decreasing


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


def with_series_covering(forecasts: pd.DataFrame, covered_by_area: dict[int, dict[float, float]]) -> pd.DataFrame:
    """`with_bounds_covering` with each area's series covered at its own shares."""
    parts = [
        with_bounds_covering(forecasts[forecasts[AREA] == area], HISTORY, covered)
        for area, covered in covered_by_area.items()
    ]
    return pd.concat(parts).sort_index()


def test_the_summary_shows_each_series_coverage_and_warns_when_too_many_series_are_far_off_though_pooled_is_right():
    # DK1's series too narrow, DK2's too wide: the pool covers 80 % and every series misleads.
    split = with_series_covering(forecasts_off_by(1.02), {1: {0.8: 0.62, 0.95: 0.95}, 2: {0.8: 0.98, 0.95: 0.95}})
    one_off = with_series_covering(forecasts_off_by(1.02), {1: {0.8: 0.8, 0.95: 0.95}, 2: {0.8: 0.8, 0.95: 0.95}})
    bad = (one_off[AREA] == 2) & (one_off[CONSUMER_TYPE] == 441)
    one_off.loc[bad] = with_bounds_covering(one_off[bad], HISTORY, {0.8: 0.5, 0.95: 0.95})

    summary = summarize_window(accuracy_by_issue_hour(split, HISTORY), window_hours=3)
    single = summarize_window(accuracy_by_issue_hour(one_off, HISTORY), window_hours=3)

    eighty = summary.intervals.set_index("nominal").loc[0.8]
    assert eighty["coverage"] == pytest.approx(0.8, abs=0.01)
    assert eighty["series"] == 76 and eighty["far_off_series"] == 76 and eighty["far_off_share"] == 1.0
    assert eighty["series_median"] == pytest.approx(0.8, abs=0.2) and eighty["worst_coverage"] == pytest.approx(0.62, abs=0.02)
    assert eighty["worst_series"].startswith("DK1 ")
    coverage = summary.series_coverage.set_index(SERIES_KEY)["coverage_80"]
    assert coverage.xs(1, level=AREA).max() < 0.65 and coverage.xs(2, level=AREA).min() > 0.95
    [alert] = coverage_alerts(summary, 0.05)
    assert alert.startswith("the 80% interval covered 76 of 76 series (100%, more than 10%) more than 15 points from nominal")
    assert "worst: DK1 " in alert
    assert coverage_alerts(summary, 0.05, far_off_share=1.0) == []
    assert summarize_window(accuracy_by_issue_hour(split, HISTORY), window_hours=3, series_tolerance=0.2).intervals["far_off_series"].tolist() == [0, 0]
    # One series far off of 76 is named as the worst, and is no warning.
    row = single.intervals.set_index("nominal").loc[0.8]
    assert row["worst_series"] == "DK2 441" and row["worst_coverage"] == pytest.approx(0.5, abs=0.02)
    assert row["far_off_series"] == 1 and coverage_alerts(single, 0.05) == []


def test_accuracy_stored_before_intervals_summarizes_without_interval_scores():
    accuracy = accuracy_of_four_hours(1.1)
    old = accuracy.drop(columns=[name for names in INTERVAL_METRICS.values() for name in names])

    summary = summarize_window(old, window_hours=4)

    assert summary.score("model", "mape") == pytest.approx(0.075)
    assert summary.intervals["n"].tolist() == [0, 0] and summary.intervals["coverage"].isna().all()
    assert coverage_alerts(summary, 0.05) == []
    assert {column: str(dtype) for column, dtype in accuracy.dtypes.items() if column in ACCURACY_DTYPES} == ACCURACY_DTYPES


@pytest.mark.parametrize(
    ("model_factor", "threshold", "expected"),
    [
        (1.01, 0.10, []),
        (1.01, 0.005, ["model WAPE 1.00% exceeds the threshold 0.50%"]),
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


def test_the_score_plot_is_a_png():
    summary = summarize_window(accuracy_of_four_hours(1.1), window_hours=4)
    for metric in ("wape", "mape"):
        assert plot_score_over_time(summary.per_area_over_time, metric).startswith(b"\x89PNG")
