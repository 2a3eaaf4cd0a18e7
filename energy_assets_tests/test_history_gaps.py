"""Holes in the history: what a forecast and a training row read, and the rule that refuses or flags them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_assets import schema
from energy_assets.assets.model import beats_reference_check
from energy_assets.forecasting.history_gaps import (
    MAX_FILLED_HOURS,
    forecast_reads,
    hour_ranges,
    issue_rule,
    missing_reads,
    partition_ranges,
)
from energy_assets.forecasting.model import fit
from energy_assets.forecasting.panel import InsufficientHistoryError, Panel, to_sktime
from energy_assets.forecasting.provenance import registry_metrics
from energy_assets.forecasting.training import (
    ForecasterConfig,
    forecast_origins,
    forecasts_and_gaps,
    train_forecaster,
)
from energy_assets.timeline import HOUR
from energy_assets_tests.test_forecaster import small_forecaster, synthetic_history

FAST = ForecasterConfig(n_estimators=20)
HOLED = (1, 999)  # the series that loses a day


def without(history: pd.DataFrame, series: tuple[int, int], first: pd.Timestamp, hours: int) -> pd.DataFrame:
    """The history without `series`' rows of `hours` hours from `first`."""
    times = history[schema.DATETIME]
    drop = (
        (history[schema.AREA] == series[0])
        & (history[schema.CONSUMER_TYPE] == series[1])
        & (times >= first)
        & (times < first + hours * HOUR)
    )
    return history[~drop].reset_index(drop=True)


@pytest.mark.parametrize("combine", [False, True], ids=["one model", "combined"])
def test_a_forecast_reads_exactly_the_hours_forecast_reads_names(combine):
    history = synthetic_history(days=12)
    model = small_forecaster(combine_without_level_lags=combine).fit(to_sktime(history)).model_
    panel = Panel.from_long(history)
    origin = np.array([len(panel.grid) - 1])
    reads = set(model.forecast_reads(24).tolist())
    before = model.forecast(panel, origin, 24)

    changed = []
    for back in range(min(model.forecast_reach, origin[0] + 1)):  # every point the forecast may read
        values = panel.values.copy()
        values[:, origin[0] - back] *= 1.5
        after = model.forecast(Panel(panel.keys, panel.grid, values, panel.name), origin, 24)
        if not np.array_equal(after, before):
            changed.append(back)

    # Every hour outside the set leaves the forecast byte for byte; the set's hours are the ones that move it.
    assert set(changed) <= reads
    assert len(changed) >= 0.9 * len(reads) and {0, 23, 144, 191} <= set(changed)


def test_missing_reads_counts_the_missing_values_among_the_hours_read():
    rng = np.random.default_rng(3)
    values = rng.random((5, 300))
    values[rng.random(values.shape) < 0.1] = np.nan
    back = np.array([0, 1, 2, 5, 24, 25, 26, 100, 190, 191])
    positions = np.arange(0, 300, 7)

    counts = missing_reads(values, positions, back)

    expected = [
        [sum(p - b < 0 or np.isnan(values[s, p - b]) for b in back) for p in positions] for s in range(len(values))
    ]
    assert counts.tolist() == expected


def test_forecast_reads_are_the_observed_hours_of_the_recursion():
    # A row reading 1 and 168 back, 3 steps ahead: steps 1..3 read 0..2 back and 165..167 back from the origin.
    assert forecast_reads([1, 168], 3).tolist() == [0, 165, 166, 167]
    assert forecast_reads([1, 2, 3], 3).tolist() == [0, 1, 2]


def test_hours_print_as_runs_and_partition_key_ranges():
    hours = pd.DatetimeIndex(
        ["2023-01-05 00:00", "2023-01-05 01:00", "2023-01-05 02:00", "2023-01-07 03:00"], tz="UTC"
    ).as_unit("us")
    assert hour_ranges(hours) == "2023-01-05 00:00 .. 2023-01-05 02:00 (3 h), 2023-01-07 03:00"
    assert partition_ranges(hours) == "2023-01-05-00:00...2023-01-05-02:00, 2023-01-07-03:00"


def test_a_hole_in_one_series_refuses_or_flags_it_by_the_rule_and_leaves_the_others_as_they_were():
    history = synthetic_history(days=14)
    last = history[schema.DATETIME].max()
    forecaster = train_forecaster(history, last - 48 * HOUR, FAST).model
    origins = pd.date_range(last - 47 * HOUR, last, freq="h")
    hole_start = last - 40 * HOUR  # 24 hours read from the last day and from the reference week
    holed = without(history, HOLED, hole_start, 24)

    clean = forecast_origins(forecaster, history, origins)
    forecasts, gaps = forecasts_and_gaps(forecaster, holed, origins)

    is_holed = (forecasts[schema.AREA] == HOLED[0]) & (forecasts[schema.CONSUMER_TYPE] == HOLED[1])
    clean_holed = (clean[schema.AREA] == HOLED[0]) & (clean[schema.CONSUMER_TYPE] == HOLED[1])
    # Every other series: byte for byte what it was, and no count.
    others, clean_others = forecasts[~is_holed].reset_index(drop=True), clean[~clean_holed].reset_index(drop=True)
    pd.testing.assert_frame_equal(others, clean_others)
    assert (forecasts.loc[~is_holed, schema.HISTORY_HOURS_MISSING] == 0).all()
    # The holed series, origin by origin, as the rule says.
    panel = Panel.from_long(holed[holed[schema.DATETIME] <= last])
    series = panel.keys.get_loc(HOLED)
    counts = missing_reads(panel.values, panel.position(origins), forecaster.forecast_reads(24))[series]
    issued = forecasts[is_holed].groupby(schema.ISSUED_AT)[schema.HISTORY_HOURS_MISSING].agg(["first", "size"])
    expected = pd.Series(counts, index=origins)
    assert (expected > MAX_FILLED_HOURS).any() and (expected == 0).any()
    assert expected.between(1, MAX_FILLED_HOURS).any()
    assert issued.index.tolist() == expected.index[expected <= MAX_FILLED_HOURS].tolist()
    assert (issued["size"] == 24).all() and issued["first"].tolist() == expected[expected <= MAX_FILLED_HOURS].tolist()
    unfilled = forecasts[is_holed & (forecasts[schema.HISTORY_HOURS_MISSING] == 0)].reset_index(drop=True)
    same_hours = clean[clean_holed & clean[schema.ISSUED_AT].isin(unfilled[schema.ISSUED_AT])].reset_index(drop=True)
    pd.testing.assert_frame_equal(unfilled, same_hours)
    # The report: every refused and flagged origin of that series, and the missing hours they read.
    assert gaps.refused[schema.ISSUED_AT].tolist() == expected.index[expected > MAX_FILLED_HOURS].tolist()
    assert gaps.flagged[schema.ISSUED_AT].tolist() == expected.index[expected.between(1, MAX_FILLED_HOURS)].tolist()
    assert gaps.issues[schema.SERIES_KEY].drop_duplicates().values.tolist() == [list(HOLED)]
    by_series = gaps.by_series()
    assert by_series[schema.SERIES_KEY].values.tolist() == [list(HOLED)]
    assert by_series["refused"].item() == (expected > MAX_FILLED_HOURS).sum()
    read_hours = pd.date_range(hole_start, hole_start + 23 * HOUR, freq="h")
    assert set(gaps.hours[schema.DATETIME]) <= set(read_hours) and len(gaps.hours) > 0


def test_training_leaves_out_the_rows_whose_features_read_a_missing_hour_and_says_which():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max()
    hole_start = cutoff - 100 * HOUR
    holed = without(history, HOLED, hole_start, 6)

    result = train_forecaster(holed, cutoff, FAST)

    gaps = result.training_gaps
    assert gaps[schema.SERIES_KEY].values.tolist() == [list(HOLED)]
    # A row reads 1-24 and 168-192 hours back: the targets up to 192 hours after the hole that are observed.
    reads = np.array(result.model.forecast_reads(1)) + 1
    targets = pd.date_range(hole_start, cutoff, freq="h")
    hole = pd.date_range(hole_start, hole_start + 5 * HOUR, freq="h")
    reading = [t for t in targets if t not in hole and any(t - b * HOUR in hole for b in reads)]
    assert gaps["rows_left_out"].item() == len(reading)
    assert gaps["missing_hours"].item() == hour_ranges(hole)
    # The fit learned from every other row: as many as a training on the holed history's observed targets minus these.
    clean = train_forecaster(history, cutoff, FAST)
    assert clean.training_gaps.empty


def test_a_validation_window_with_nothing_to_score_gives_no_metrics_and_a_failed_check_not_a_key_error():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max()
    # Every series lacks the 25 hours up to 4 hours before the cutoff: each forecast of the validation window
    # reads more than MAX_FILLED_HOURS of them, and the few actuals left are not enough to score any.
    holed = history[~history[schema.DATETIME].between(cutoff - 28 * HOUR, cutoff - 4 * HOUR)]

    result = train_forecaster(holed, cutoff, FAST)
    check = beats_reference_check(1, registry_metrics(result.validation_metrics))

    assert result.validation_metrics == {}
    assert not check.passed and "v1 has no validation score" in check.description


def test_calibration_scores_only_the_forecasts_the_rule_issues():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max()
    # A hole in one series inside the calibration window: its forecasts from the hours after it are refused.
    holed = without(history, HOLED, cutoff - 30 * HOUR, 8)
    panel = Panel.from_long(holed)

    model, calibration = fit(panel, FAST.params(n_jobs=1))

    horizon = calibration.forecast.shape[-1]
    _, refused = issue_rule(panel.values, calibration.origins, model.forecast_reads(horizon))
    targets = calibration.origins[:, None] + np.arange(1, horizon + 1)
    padded = np.concatenate([panel.values, np.full((len(panel.keys), horizon), np.nan)], axis=1)
    observed = np.isfinite(padded[:, targets]) & np.isfinite(calibration.scale)
    assert refused.any() and not refused.all()
    expected = (observed & ~refused[..., None]).reshape(-1, horizon).sum(axis=0)
    assert model.calibration.errors.counts.tolist() == expected.tolist()


def test_a_validation_window_without_a_row_says_which_hours_are_missing():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max() + 24 * HOUR  # the last day has no row yet

    with pytest.raises(InsufficientHistoryError, match="validating a model trained up to .* only 0 available") as raised:
        train_forecaster(history, cutoff, FAST)
    assert raised.value.missing_hours.tolist() == list(pd.date_range(cutoff - 23 * HOUR, cutoff, freq="h"))
