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
from energy_assets.forecasting import forecaster as forecaster_module
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


@pytest.mark.slow
def test_passes_sktime_estimator_checks():
    check_estimator(GlobalLGBMForecaster, raise_exceptions=True, verbose=False)


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

    whole = forecaster.predict_panel(panel, origins, 24)
    # Fewer rows allowed than one origin has (one per series): one origin per batch, 30 batches.
    batched = forecaster.predict_panel(panel, origins, 24, max_rows=2)

    assert whole.shape == (len(SERIES), len(origins), 24)
    np.testing.assert_array_equal(batched, whole)


def test_a_combined_model_forecasts_the_geometric_mean_of_the_models_with_and_without_level_lags():
    y = to_sktime(synthetic_history())
    times = y.index.get_level_values(-1)
    origins = pd.date_range(times.max() - pd.Timedelta(hours=30), periods=6, freq="5h")
    params = {"level_lags": (24,), "calibration_hours": 48, **ONE_MODEL}

    combined = small_forecaster(**{**params, **COMBINED}).fit(y)
    members = [small_forecaster(**params).fit(y), small_forecaster(**{**params, "level_lags": ()}).fit(y)]

    assert [booster.model_to_string() for _, booster in combined.members_] == [
        member.booster_.model_to_string() for member in members
    ]
    forecasts = [f.predict_origins(y, origins)[schema.TARGET].to_numpy() for f in (combined, *members)]
    mean = np.expm1((np.log1p(forecasts[1]) + np.log1p(forecasts[2])) / 2)  # the model's log1p space
    np.testing.assert_allclose(forecasts[0], mean, rtol=1e-12)
    assert not np.allclose(forecasts[1], forecasts[2])
    # Its intervals are calibrated on the combination's own calibration forecasts.
    calibration = [f.calibration_forecasts()[schema.TARGET].to_numpy() for f in (combined, *members)]
    np.testing.assert_allclose(calibration[0], np.expm1((np.log1p(calibration[1]) + np.log1p(calibration[2])) / 2))


def test_a_model_saved_before_members_existed_still_forecasts():
    y = to_sktime(synthetic_history())
    times = y.index.get_level_values(-1)
    single = small_forecaster(**ONE_MODEL).fit(y)
    origins = pd.date_range(times.max() - pd.Timedelta(hours=10), periods=3, freq="5h")
    expected = single.predict_origins(y, origins)

    del single.members_  # as unpickled from a model saved with one booster, `booster_`

    pd.testing.assert_frame_equal(single.predict_origins(y, origins), expected)


def test_without_level_lags_there_is_one_member_to_combine():
    y = to_sktime(synthetic_history())

    combined = small_forecaster(level_lags=(), **COMBINED).fit(y)
    single = small_forecaster(level_lags=(), **ONE_MODEL).fit(y)

    assert len(combined.members_) == 1
    assert combined.booster_.model_to_string() == single.booster_.model_to_string()


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
    X = np.random.default_rng(0).normal(size=(20, averaged.booster_.num_feature()))
    sizes = [plain.booster_.predict(X, num_iteration=k) for k in range(1, 9)]
    np.testing.assert_allclose(averaged.booster_.predict(X), np.mean(sizes, axis=0), rtol=1e-12)
    assert not np.allclose(averaged.booster_.predict(X), sizes[-1])


def test_a_training_window_learns_from_the_newest_points_only():
    y = to_sktime(synthetic_history(days=14))
    times = y.index.get_level_values(-1)
    newest = y[times > times.max() - pd.Timedelta(hours=240)]

    windowed = small_forecaster(training_window=240, calibration_hours=0).fit(y)
    truncated = small_forecaster(calibration_hours=0).fit(newest)

    assert windowed.booster_.model_to_string() == truncated.booster_.model_to_string()
    with pytest.raises(ValueError, match="training_window 100 leaves no target"):
        small_forecaster(training_window=100).fit(y)


def test_the_calibration_fit_is_the_fit_made_calibration_hours_earlier_on_as_many_points(monkeypatch):
    y = to_sktime(synthetic_history(days=16))
    times = y.index.get_level_values(-1)
    cutoff = times.max() - pd.Timedelta(hours=5)
    params = {"training_window": 240, "calibration_hours": 48}
    forecaster_module._RECENT_BOOSTERS.clear()
    earlier = small_forecaster(**params).fit(y[times <= cutoff - pd.Timedelta(hours=48)])
    fits = []
    train = lgb.train
    monkeypatch.setattr(forecaster_module.lgb, "train", lambda *args, **kwargs: fits.append(1) or train(*args, **kwargs))

    later = small_forecaster(**params).fit(y[times <= cutoff])

    members = len(later.members_)
    assert members == 2  # the default combines the models with and without the level lag
    assert len(fits) == members  # the calibration fit was the earlier model's fit: only the new model is trained
    forecaster_module._RECENT_BOOSTERS.clear()
    refitted = small_forecaster(**params).fit(y[times <= cutoff])
    assert len(fits) == 3 * members  # without the earlier fit at hand, both are trained, and to the same models
    assert [b.model_to_string() for _, b in later.members_] == [b.model_to_string() for _, b in refitted.members_]
    np.testing.assert_array_equal(later.conformal_errors_.quantiles, refitted.conformal_errors_.quantiles)
    calibration = later.calibration_forecasts().dropna(subset=[schema.TARGET])  # none past the cutoff
    issued = earlier.predict_origins(y[times <= cutoff], pd.DatetimeIndex(calibration[schema.ISSUED_AT].unique()))
    merged = calibration.merge(issued, on=[*schema.SERIES_KEY, schema.ISSUED_AT, schema.HORIZON], suffixes=("", "_earlier"))
    assert len(merged) == len(calibration)
    np.testing.assert_array_equal(merged[schema.TARGET], merged[f"{schema.TARGET}_earlier"])
