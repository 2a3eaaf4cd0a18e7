"""Scores on hand-computed examples, and rolling-origin backtests that never look ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_assets import schema
from energy_assets.forecasting.evaluation import METRICS, backtest, beside_baselines, score_forecasts, score_models
from energy_assets.forecasting.panel import to_sktime
from energy_assets_tests.test_forecaster import SERIES, small_forecaster, synthetic_history


def scored_frame() -> pd.DataFrame:
    """Two series, two horizons; absolute percentage errors 0.1, 0.3 | 0.0, 0.2."""
    return pd.DataFrame(
        {
            schema.AREA: [1, 1, 2, 2],
            schema.CONSUMER_TYPE: [111, 111, 999, 999],
            schema.HORIZON: [1, 2, 1, 2],
            schema.TARGET: [100.0, 10.0, 50.0, 1000.0],
            schema.FORECAST: [110.0, 7.0, 50.0, 1200.0],
        }
    )


def test_scores_overall_per_horizon_and_per_series():
    scores = score_forecasts(scored_frame())

    assert scores.overall["mape"].iloc[0] == pytest.approx(0.15)
    assert scores.overall["rmspe"].iloc[0] == pytest.approx(np.sqrt((0.01 + 0.09 + 0.0 + 0.04) / 4))
    assert scores.overall["n"].iloc[0] == 4
    per_horizon = scores.per_horizon.set_index(schema.HORIZON)
    assert per_horizon.loc[1, "mape"] == pytest.approx(0.05)
    assert per_horizon.loc[2, "mape"] == pytest.approx(0.25)
    assert per_horizon.loc[2, "rmspe"] == pytest.approx(np.sqrt((0.09 + 0.04) / 2))
    per_series = scores.per_series.set_index(schema.SERIES_KEY)
    assert per_series.loc[(1, 111), "mape"] == pytest.approx(0.2)
    assert per_series.loc[(2, 999), "rmspe"] == pytest.approx(np.sqrt(0.04 / 2))
    assert per_series["n"].tolist() == [2, 2]
    # WAPE: summed absolute errors over summed actuals, per group.
    assert scores.overall["wape"].iloc[0] == pytest.approx((10 + 3 + 0 + 200) / 1160)
    assert per_series.loc[(1, 111), "wape"] == pytest.approx(13 / 110)
    assert per_series.loc[(1, 111), "mae"] == pytest.approx(6.5)


def test_scoring_names_missing_columns_and_empty_input():
    with pytest.raises(ValueError, match=r"lacks columns \['energy_consumption_forecast'\]"):
        score_forecasts(scored_frame().drop(columns=schema.FORECAST))
    with pytest.raises(ValueError, match="no row has both"):
        score_forecasts(scored_frame().assign(**{schema.FORECAST: np.nan}))


def test_backtest_uses_no_data_after_each_origin():
    history = synthetic_history(days=14)
    origins = pd.date_range(history[schema.DATETIME].min() + pd.Timedelta(days=12), periods=24, freq="h")
    changed = history.copy()
    after = changed[schema.DATETIME] > origins[-1]
    changed.loc[after, schema.TARGET] *= 3.0

    original = backtest(history, origins, small_forecaster(), retrain_every=12)
    altered = backtest(changed, origins, small_forecaster(), retrain_every=12)

    keys = [schema.AREA, schema.CONSUMER_TYPE, schema.ISSUED_AT, schema.HORIZON, "model"]
    merged = original.merge(altered, on=keys, suffixes=("", "_altered"))
    assert len(merged) == len(original) > 0
    np.testing.assert_allclose(merged[schema.FORECAST], merged[f"{schema.FORECAST}_altered"])
    assert set(original["model"]) == {"model", "snaive24", "snaive168"}
    assert score_models(original).loc["model", "mape"] < 0.1


def test_issued_forecasts_are_scored_beside_baselines_only_on_hours_their_model_never_saw():
    history = synthetic_history(days=14)
    origins = pd.date_range(history[schema.DATETIME].min() + pd.Timedelta(days=12), periods=24, freq="h")
    y = to_sktime(history)
    times = y.index.get_level_values(-1)

    fitted_before = small_forecaster().fit(y[times <= origins[0]])
    issued = fitted_before.predict_origins(y[times <= origins[-1]], origins)
    scored = beside_baselines(issued, history, origins[0], intervals_like=fitted_before)
    # The same rows a backtest that fits at the first origin produces.
    refitted = backtest(history, origins, small_forecaster(), retrain_every=24)
    keys = [schema.AREA, schema.CONSUMER_TYPE, schema.ISSUED_AT, schema.HORIZON, "model"]
    pd.testing.assert_frame_equal(
        scored.sort_values(keys).reset_index(drop=True), refitted.sort_values(keys).reset_index(drop=True)
    )
    with pytest.raises(ValueError, match="score it on data it was trained on"):
        beside_baselines(issued, history, origins[1])


def test_baseline_intervals_are_scaled_as_the_models_are():
    noise = np.where(np.arange(len(SERIES)) < 2, 0.01, 0.08)
    history = synthetic_history(days=14, noise=noise)
    origins = pd.date_range(history[schema.DATETIME].min() + pd.Timedelta(days=12), periods=24, freq="h")

    def width_ratio(interval_scale_hours: int) -> float:
        """Noisy series' median relative snaive168 80 % width over the quiet series' (scaled by the errors of
        seasonal naive 168: the synthetic weekly shape is exact, so they are the noise's)."""
        forecaster = small_forecaster(
            interval_scale_lags=(168,), interval_scale_hours=interval_scale_hours, interval_series_prior_hours=None
        )
        rows = backtest(history, origins, forecaster, retrain_every=24, seasonal_periods=(168,))
        rows = rows[rows["model"] == "snaive168"]
        upper, lower = (rows[schema.interval_column(side, 0.8)] for side in ("upper", "lower"))
        width = ((upper - lower) / rows[schema.FORECAST]).groupby(rows[schema.AREA] == 2).median()
        return width[True] / width[False]

    # Area 1's series are the quiet ones.
    assert width_ratio(0) == pytest.approx(1.0, abs=0.01)
    assert width_ratio(168) > 4


def test_scores_are_sktimes_percentage_errors_per_group():
    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            schema.AREA: rng.choice(["DK1", "DK2"], n),
            schema.CONSUMER_TYPE: rng.choice([111, 212, 999], n),
            schema.HORIZON: rng.integers(1, 25, n),
            schema.TARGET: np.concatenate([rng.uniform(1e2, 1e6, n - 3), [1e-20, 1e-17, 5.0]]),
            schema.FORECAST: rng.uniform(1e2, 1e6, n),
        }
    )

    per_series = score_forecasts(frame).per_series.set_index(schema.SERIES_KEY)

    for key, rows in frame.groupby(schema.SERIES_KEY):
        # Actuals below 1 kWh are zero at the data's resolution: no percentage error, counted instead.
        relative = rows[rows[schema.TARGET] >= 1.0]
        y_true, y_pred = (relative[[c]].set_axis(["y"], axis=1).reset_index(drop=True) for c in (schema.TARGET, schema.FORECAST))
        for name, metric in METRICS.items():
            assert per_series.loc[key, name] == pytest.approx(np.asarray(metric(y_true, y_pred)).item(), rel=1e-12)
        assert per_series.loc[key, "n"] == len(rows)
        assert per_series.loc[key, "zero_actuals"] == len(rows) - len(relative)
    assert per_series["zero_actuals"].sum() == 2


def test_zero_actuals_and_forecasts_have_scores_by_the_documented_rule():
    frame = scored_frame().assign(
        **{schema.TARGET: [100.0, 0.0, 0.0, 0.0], schema.FORECAST: [110.0, 7.0, 0.0, 0.0]}
    )

    scores = score_forecasts(frame)

    overall = scores.overall.iloc[0]
    # WAPE: every error over every actual; MAPE and RMSPE: the one row with a nonzero actual.
    assert overall["wape"] == pytest.approx(17 / 100)
    assert overall["mape"] == pytest.approx(0.1) and overall["rmspe"] == pytest.approx(0.1)
    assert overall["mae"] == pytest.approx(17 / 4) and overall["mean_actual"] == pytest.approx(25)
    assert (overall["n"], overall["zero_actuals"]) == (4, 3)
    per_series = scores.per_series.set_index(schema.SERIES_KEY)
    # A series with nothing consumed: no relative score, its error (none: forecasts of zero) in kWh.
    assert per_series.loc[(2, 999), ["wape", "mape", "rmspe"]].isna().all()
    assert per_series.loc[(2, 999), "mae"] == 0 and per_series.loc[(2, 999), "zero_actuals"] == 2
    numbers = pd.concat([scores.overall, scores.per_horizon, scores.per_series]).select_dtypes("number")
    assert np.isfinite(numbers.fillna(0)).all().all()
