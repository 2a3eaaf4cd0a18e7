"""Seasonal naive baselines: sktime's NaiveForecaster, and the same numbers for many origins at once."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sktime.forecasting.naive import NaiveForecaster

from energy_assets.forecasting.panel import InsufficientHistoryError, Panel

DAY = 24
WEEK = 168


def seasonal_naive(sp: int) -> NaiveForecaster:
    """Repeat the last observed season of `sp` hours (sp=24: yesterday, sp=168: last week)."""
    return NaiveForecaster(strategy="last", sp=sp)


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
