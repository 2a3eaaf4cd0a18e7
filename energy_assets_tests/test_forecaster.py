"""GlobalLGBMForecaster: sktime conformance, vectorized multi-origin prediction, sktime tooling."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sktime.forecasting.model_evaluation import evaluate
from sktime.split import ExpandingWindowSplitter
from sktime.performance_metrics.forecasting import MeanAbsolutePercentageError
from sktime.utils.estimator_checks import check_estimator

from energy_assets import schema
from energy_assets.forecasting import members as members_module
from energy_assets.forecasting import model as engine
from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
from energy_assets.forecasting.panel import InsufficientHistoryError, Panel, to_sktime

SERIES = ((1, 111), (1, 999), (2, 212), (2, 999))


def synthetic_history(
    days: int = 16, series=SERIES, start: str = "2023-03-01", seed: int = 0, noise=0.03
) -> pd.DataFrame:
    """Canonical long rows with daily and weekly cycles, series levels from 1e2 to 1e6 kWh, and Gaussian
    multiplicative `noise` of this standard deviation (one, or one per series)."""
    rng = np.random.default_rng(seed)
    hours = pd.date_range(start, periods=days * 24, freq="h", tz="UTC").as_unit("us")
    shape = (1 + 0.3 * np.sin(2 * np.pi * hours.hour / 24)) * np.where(hours.dayofweek >= 5, 0.8, 1.0)
    levels = np.geomspace(1e2, 1e6, len(series))
    frames = [
        pd.DataFrame(
            {
                schema.DATETIME: hours,
                schema.AREA: np.int8(area),
                schema.CONSUMER_TYPE: np.int32(code),
                schema.TARGET: level * shape * (1 + sd * rng.standard_normal(len(hours))),
            }
        )
        for (area, code), level, sd in zip(series, levels, np.broadcast_to(noise, len(series)))
    ]
    return pd.concat(frames, ignore_index=True)


def small_forecaster(**params) -> GlobalLGBMForecaster:
    """A quick forecaster for tests: few trees, one thread."""
    return GlobalLGBMForecaster(**{"n_estimators": 20, "n_jobs": 1, **params})


# sktime 1.2's test__y_remember_data turns remember_data on after construction and expects `_y` to exist:
# BaseForecaster creates it only when remember_data is on at construction, and this forecaster takes
# sktime 1.3's default (off; it keeps its own history). Writing `_y` in __init__ to pass it is what
# sktime's extension template forbids.
SKTIME_1_2_CONSTRUCTION_QUIRK = ["test__y_remember_data"]


@pytest.mark.slow
def test_passes_sktime_estimator_checks():
    check_estimator(
        GlobalLGBMForecaster, raise_exceptions=True, verbose=False, tests_to_exclude=SKTIME_1_2_CONSTRUCTION_QUIRK
    )


ONE_MODEL, COMBINED = {"combine_without_level_lags": False}, {"combine_without_level_lags": True}


@pytest.mark.parametrize("params", [ONE_MODEL, COMBINED], ids=["one model", "combined"])
def test_predict_origins_equals_one_origin_at_a_time(params):
    history = synthetic_history()
    # Gaps check that gap filling looks only backwards, as a forecast issued at an origin must.
    history.loc[history.sample(frac=0.02, random_state=2).index, schema.TARGET] = np.nan
    y = to_sktime(history)
    times = y.index.get_level_values(-1)
    forecaster = small_forecaster(**params).fit(y[times <= times[0] + pd.Timedelta(days=12)])
    origins = pd.date_range(times[0] + pd.Timedelta(days=12), periods=30, freq="3h")

    batch = forecaster.predict_origins(y, origins, horizon=24)

    one_by_one = pd.concat(
        [forecaster.predict_origins(y[times <= origin], [origin], horizon=24) for origin in origins]
    )
    key = ["area", "consumer_type", schema.ISSUED_AT, schema.DATETIME]
    batch, one_by_one = (f.sort_values(key).reset_index(drop=True) for f in (batch, one_by_one))
    pd.testing.assert_frame_equal(batch[key], one_by_one[key])
    np.testing.assert_allclose(batch[schema.TARGET], one_by_one[schema.TARGET], rtol=1e-9)
    assert len(batch) == len(SERIES) * len(origins) * 24


@pytest.mark.parametrize("params", [ONE_MODEL, COMBINED], ids=["one model", "combined"])
def test_batches_of_origins_give_the_forecasts_of_one_batch(params):
    y = to_sktime(synthetic_history())
    panel = Panel.from_sktime(y)
    forecaster = small_forecaster(**params).fit(y)
    origins = np.arange(200, 230)

    whole = forecaster.model_.forecast(panel, origins, 24)
    # Fewer rows allowed than one origin has (one per series): one origin per batch, 30 batches.
    batched = forecaster.model_.forecast(panel, origins, 24, max_rows=2)

    assert whole.shape == (len(SERIES), len(origins), 24)
    np.testing.assert_array_equal(batched, whole)


def test_a_combined_model_forecasts_the_geometric_mean_of_the_models_with_and_without_level_lags():
    y = to_sktime(synthetic_history())
    times = y.index.get_level_values(-1)
    origins = pd.date_range(times.max() - pd.Timedelta(hours=30), periods=6, freq="5h")
    params = {"level_lags": (24,), "calibration_hours": 48, **ONE_MODEL}

    combined = small_forecaster(**{**params, **COMBINED}).fit(y)
    members = [small_forecaster(**params).fit(y), small_forecaster(**{**params, "level_lags": ()}).fit(y)]

    assert [member.booster.model_to_string() for member in combined.model_.members] == [
        single.model_.members[0].booster.model_to_string() for single in members
    ]
    forecasts = [f.predict_origins(y, origins)[schema.TARGET].to_numpy() for f in (combined, *members)]
    mean = np.expm1((np.log1p(forecasts[1]) + np.log1p(forecasts[2])) / 2)  # the model's log1p space
    np.testing.assert_allclose(forecasts[0], mean, rtol=1e-12)
    assert not np.allclose(forecasts[1], forecasts[2])
    # Its intervals are calibrated on the combination's own calibration forecasts.
    calibration = [f.calibration_forecasts_.forecast for f in (combined, *members)]
    np.testing.assert_allclose(calibration[0], np.expm1((np.log1p(calibration[1]) + np.log1p(calibration[2])) / 2))


def test_without_level_lags_there_is_one_member_to_combine():
    y = to_sktime(synthetic_history())

    combined = small_forecaster(level_lags=(), **COMBINED).fit(y)
    single = small_forecaster(level_lags=(), **ONE_MODEL).fit(y)

    assert len(combined.model_.members) == 1
    assert combined.model_.members[0].booster.model_to_string() == single.model_.members[0].booster.model_to_string()


def test_predict_equals_predict_origins_at_the_cutoff():
    y = to_sktime(synthetic_history())
    forecaster = small_forecaster().fit(y)
    cutoff = y.index.get_level_values(-1).max()

    predicted = forecaster.predict(fh=np.arange(1, 25))
    from_origins = forecaster.predict_origins(y, [cutoff], horizon=24)

    np.testing.assert_allclose(predicted[schema.TARGET].to_numpy(), from_origins[schema.TARGET].to_numpy())
    assert predicted.index.names == y.index.names
    assert predicted.index.get_level_values(-1).min() == cutoff + pd.Timedelta(hours=1)


def test_forecasts_follow_the_pattern_of_every_series():
    history = synthetic_history(days=20)
    y = to_sktime(history)
    times = y.index.get_level_values(-1)
    cutoff = times.max() - pd.Timedelta(days=2)
    forecaster = small_forecaster(n_estimators=50).fit(y[times <= cutoff])

    forecast = forecaster.predict(fh=np.arange(1, 25))
    actual = y.loc[forecast.index]

    relative_error = ((forecast - actual).abs() / actual)[schema.TARGET]
    assert relative_error.groupby(level=[0, 1]).mean().max() < 0.1


def test_works_with_sktime_evaluate_and_splitters():
    y = to_sktime(synthetic_history(days=12))
    splitter = ExpandingWindowSplitter(fh=np.arange(1, 25), initial_window=24 * 10, step_length=24)

    results = evaluate(
        small_forecaster(), splitter, y, scoring=MeanAbsolutePercentageError(), error_score="raise"
    )

    assert len(results) == 2
    assert (results["test_MeanAbsolutePercentageError"] < 0.2).all()


def test_accepts_a_single_plain_series():
    single = to_sktime(synthetic_history(series=((1, 111),))).droplevel([0, 1])[schema.TARGET]

    forecast = small_forecaster().fit(single).predict(fh=[1, 2, 3])

    assert isinstance(forecast, pd.Series)
    assert len(forecast) == 3
    assert np.isfinite(forecast).all()


def test_fits_and_forecasts_with_missing_values():
    history = synthetic_history()
    history.loc[history.sample(frac=0.05, random_state=1).index, schema.TARGET] = np.nan
    y = to_sktime(history)

    forecast = small_forecaster().fit(y).predict(fh=np.arange(1, 25))

    assert np.isfinite(forecast[schema.TARGET]).all()


def test_too_short_history_names_hours_needed_and_available():
    y = to_sktime(synthetic_history(days=5))

    with pytest.raises(InsufficientHistoryError, match="needs 193 hours of history; only 120 available"):
        small_forecaster().fit(y)


def test_size_averaging_predicts_the_mean_of_every_smaller_model():
    y = to_sktime(synthetic_history())
    averaged = small_forecaster(n_estimators=8).fit(y)
    plain = small_forecaster(n_estimators=8, average_sizes=False).fit(y)
    averaged, plain = (forecaster.model_.members[0].booster for forecaster in (averaged, plain))
    X = np.random.default_rng(0).normal(size=(20, averaged.num_feature()))
    sizes = [plain.predict(X, num_iteration=k) for k in range(1, 9)]
    np.testing.assert_allclose(averaged.predict(X), np.mean(sizes, axis=0), rtol=1e-12)
    assert not np.allclose(averaged.predict(X), sizes[-1])


def test_a_training_window_learns_from_the_newest_points_only():
    y = to_sktime(synthetic_history(days=14))
    times = y.index.get_level_values(-1)
    newest = y[times > times.max() - pd.Timedelta(hours=240)]

    windowed = small_forecaster(training_window=240, calibration_hours=0).fit(y)
    truncated = small_forecaster(calibration_hours=0).fit(newest)

    assert windowed.model_.members[0].booster.model_to_string() == truncated.model_.members[0].booster.model_to_string()
    with pytest.raises(ValueError, match="training_window 100 leaves no target"):
        small_forecaster(training_window=100).fit(y)


def test_the_calibration_fit_is_the_fit_made_calibration_hours_earlier_on_as_many_points(monkeypatch):
    panel = Panel.from_long(synthetic_history(days=16))
    end = len(panel.grid) - 5
    params = small_forecaster(training_window=240, calibration_hours=48).get_params()
    earlier, _ = engine.fit(panel.until(end - 48), params)
    fits = []
    train = lgb.train
    monkeypatch.setattr(members_module.lgb, "train", lambda *args, **kwargs: fits.append(1) or train(*args, **kwargs))

    later, calibration = engine.fit(panel.until(end), params, earlier=[earlier])

    members = len(later.members)
    assert members == 2  # the default combines the models with and without the level lag
    assert len(fits) == members  # the calibration fit was the earlier model's fit: only the new model is trained
    assert calibration.kept.maker == earlier.digest
    refitted, again = engine.fit(panel.until(end), params)
    assert len(fits) == 3 * members  # without the earlier model at hand, both are trained, and to the same models
    assert [m.booster.model_to_string() for m in later.members] == [m.booster.model_to_string() for m in refitted.members]
    np.testing.assert_array_equal(later.calibration.errors.quantiles, refitted.calibration.errors.quantiles)
    np.testing.assert_array_equal(calibration.forecast, again.forecast)
    # The calibration forecasts are the earlier model's forecasts from those origins (NaN past the newest point).
    issued = earlier.forecast(panel.until(end), calibration.origins, calibration.forecast.shape[-1])
    scored = ~np.isnan(calibration.forecast)
    np.testing.assert_array_equal(calibration.forecast[scored], issued[scored])


def test_kept_calibration_forecasts_are_the_forecasts_their_maker_issues_from_the_same_history():
    panel = Panel.from_long(synthetic_history(days=16))
    end = len(panel.grid) - 30
    params = small_forecaster(training_window=240, calibration_hours=48).get_params()
    earlier, _ = engine.fit(panel.until(end - 48), params)
    later, calibration = engine.fit(panel.until(end), params, earlier=[earlier])
    kept = calibration.kept
    assert len(kept.origins) == 48 - 24 + 1  # the origins whose 24 steps are all before the newest point
    origins = panel.position(kept.origins[3:20])
    lgb_predict = []
    issued = earlier.forecast(panel, origins, 24)

    from_kept = _counting_predictions(lgb_predict, lambda: earlier.forecast(panel, origins, 24, kept=kept))

    np.testing.assert_array_equal(from_kept, issued)  # byte-identical, and no booster was asked
    assert lgb_predict == []
    # Another model's forecasts, or another history, are never taken from them.
    assert _counting_predictions(lgb_predict, lambda: later.forecast(panel, origins, 24, kept=kept)).shape == issued.shape
    assert lgb_predict
    changed = Panel(panel.keys, panel.grid, panel.values.copy(), panel.name)
    changed.values[0, origins[5] - 3] *= 1.5
    lgb_predict.clear()
    mixed = _counting_predictions(lgb_predict, lambda: earlier.forecast(changed, origins, 24, kept=kept))
    np.testing.assert_array_equal(mixed, earlier.forecast(changed, origins, 24))
    assert lgb_predict  # the origins whose history changed were forecast again


def _counting_predictions(calls: list, action):
    predict = lgb.Booster.predict

    def counted(self, *args, **kwargs):
        calls.append(1)
        return predict(self, *args, **kwargs)

    lgb.Booster.predict = counted
    try:
        return action()
    finally:
        lgb.Booster.predict = predict
