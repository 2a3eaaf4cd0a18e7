"""Split-conformal prediction intervals: sktime's probabilistic interface, the multi-origin path, calibration."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from energy_assets import schema
from energy_assets.forecasting.calibration import (
    SCALE_FLOOR,
    ConformalErrors,
    conformal_errors,
    interval_scale,
    seasonal_scale,
    series_factors,
)
from energy_assets.forecasting import model as engine
from energy_assets.forecasting.forecaster import GlobalLGBMForecaster
from energy_assets.forecasting.intervals import interval_scores, winkler_score
from energy_assets.forecasting.panel import Panel, to_sktime
from energy_assets_tests.test_forecaster import SERIES, small_forecaster, synthetic_history

COVERAGES = [0.5, 0.8, 0.9, 0.95]
INTERVAL_SETTINGS = ["calibration_hours", "interval_scale_lags", "interval_scale_hours", "interval_series_prior_hours"]


@pytest.fixture(scope="module")
def fitted():
    y = to_sktime(synthetic_history(days=16))
    return small_forecaster(calibration_hours=48).fit(y), y


def test_intervals_nest_widen_with_coverage_and_contain_the_forecast(fitted):
    forecaster, _ = fitted
    point = forecaster.predict(fh=np.arange(1, 25))[schema.TARGET]
    intervals = forecaster.predict_interval(fh=np.arange(1, 25), coverage=COVERAGES)[schema.TARGET]

    for narrow, wide in zip(COVERAGES, COVERAGES[1:]):
        assert (intervals[(wide, "lower")] <= intervals[(narrow, "lower")]).all()
        assert (intervals[(narrow, "upper")] <= intervals[(wide, "upper")]).all()
        assert ((intervals[(wide, "upper")] - intervals[(wide, "lower")]) > 0).all()
    assert (intervals[(0.5, "lower")] <= point).all() and (point <= intervals[(0.5, "upper")]).all()
    assert intervals.index.equals(point.index)


def test_quantiles_rise_with_alpha_and_the_median_is_the_forecast(fitted):
    forecaster, _ = fitted
    alphas = [0.025, 0.1, 0.5, 0.9, 0.975]
    quantiles = forecaster.predict_quantiles(fh=[1, 12, 24], alpha=alphas)[schema.TARGET]

    assert (np.diff(quantiles.to_numpy(), axis=1) > 0).all()
    np.testing.assert_array_equal(quantiles[0.5], forecaster.predict(fh=[1, 12, 24])[schema.TARGET])
    intervals = forecaster.predict_interval(fh=[1, 12, 24], coverage=0.95)[schema.TARGET]
    np.testing.assert_array_equal(quantiles[0.025], intervals[(0.95, "lower")])
    np.testing.assert_array_equal(quantiles[0.975], intervals[(0.95, "upper")])


def test_unscaled_relative_widths_do_not_depend_on_the_size_of_the_series():
    y = to_sktime(synthetic_history(days=16))
    forecaster = small_forecaster(calibration_hours=48, interval_scale_hours=0, interval_series_prior_hours=None).fit(y)
    point = forecaster.predict(fh=[6])[schema.TARGET]
    interval = forecaster.predict_interval(fh=[6], coverage=0.8)[schema.TARGET]

    relative = (interval[(0.8, "upper")] - interval[(0.8, "lower")]) / point
    # The series span 1e2 .. 1e6 kWh with the same 3 % noise: one calibration fits all of them.
    assert relative.max() / relative.min() == pytest.approx(1.0, abs=0.02)  # log1p, not log: 1e2 kWh differs a little


def coverage_per_series(interval_scale_hours: int, **params) -> tuple[pd.DataFrame, pd.Series]:
    """Each series' 80 % coverage and median relative width over a week of hourly origins, with 1 % noise on
    the first two series and 8 % on the others, scaled by the errors of seasonal naive 168 (the synthetic
    weekly shape is exact, so they are the noise's) unless `interval_scale_hours` is 0, and one width for all
    series, unless `params` say otherwise."""
    noise = np.where(np.arange(len(SERIES)) < 2, 0.01, 0.08)
    y = to_sktime(synthetic_history(days=30, seed=3, noise=noise))
    times = y.index.get_level_values(-1)
    cutoff = times.min() + pd.Timedelta(days=21)
    forecaster = small_forecaster(
        **{"n_estimators": 50, "calibration_hours": 96, "interval_scale_lags": (168,), "interval_scale_hours": interval_scale_hours,
           "interval_series_prior_hours": None, **params}
    )
    forecaster.fit(y[times <= cutoff])
    origins = pd.date_range(cutoff, times.max() - pd.Timedelta(hours=24), freq="h")
    forecasts = forecaster.predict_origins(y, origins, horizon=24)
    keys = [schema.AREA, schema.CONSUMER_TYPE]
    actual = y[schema.TARGET].reindex(pd.MultiIndex.from_frame(forecasts[[*keys, schema.DATETIME]])).to_numpy()
    lower, upper = (forecasts[schema.interval_column(side, 0.8)].to_numpy() for side in ("lower", "upper"))
    scored = forecasts.assign(
        covered=(lower <= actual) & (actual <= upper), width=(upper - lower) / forecasts[schema.TARGET]
    )
    by_series = scored.groupby(keys, sort=False)
    return by_series[["covered", "width"]].agg({"covered": "mean", "width": "median"}), pd.Series(noise)


def test_scaled_intervals_are_as_wide_as_each_series_is_noisy_and_cover_each_near_nominal():
    scaled, noise = coverage_per_series(interval_scale_hours=168)
    unscaled, _ = coverage_per_series(interval_scale_hours=0)

    # One width for all over-covers the quiet series and under-covers the noisy ones.
    assert (unscaled["covered"].to_numpy()[noise == 0.01] > 0.95).all()
    assert (unscaled["covered"].to_numpy()[noise == 0.08] < 0.75).all()
    # Widths in units of each series' own seasonal error follow its noise, and every series is covered.
    assert scaled["covered"].to_numpy() == pytest.approx(0.8, abs=0.08)
    widths = scaled["width"].to_numpy()
    assert 5 < widths[noise == 0.08].min() / widths[noise == 0.01].max() < 11


def test_series_factors_give_each_series_of_known_noise_its_own_width_and_nominal_coverage():
    # No scale: only the calibration's own errors tell a 1 % series from an 8 % one.
    pooled, noise = coverage_per_series(interval_scale_hours=0)
    own, _ = coverage_per_series(interval_scale_hours=0, interval_series_prior_hours=0)
    shrunk, _ = coverage_per_series(interval_scale_hours=0, interval_series_prior_hours=96)

    assert (pooled["covered"].to_numpy()[noise == 0.01] > 0.95).all()
    assert (pooled["covered"].to_numpy()[noise == 0.08] < 0.75).all()
    assert own["covered"].to_numpy() == pytest.approx(0.8, abs=0.08)
    widths = own["width"].to_numpy()
    assert 5 < widths[noise == 0.08].min() / widths[noise == 0.01].max() < 11
    # 96 calibration hours against a prior of 96: each series' width between the pooled one and its own.
    low, high = np.minimum(widths, pooled["width"].to_numpy()), np.maximum(widths, pooled["width"].to_numpy())
    assert ((low < shrunk["width"].to_numpy()) & (shrunk["width"].to_numpy() < high)).all()


def test_the_shipped_intervals_also_size_each_series_by_its_own_calibration_errors():
    shipped = {name: GlobalLGBMForecaster().get_params()[name] for name in INTERVAL_SETTINGS}
    own, noise = coverage_per_series(**shipped)
    scale_only, _ = coverage_per_series(**{**shipped, "interval_series_prior_hours": None})

    # The daily seasonal errors count the weekend's step as error: in their units alone the 1 % series look
    # noisier than they are (over-covered) and the 8 % ones quieter (under-covered). Their own calibration
    # errors move each series towards nominal.
    quiet = noise.to_numpy() == 0.01
    covered, scale_covered = own["covered"].to_numpy(), scale_only["covered"].to_numpy()
    assert (covered[quiet] < scale_covered[quiet]).all() and (covered[~quiet] > scale_covered[~quiet]).all()
    assert np.abs(covered - 0.8).mean() < np.abs(scale_covered - 0.8).mean() - 0.02


def test_series_factors_shrink_towards_the_pooled_width_with_fewer_scored_hours():
    origins = np.arange(100, 148)  # 48 calibration origins, 24 steps
    scores = np.ones((4, len(origins), 24))
    scores[0] *= 3.0  # errors three times the others', every hour scored
    scores[1] *= 3.0
    targets = origins[:, None] + np.arange(1, 25)
    scores[1, targets > 102] = np.nan  # the same errors, but only the actuals of 2 hours came in
    scores[3] = np.nan  # never scored

    factors = series_factors(scores, origins, prior_hours=48)
    pooled = np.nanmean(scores)

    # Hours scored: every target hour of the window (1 ... 48 + 23 after the first origin) for series 0.
    assert factors[0] == pytest.approx((3.0 / pooled) ** (71 / (71 + 48)))
    assert factors[1] == pytest.approx((3.0 / pooled) ** (2 / (2 + 48)))
    assert factors[2] == pytest.approx((1.0 / pooled) ** (71 / (71 + 48)))
    assert factors[3] == 1.0
    assert factors[0] > factors[1] > 1 > factors[2]
    # Without a prior, a series' factor is its own ratio however few hours stand behind it.
    assert series_factors(scores, origins, prior_hours=0)[1] == pytest.approx(3.0 / pooled)


def test_a_mask_leaves_its_calibration_forecasts_out_as_if_never_made():
    rng = np.random.default_rng(1)
    forecast = rng.uniform(90, 110, size=(3, 30, 6))
    actual = forecast * np.exp(rng.normal(0, 0.05, size=forecast.shape))
    mask = rng.uniform(size=forecast.shape) > 0.3
    keys = pd.Index(["a", "b", "c"])
    origins = np.arange(10, 40)

    masked, series = conformal_errors(actual, forecast, origins, True, 1.0, keys, 24, mask)
    unmade, same = conformal_errors(np.where(mask, actual, np.nan), forecast, origins, True, 1.0, keys, 24)

    np.testing.assert_array_equal(masked.quantiles, unmade.quantiles)
    np.testing.assert_array_equal(masked.counts, mask.reshape(-1, 6).sum(axis=0))
    np.testing.assert_array_equal(series.factors, same.factors)
    direct = ConformalErrors.from_forecasts(actual, forecast, True, mask=mask)
    np.testing.assert_array_equal(direct.quantiles, ConformalErrors.from_forecasts(np.where(mask, actual, np.nan), forecast, True).quantiles)


def test_the_scale_of_several_lags_is_the_geometric_mean_and_of_one_lag_that_lag_s_scale():
    values = synthetic_history(days=20).pivot(index=[schema.AREA, schema.CONSUMER_TYPE], columns=schema.DATETIME, values=schema.TARGET).to_numpy()
    origins = np.array([400, 430, 470])
    daily, weekly = (seasonal_scale(values, origins, lag, 168, True) for lag in (24, 168))

    np.testing.assert_array_equal(interval_scale(values, origins, (24,), 168, True), daily)
    np.testing.assert_allclose(interval_scale(values, origins, (24, 168), 168, True), np.sqrt(daily * weekly))
    np.testing.assert_array_equal(interval_scale(values, origins, (24, 168), 0, True), np.ones((len(values), 3)))


@pytest.mark.parametrize(
    "params",
    [{}, {"interval_scale_lags": (24, 168), "interval_scale_hours": 72, "interval_series_prior_hours": 48}],
    ids=["pooled", "per-series"],
)
def test_multi_origin_intervals_are_the_one_origin_intervals_byte_for_byte(params):
    y = to_sktime(synthetic_history(days=16))
    times = y.index.get_level_values(-1)
    origins = pd.date_range(times.max() - pd.Timedelta(hours=30), periods=4, freq="7h")
    forecaster = small_forecaster(calibration_hours=48, **params).fit(y[times <= origins[0]])

    batch = forecaster.predict_origins(y, origins, horizon=24)

    assert len(batch) == len(SERIES) * len(origins) * 24
    assert set(schema.INTERVAL_COLUMNS) <= set(batch.columns)
    for origin in origins:
        one = copy.deepcopy(forecaster)
        if origin > origins[0]:
            one.update(y[(times > origins[0]) & (times <= origin)], update_params=False)
        intervals = one.predict_interval(fh=np.arange(1, 25), coverage=list(schema.INTERVAL_COVERAGES))
        rows = batch[batch[schema.ISSUED_AT] == origin]
        for coverage in schema.INTERVAL_COVERAGES:
            for side in ("lower", "upper"):
                np.testing.assert_array_equal(
                    rows[schema.interval_column(side, coverage)].to_numpy(),
                    intervals[(schema.TARGET, coverage, side)].to_numpy(),
                )


def test_coverage_on_data_with_known_noise_is_near_nominal():
    # 3 % multiplicative Gaussian noise around a fixed daily and weekly shape: exchangeable errors.
    history = synthetic_history(days=30, seed=3)
    y = to_sktime(history)
    times = y.index.get_level_values(-1)
    cutoff = times.min() + pd.Timedelta(days=21)
    forecaster = small_forecaster(n_estimators=50, calibration_hours=96).fit(y[times <= cutoff])
    origins = pd.date_range(cutoff, times.max() - pd.Timedelta(hours=24), freq="h")

    forecasts = forecaster.predict_origins(y, origins, horizon=24)
    actual = y[schema.TARGET].reindex(
        pd.MultiIndex.from_frame(forecasts[[schema.AREA, schema.CONSUMER_TYPE, schema.DATETIME]])
    ).to_numpy()

    for coverage in schema.INTERVAL_COVERAGES:
        lower = forecasts[schema.interval_column("lower", coverage)].to_numpy()
        upper = forecasts[schema.interval_column("upper", coverage)].to_numpy()
        covered = np.mean((lower <= actual) & (actual <= upper))
        assert covered == pytest.approx(coverage, abs=0.04), coverage


def test_unbounded_intervals_are_stored_as_missing_not_infinite():
    y = to_sktime(synthetic_history(days=12))
    # 2 calibration hours give 2 x 4 errors at horizon 1: enough for no 95 % interval.
    forecaster = small_forecaster(calibration_hours=2).fit(y)

    interval = forecaster.predict_interval(fh=[1], coverage=0.95)[schema.TARGET]
    frame = forecaster.predict_origins(y, [y.index.get_level_values(-1).max()], horizon=1)

    assert np.isinf(interval.to_numpy()).all()
    assert frame[[schema.interval_column(side, 0.95) for side in ("lower", "upper")]].isna().all().all()
    assert frame[[schema.interval_column(side, 0.8) for side in ("lower", "upper")]].notna().all().all()


def test_without_calibration_intervals_are_refused_by_name_and_stored_as_missing():
    y = to_sktime(synthetic_history(days=12))
    forecaster = small_forecaster(calibration_hours=0).fit(y)

    with pytest.raises(ValueError, match="no calibrated intervals.*calibration_hours"):
        forecaster.predict_interval(fh=[1, 2])
    frame = forecaster.predict_origins(y, [y.index.get_level_values(-1).max()], horizon=3)
    assert frame[schema.INTERVAL_COLUMNS].isna().all().all()
    assert frame[schema.TARGET].notna().all()


def test_conformal_half_width_is_the_finite_sample_order_statistic():
    # Errors 0.01 ... 0.99 at horizon 1; the 80 % interval takes the ceil(100 * 0.8) = 80th smallest, or
    # the next one: quantiles are kept on a grid of 0.001 in level, rounded up (never narrower).
    actual = np.exp(np.arange(1, 100) / 100)[:, None] - 1
    errors = ConformalErrors.from_forecasts(actual, np.zeros_like(actual), log_space=True)

    assert 0.80 - 1e-9 <= errors.half_width(0.8, np.array([1]))[0] <= 0.81 + 1e-9
    assert 0.95 - 1e-9 <= errors.half_width(0.95, np.array([1]))[0] <= 0.96 + 1e-9
    # Step 2 is past the calibrated horizons: it takes horizon 1's errors.
    assert errors.half_width(0.95, np.array([2]))[0] == errors.half_width(0.95, np.array([1]))[0]
    # With 9 errors a 95 % interval needs a 10th: it is unbounded, not falsely narrow.
    few = ConformalErrors.from_forecasts(actual[:9], np.zeros((9, 1)), log_space=True)
    assert np.isinf(few.half_width(0.95, np.array([1]))[0])
    lower, upper = few.bounds(np.array([5.0]), 0.95, np.array([1]))
    assert lower[0] == -np.inf and upper[0] == np.inf
    with pytest.raises(ValueError, match="coverage"):
        errors.half_width(1.0, np.array([1]))


@pytest.mark.parametrize("log_space", [True, False])
def test_seasonal_scale_is_the_mean_seasonal_naive_error_of_the_hours_before_each_origin(log_space):
    rng = np.random.default_rng(5)
    values = rng.uniform(50, 150, size=(3, 40))
    values[0, [7, 20]] = np.nan  # a gap leaves out the points it is part of
    values[2] = 80.0  # a series that repeats itself exactly is held at the floor
    lag, hours = 6, 8
    origins = np.array([3, 6, 11, 25, 39])

    scale = seasonal_scale(values, origins, lag, hours, log_space)

    def score(now, before):
        return abs(np.log1p(now) - np.log1p(before)) if log_space else abs(now - before) / abs(before)

    for i, row in enumerate(values):
        for j, origin in enumerate(origins):
            points = [t for t in range(origin - hours + 1, origin + 1) if t >= lag]
            scores = [score(row[t], row[t - lag]) for t in points if np.isfinite(row[t] - row[t - lag])]
            expected = max(np.mean(scores), SCALE_FLOOR) if scores else np.nan
            np.testing.assert_allclose(scale[i, j], expected, rtol=1e-12)
    # Before `lag` points have passed there is nothing to scale by: such a forecast's interval is unbounded.
    assert np.isnan(scale[:, 0]).all()
    lower, upper = ConformalErrors.from_forecasts(np.full((30, 1), 2.0), np.ones((30, 1)), log_space).bounds(
        np.array([1.0, 1.0]), 0.8, np.array([1, 1]), scale[0, :2]
    )
    assert lower[0] == -np.inf and upper[0] == np.inf and np.isfinite(upper[1])


def test_winkler_score_is_the_width_plus_the_weighted_miss():
    actual = np.array([5.0, 0.0, 12.0])
    score = winkler_score(actual, np.full(3, 2.0), np.full(3, 10.0), coverage=0.8)

    np.testing.assert_allclose(score, [8.0, 8.0 + 10 * 2.0, 8.0 + 10 * 2.0])


def test_interval_scores_leave_out_rows_without_bounds():
    actual = np.array([5.0, 10.0, 12.0, 7.0])
    lower = np.array([4.0, 9.0, 8.0, np.nan])
    upper = np.array([6.0, 11.0, 11.0, np.nan])

    scores = interval_scores(actual, lower, upper, 0.8)

    assert scores["coverage_80"] == pytest.approx(2 / 3)
    assert scores["winkler_80"] == pytest.approx(np.mean([2 / 5, 2 / 10, (3 + 10 * 1) / 12]))
    assert np.isnan(interval_scores(actual[3:], lower[3:], upper[3:], 0.95)["coverage_95"])


def test_a_zero_actual_is_covered_or_not_but_has_no_relative_winkler_score():
    actual = np.array([5.0, 0.0, 0.0, 12.0])
    lower = np.array([4.0, 0.0, 1.0, 8.0])
    upper = np.array([6.0, 2.0, 3.0, 11.0])

    scores = interval_scores(actual, lower, upper, 0.8)

    assert scores["coverage_80"] == pytest.approx(2 / 4)
    assert scores["winkler_80"] == pytest.approx(np.mean([2 / 5, (3 + 10 * 1) / 12]))
    only_zeros = interval_scores(actual[1:3], lower[1:3], upper[1:3], 0.8)
    assert only_zeros["coverage_80"] == 0.5 and np.isnan(only_zeros["winkler_80"])



def test_a_fit_reusing_an_earlier_model_takes_its_trees_and_keeps_its_own_interval_settings():
    panel = Panel.from_sktime(to_sktime(synthetic_history(days=16)))
    pooled = small_forecaster(calibration_hours=48).get_params()
    per_series = {**pooled, "interval_scale_lags": (24, 168), "interval_scale_hours": 72, "interval_series_prior_hours": 24}
    # Fitted with other interval settings on the points before the last 48: the calibration fit's trees.
    calibration_fit, _ = engine.fit(panel.until(len(panel.grid) - 48), pooled)

    reused, _ = engine.fit(panel, per_series, [calibration_fit])
    fresh, _ = engine.fit(panel, per_series)

    assert reused.params == per_series and reused.digest == fresh.digest
    origins = np.array([len(panel.grid) - 1])
    np.testing.assert_array_equal(reused.scale(panel, origins), fresh.scale(panel, origins))
    np.testing.assert_array_equal(reused.calibration.errors.quantiles, fresh.calibration.errors.quantiles)
    np.testing.assert_array_equal(reused.calibration.series.factors, fresh.calibration.series.factors)
