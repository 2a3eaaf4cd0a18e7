"""Baselines: seasonal naive (sktime's, and the same for many origins at once) and the course model."""

from __future__ import annotations

import numpy as np
import pandas as pd
from lightgbm import LGBMRegressor
from sktime.forecasting.compose import ForecastingPipeline, make_reduction
from sktime.forecasting.naive import NaiveForecaster
from sktime.transformations.series.date import DateTimeFeatures
from sktime.transformations.series.summarize import WindowSummarizer

from energy_assets.forecasting.panel import InsufficientHistoryError, Panel

DAY = 24
WEEK = 168


class _NaiveForecaster(NaiveForecaster):
    """sktime's NaiveForecaster with sktime 1.3's `remember_data=False` default (it keeps its own data).

    sktime 1.2 announces the coming default at every construction and every `fit` (which re-initializes),
    and its own warning helpers re-enable FutureWarnings on exit, so filters cannot keep run logs quiet.
    """

    _config = {"remember_data": False}


def seasonal_naive(sp: int) -> NaiveForecaster:
    """Repeat the last observed season of `sp` hours (sp=24: yesterday, sp=168: last week)."""
    return _NaiveForecaster(strategy="last", sp=sp)


def seasonal_naive_panel(panel: Panel, origins: np.ndarray, horizon: int, sp: int) -> np.ndarray:
    """(series, origins, horizon) values of the last full season before each origin position."""
    if origins.min() < sp - 1:
        raise InsufficientHistoryError(sp, int(origins.min()) + 1, f"seasonal naive (sp={sp})")
    season_position = (np.arange(horizon) % sp) + 1 - sp
    return panel.values[:, origins[:, None] + season_position]


def seasonal_naive_origins(
    y_history: pd.DataFrame, origins: pd.Index | list, horizon: int = DAY, sp: int = DAY
) -> pd.DataFrame:
    """NaiveForecaster(strategy="last", sp) forecasts issued at every origin, in one array lookup.

    Same input and output layout as `GlobalLGBMForecaster.predict_origins`.
    """
    panel = Panel.from_sktime(y_history)
    origin_index = pd.Index(origins)
    values = seasonal_naive_panel(panel, panel.position(origin_index), horizon, sp)
    return panel.origin_frame(origin_index, values, y_history.index.names[-1] or "time")


def course_pipeline() -> ForecastingPipeline:
    """The reference course's model: calendar features, 72 lags and window stats, 1000-tree LightGBM.

    Fit and predict it with `course_exogenous(y)` as X.
    """
    window_summarizer = WindowSummarizer(
        lag_feature={
            "lag": list(range(1, 73)),
            "mean": [[1, 24], [1, 48], [1, 72]],
            "std": [[1, 24], [1, 48]],
        }
    )
    return ForecastingPipeline(
        [
            DateTimeFeatures(manual_selection=["day_of_week", "hour_of_day"]),
            make_reduction(
                LGBMRegressor(n_estimators=1000, learning_rate=0.15, verbosity=-1),
                transformers=[window_summarizer],
                window_length=None,  # sktime infers it from the transformers
                strategy="recursive",
                pooling="global",
            ),
        ]
    )


def course_exogenous(index: pd.MultiIndex) -> pd.DataFrame:
    """The course's X: area and consumer type as exogenous columns on a (area, consumer_type, time) index."""
    return pd.DataFrame(
        {
            "area_exog": index.get_level_values(0).astype("int64"),
            "consumer_type_exog": index.get_level_values(1).astype("int64"),
        },
        index=index,
    )
