"""train_forecaster, forecast_origins, save/load and the hyperparameter search on small frames."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from energy_assets import schema
from energy_assets.forecasting.saved_model import load_kept_forecasts
from energy_assets.forecasting.training import (
    ForecasterConfig,
    SavedModelFormatError,
    InsufficientHistoryError,
    forecast_origins,
    load_forecaster,
    min_training_hours,
    required_history_hours,
    save_forecaster,
    search_hyperparameters,
    search_intervals,
    search_series_intervals,
    train_forecaster,
)
from energy_assets.forecasting.panel import to_sktime
from energy_assets_tests.test_forecaster import SERIES, synthetic_history

FAST = ForecasterConfig(n_estimators=20)
# One interval width per horizon and scale for every series (no per-series factors).
POOLED = replace(FAST, interval_series_prior_hours=None)


def test_config_round_trips_through_json_and_compares_by_value():
    config = ForecasterConfig(lags=(1, 2, 24), learning_rate=0.1)

    restored = ForecasterConfig.from_dict(json.loads(json.dumps(config.to_dict())))

    assert restored == config
    assert restored != ForecasterConfig()
    with pytest.raises(ValueError, match=r"unknown forecaster config keys \['depth'\]"):
        ForecasterConfig.from_dict({"depth": 3})


def test_history_requirements_follow_the_config():
    # The default scale reads seasonal naive 24's errors over a week: 8 days; with the weekly lag, two weeks.
    assert required_history_hours(ForecasterConfig()) == 24 + 168
    assert required_history_hours(ForecasterConfig(interval_scale_lags=(24, 168))) == 168 + 168
    features = {"lags": (1, 48), "windows": (), "holiday_lags": (24,), "level_lags": (), "reference_lag": 0}
    assert required_history_hours(ForecasterConfig(**features, interval_scale_hours=0)) == 168
    # Intervals scaled by the errors of seasonal naive 168 over a week read two weeks.
    assert required_history_hours(ForecasterConfig(**features, interval_scale_lags=(168,), interval_scale_hours=168)) == 336
    assert min_training_hours(ForecasterConfig(min_target_hours=10)) == 24 + 168 + 10
    assert min_training_hours(ForecasterConfig(interval_scale_lags=(168,), min_target_hours=10)) == 24 + 168 + 10


def test_train_forecaster_validates_and_reports_training_facts():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max() - pd.Timedelta(hours=5)

    result = train_forecaster(history, cutoff, FAST, validation_hours=24)

    used = history[history[schema.DATETIME] <= cutoff]
    assert result.training_rows == len(used)
    assert result.training_start == used[schema.DATETIME].min()
    assert result.data_cutoff == cutoff
    assert result.excluded_series.empty
    assert set(result.validation_metrics) == {
        f"{m}_{s}" for m in ("model", "snaive24", "snaive168") for s in ("wape", "mape", "rmspe")
    }
    assert result.validation_metrics["model_mape"] < 0.1 and result.validation_metrics["model_wape"] < 0.1
    validation = result.validation_forecasts
    assert validation[schema.ISSUED_AT].min() == cutoff - pd.Timedelta(hours=24)
    assert validation[schema.DATETIME].max() == cutoff


def test_the_validation_window_is_forecast_by_the_calibration_fit_which_never_saw_it():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max() - pd.Timedelta(hours=5)
    hour = pd.Timedelta(hours=1)

    result = train_forecaster(history, cutoff, FAST, validation_hours=24)

    assert result.validation_cutoff == cutoff - FAST.calibration_hours * hour
    times = history[schema.DATETIME]
    y = to_sktime(history[times <= cutoff])
    calibration_fit = FAST.forecaster().set_params(calibration_hours=0, training_window=None).fit(
        y[(y.index.get_level_values(-1) <= result.validation_cutoff)]
    )
    origins = pd.date_range(cutoff - 24 * hour, cutoff - hour, freq="h")
    expected = calibration_fit.predict_origins(y, origins).rename(columns={schema.TARGET: schema.FORECAST})
    validation = result.validation_forecasts.query("model == 'model'")
    keys = [*schema.SERIES_KEY, schema.ISSUED_AT, schema.HORIZON]
    merged = validation.merge(expected, on=keys, suffixes=("", "_expected"))
    # From the origin k hours before the cutoff, k horizons have an actual.
    assert len(merged) == len(validation) == len(SERIES) * sum(range(1, 25))
    assert merged[schema.DATETIME].max() == cutoff  # no target after the cutoff is scored
    pd.testing.assert_series_equal(merged[schema.FORECAST], merged[f"{schema.FORECAST}_expected"], check_names=False)


def test_validation_needs_a_second_fit_when_calibration_holds_out_less_than_the_window():
    history = synthetic_history(days=16)
    cutoff = history[schema.DATETIME].max()

    result = train_forecaster(history, cutoff, replace(FAST, calibration_hours=12), validation_hours=24)

    assert result.validation_cutoff == cutoff - pd.Timedelta(hours=24)
    assert result.validation_forecasts[schema.ISSUED_AT].min() == result.validation_cutoff


def test_training_uses_no_row_after_the_cutoff():
    history = synthetic_history(days=15)
    cutoff = history[schema.DATETIME].max() - pd.Timedelta(days=1)
    changed = history.copy()
    changed.loc[changed[schema.DATETIME] > cutoff, schema.TARGET] *= 5.0
    origins = [cutoff - pd.Timedelta(hours=3), cutoff]

    forecasts = [
        forecast_origins(train_forecaster(frame, cutoff, FAST).model, history, origins)
        for frame in (history, changed)
    ]

    pd.testing.assert_frame_equal(*forecasts)


def test_series_with_too_little_history_are_left_out():
    history = synthetic_history(days=16)
    short = (history[schema.CONSUMER_TYPE] == 999) & (history[schema.AREA] == 2)
    recent = history[schema.DATETIME] >= history[schema.DATETIME].max() - pd.Timedelta(days=3)
    history = history[~short | recent]

    result = train_forecaster(history, history[schema.DATETIME].max(), FAST)

    excluded = result.excluded_series
    assert excluded[[schema.AREA, schema.CONSUMER_TYPE]].values.tolist() == [[2, 999]]
    assert excluded["hours_available"].tolist() == [3 * 24 + 1]
    assert set(result.validation_forecasts[schema.CONSUMER_TYPE].unique()) == {111, 212, 999}
    assert len(result.validation_forecasts.drop_duplicates(schema.SERIES_KEY)) == len(SERIES) - 1


def test_too_little_history_says_how_many_hours_are_needed_and_exist():
    history = synthetic_history(days=8)
    needed = min_training_hours(FAST) + 24

    with pytest.raises(InsufficientHistoryError, match=f"needs {needed} hours of history; only 192 available"):
        train_forecaster(history, history[schema.DATETIME].max(), FAST)


def test_forecast_origins_has_the_forecast_schema():
    history = synthetic_history(days=14)
    model = train_forecaster(history, history[schema.DATETIME].max(), FAST).model
    origins = pd.date_range(history[schema.DATETIME].max() - pd.Timedelta(hours=2), periods=3, freq="h")

    forecasts = forecast_origins(model, history, origins, horizon=24)

    expected = [(f.name, f.type) for f in schema.FORECAST_SCHEMA if f.name not in schema.MODEL_COLUMNS]
    table = pa.Table.from_pandas(forecasts, preserve_index=False)
    assert [(f.name, f.type) for f in table.schema] == expected
    assert len(forecasts) == len(SERIES) * 3 * 24
    lead = forecasts[schema.DATETIME] - forecasts[schema.ISSUED_AT]
    assert (lead == forecasts[schema.HORIZON] * pd.Timedelta(hours=1)).all()
    assert forecasts[schema.FORECAST].notna().all()


@pytest.mark.parametrize(
    "config", [POOLED, replace(FAST, interval_scale_lags=(24, 168), interval_series_prior_hours=48)], ids=["pooled", "per-series"]
)
def test_save_and_load_give_the_same_forecasts(tmp_path, config):
    history = synthetic_history(days=14)
    result = train_forecaster(history, history[schema.DATETIME].max() - pd.Timedelta(hours=30), config)
    origins = pd.DatetimeIndex(result.kept_forecasts.origins[:3]).append(pd.DatetimeIndex([history[schema.DATETIME].max()]))

    directory = save_forecaster(result, tmp_path / "model")
    loaded = load_forecaster(directory)

    issued = forecast_origins(result.model, history, origins)
    pd.testing.assert_frame_equal(forecast_origins(loaded, history, origins), issued)
    assert loaded.params == result.model.params and loaded.digest == result.model.digest
    series = result.model.calibration.series
    if config.interval_series_prior_hours is None:
        assert series is None and loaded.calibration.series is None
    else:
        assert loaded.calibration.series.keys.equals(series.keys)
        np.testing.assert_array_equal(loaded.calibration.series.factors, series.factors)
        assert not np.allclose(series.factors, 1.0)
    # The calibration forecasts kept with it are what their maker issues from those origins.
    kept = load_kept_forecasts(directory)
    assert kept.maker == result.kept_forecasts.maker and kept.keys.equals(result.kept_forecasts.keys)
    np.testing.assert_array_equal(kept.values, result.kept_forecasts.values)
    with pytest.raises(FileNotFoundError, match="no saved model"):
        load_forecaster(tmp_path / "elsewhere")


def format_2_config(config: ForecasterConfig) -> dict:
    """`config.to_dict()` as format 2 (main at d5305c3) registered it: one interval scale lag, no series prior."""
    values = {k: v for k, v in config.to_dict().items() if k not in ("interval_scale_lags", "interval_series_prior_hours")}
    return {**values, "interval_scale_lag": config.interval_scale_lags[0]}


def as_format_2(directory) -> None:
    """Rewrite a saved format-3 model without series factors as format 2 wrote it (main at d5305c3, checked
    against a model its save_forecaster wrote): `interval_scale_lag` for the lags, no `series_keys`."""
    description = json.loads((directory / "model.json").read_text())
    assert description["calibration"]["series_keys"] is None
    params = {k: v for k, v in description["params"].items() if k not in ("interval_scale_lags", "interval_series_prior_hours")}
    description.update(
        format=2,
        params={**params, "interval_scale_lag": description["params"]["interval_scale_lags"][0]},
        calibration={k: v for k, v in description["calibration"].items() if k != "series_keys"},
    )
    (directory / "model.json").write_text(json.dumps(description))


def test_models_saved_in_older_or_newer_formats_are_refused_with_a_message_to_retrain(tmp_path):
    # What energy_assets saved before format 2: sktime's zip of the pickled estimator.
    old = tmp_path / "v1"
    old.mkdir()
    (old / "forecaster.zip").write_bytes(b"PK\x05\x06" + bytes(18))  # an empty zip archive
    with pytest.raises(SavedModelFormatError, match="format 1 .* retrain it"):
        load_forecaster(old)
    saved = save_forecaster(train_forecaster(synthetic_history(days=14), synthetic_history(days=14)[schema.DATETIME].max(), POOLED), tmp_path / "v3")
    description = json.loads((saved / "model.json").read_text())
    assert description["format"] == 3
    as_format_2(saved)
    with pytest.raises(SavedModelFormatError, match=r"format 2 \(one interval scale lag and no per-series interval widths\); this version reads format 3: retrain it"):
        load_forecaster(saved)
    (saved / "model.json").write_text(json.dumps({**description, "format": 4}))
    with pytest.raises(SavedModelFormatError, match="format 4; this version reads format 3: retrain it"):
        load_forecaster(saved)


def test_interval_search_takes_the_sharpest_scale_then_the_hours_covering_closest_to_nominal():
    # 1 % noise on two series, 8 % on the others: one width for all is far too wide for the quiet ones.
    noise = np.where(np.arange(len(SERIES)) < 2, 0.01, 0.08)
    history = synthetic_history(days=16, noise=noise)
    cutoff = history[schema.DATETIME].max()

    chosen, table = search_intervals(history, cutoff, FAST, [0, 24, 48], [((24,), 0), ((168,), 168)], n_splits=2)

    assert len(table) == 6
    assert (chosen.interval_scale_lags, chosen.interval_scale_hours) == ((168,), 168)
    scaled = table[table["interval_scale_hours"] == 168]
    assert scaled["winkler"].mean() < table.loc[table["interval_scale_hours"] == 0, "winkler"].mean()
    # 0 hours gives no intervals: it cannot be chosen while another calibrates.
    assert chosen.calibration_hours == scaled.sort_values("coverage_miss")["calibration_hours"].iloc[0] != 0
    assert chosen == replace(FAST, calibration_hours=chosen.calibration_hours, interval_scale_lags=(168,), interval_scale_hours=168)
    assert table.loc[table["calibration_hours"] == 0, "coverage_80"].isna().all()
    assert table["coverage_miss"].iloc[0] < 0.1


def test_series_interval_search_takes_the_eligible_candidate_right_for_the_most_series():
    # 1 % noise on two series, 8 % on the others: one width for all covers neither group at its level.
    noise = np.where(np.arange(len(SERIES)) < 2, 0.01, 0.08)
    history = synthetic_history(days=24, noise=noise, seed=3)
    last = history[schema.DATETIME].max()
    origins = pd.date_range(last - pd.Timedelta(hours=119), last - pd.Timedelta(hours=24), freq="h")
    reference = replace(POOLED, n_estimators=50, calibration_hours=72, interval_scale_hours=0)
    candidates = [replace(reference, interval_series_prior_hours=0), replace(reference, interval_scale_lags=(168,), interval_scale_hours=168)]

    chosen, table = search_series_intervals(history, origins, reference, candidates)

    assert len(table) == 3 and table["chosen"].tolist() == [True, False, False]
    assert chosen != reference and table["eligible"].all()
    by_config = table.set_index(table["interval_series_prior_hours"].fillna(-1).astype(int).astype(str) + "/" + table["interval_scale_hours"].astype(str))
    # Either per-series candidate is right for more series than one width for all.
    assert by_config.loc["0/0", "series_miss"] < by_config.loc["-1/0", "series_miss"]
    assert by_config.loc["-1/168", "series_miss"] < by_config.loc["-1/0", "series_miss"]
    eligible = table[table["eligible"]]
    expected = eligible.sort_values("series_miss").iloc[0] if len(eligible) else by_config.loc["-1/0"]
    assert (chosen.interval_series_prior_hours, chosen.interval_scale_hours) == (
        None if pd.isna(expected["interval_series_prior_hours"]) else expected["interval_series_prior_hours"],
        expected["interval_scale_hours"],
    )
    # Eligibility is the pooled goals, and a Winkler score no worse than the reference's (listed first in the input).
    reference_winkler = by_config.loc["-1/0", "winkler"]
    for row in table.itertuples():
        pooled = abs(row.coverage_80 - 0.8) <= 0.03 and abs(row.coverage_95 - 0.95) <= 0.03
        assert row.eligible == (pooled and row.horizon_miss <= 0.05 and row.winkler <= reference_winkler)


def test_search_hyperparameters_ranks_candidates_by_wape():
    history = synthetic_history(days=14)
    cutoff = history[schema.DATETIME].max()
    # With one tree the model stays near its reference: last week (good) or the weekly mean (flat).
    grid = {"reference_lag": [0, 168], "n_estimators": [1]}

    best, results = search_hyperparameters(history, cutoff, grid, n_splits=2, base=FAST)

    assert len(results) == 2
    assert results["wape"].is_monotonic_increasing
    top = results.iloc[0][list(ForecasterConfig().to_dict())].to_dict()
    assert best == ForecasterConfig.from_dict(top)
    # Intervals are scored beside the point forecasts.
    assert {"coverage_80", "winkler_80", "coverage_95", "winkler_95"} <= set(results.columns)
    assert best.reference_lag == 168
    assert results["wape"].iloc[1] > 2 * results["wape"].iloc[0]
    assert results["mape"].iloc[1] > 2 * results["mape"].iloc[0]


def with_a_series_zero_throughout(history: pd.DataFrame) -> pd.DataFrame:
    """`history` with its smallest series consuming nothing at any hour (a zero series passes the input checks)."""
    first = (history[schema.AREA] == SERIES[0][0]) & (history[schema.CONSUMER_TYPE] == SERIES[0][1])
    return history.assign(**{schema.TARGET: history[schema.TARGET].where(~first, 0.0)})


def test_a_series_zero_throughout_leaves_the_validation_scores_finite_and_the_comparison_fair():
    history = with_a_series_zero_throughout(synthetic_history(days=16))
    cutoff = history[schema.DATETIME].max() - pd.Timedelta(hours=5)

    metrics = train_forecaster(history, cutoff, FAST, validation_hours=24).validation_metrics

    # sktime's epsilon rule made the model's MAPE 6e10 here: any forecast above zero on a zero.
    assert all(np.isfinite(value) and value < 1e6 for value in metrics.values()), metrics
    assert metrics["model_wape"] < metrics["snaive168_wape"] and metrics["model_mape"] < 0.1


def test_a_search_ranks_on_wape_when_a_series_is_zero_throughout():
    history = with_a_series_zero_throughout(synthetic_history(days=14))
    grid = {"reference_lag": [0, 168], "n_estimators": [1]}

    best, results = search_hyperparameters(history, history[schema.DATETIME].max(), grid, n_splits=2, base=FAST)

    scores = results[["wape", "mape", "rmspe", "mae"]]
    assert np.isfinite(scores).all().all() and (scores[["wape", "mape", "rmspe"]] < 1e6).all().all()
    assert best.reference_lag == 168 and results["wape"].is_monotonic_increasing


def test_a_search_over_a_list_of_grids_tries_each_grid_s_combinations():
    history = synthetic_history(days=14)
    # As sklearn's ParameterGrid reads a list: the combination only where there is a level lag to combine.
    grids = [
        {"level_lags": [()], "combine_without_level_lags": [False], "n_estimators": [1]},
        {"level_lags": [(24,)], "combine_without_level_lags": [False, True], "n_estimators": [1]},
    ]

    _, results = search_hyperparameters(history, history[schema.DATETIME].max(), grids, n_splits=2, base=FAST)

    tried = {(tuple(r["level_lags"]), r["combine_without_level_lags"]) for r in results.to_dict("records")}
    assert tried == {((), False), ((24,), False), ((24,), True)}


def test_search_needs_history_for_every_fold():
    history = synthetic_history(days=10)

    with pytest.raises(InsufficientHistoryError, match="the search needs"):
        search_hyperparameters(history, history[schema.DATETIME].max(), [FAST], n_splits=3)


def test_forecasting_without_history_says_too_little_history_as_training_does():
    history = synthetic_history(days=14)
    last = history[schema.DATETIME].max()
    forecaster = train_forecaster(history, last, FAST).model
    empty = history.iloc[:0]

    reach = forecaster.forecast_reach  # the hours up to an origin its forecasts and intervals read
    with pytest.raises(InsufficientHistoryError, match=f"needs {reach} hours of history; only 0 available") as raised:
        forecast_origins(forecaster, empty, [last])
    assert raised.value.missing_hours[-1] == last and len(raised.value.missing_hours) == reach
    with pytest.raises(InsufficientHistoryError, match=r"needs \d+ hours of history; only 0 available"):
        train_forecaster(empty, last, FAST)
