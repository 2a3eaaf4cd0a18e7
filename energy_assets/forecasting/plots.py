"""PNG charts of forecasts for asset metadata and reports."""

from __future__ import annotations

import io

from matplotlib.axes import Axes
from matplotlib.figure import Figure
import numpy as np
import pandas as pd

from energy_assets import schema
from energy_assets.forecasting.evaluation import MODEL
from energy_assets.timeline import HOUR

# Wider intervals are paler, so the 80 % band shows through the 95 % one.
BAND_ALPHA = {0.8: 0.3, 0.95: 0.15}


def largest_series(frame: pd.DataFrame, value: str, n_series: int) -> list[tuple[int, int]]:
    """The `n_series` (area, consumer_type) keys with the largest mean `value`."""
    means = frame.groupby(schema.SERIES_KEY)[value].mean().sort_values(ascending=False)
    return list(means.index[:n_series])


def plot_forecasts_vs_actuals(
    validation_forecasts: pd.DataFrame,
    series: list[tuple[int, int]] | None = None,
    n_series: int = 4,
) -> bytes:
    """Each model's forecast issued 24 h before the last evaluated hour, against the actuals.

    Takes the long frame of `train_forecaster`'s validation (or of `evaluation.backtest`); a model whose rows
    have interval bounds gets its 80 % and 95 % bands.
    """
    return _png(forecasts_vs_actuals_figure(validation_forecasts, series, n_series))


def forecasts_vs_actuals_figure(
    validation_forecasts: pd.DataFrame,
    series: list[tuple[int, int]] | None = None,
    n_series: int = 4,
) -> Figure:
    """The figure of `plot_forecasts_vs_actuals`."""
    frame = validation_forecasts
    if frame.empty:
        raise ValueError("no forecasts to plot")
    issued = frame[schema.DATETIME].max() - int(frame[schema.HORIZON].max()) * HOUR
    day = frame[frame[schema.ISSUED_AT] == max(issued, frame[schema.ISSUED_AT].min())]
    keys = series or largest_series(day, schema.TARGET, n_series)
    # A bare Figure renders with the Agg canvas, needs no display and no pyplot state to close.
    figure = Figure(figsize=(9, 2.4 * len(keys)))
    axes = figure.subplots(len(keys), 1, sharex=True, squeeze=False)
    for axis, key in zip(axes[:, 0], keys):
        rows = _rows_of(day, key)
        actual = rows.drop_duplicates(schema.DATETIME).sort_values(schema.DATETIME)
        axis.plot(actual[schema.DATETIME], actual[schema.TARGET], color="black", label="actual")
        for model, forecast in rows.groupby(MODEL):
            forecast = forecast.sort_values(schema.DATETIME)
            (line,) = axis.plot(forecast[schema.DATETIME], forecast[schema.FORECAST], label=model)
            if model == MODEL:  # the baselines' intervals (backtests give them some) would hide the model's
                draw_bands(axis, forecast, line.get_color())
        axis.set_title(f"{_series_name(key)}: forecasts issued {day[schema.ISSUED_AT].iloc[0]:%Y-%m-%d %H:%M} UTC")
        axis.set_ylabel("kWh")
    axes[0, 0].legend(loc="upper left", fontsize="small")
    return figure


def plot_forecast_with_history(
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    series: list[tuple[int, int]] | None = None,
    n_series: int = 4,
    context_hours: int = 72,
) -> bytes:
    """The newest issued forecast of a few series, with its prediction intervals where it has bounds, after their
    last `context_hours` observed hours."""
    return _png(forecast_with_history_figure(forecasts, history, series, n_series, context_hours))


def forecast_with_history_figure(
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    series: list[tuple[int, int]] | None = None,
    n_series: int = 4,
    context_hours: int = 72,
) -> Figure:
    """The figure of `plot_forecast_with_history`."""
    if forecasts.empty:
        raise ValueError("no forecasts to plot")
    latest = forecasts[forecasts[schema.ISSUED_AT] == forecasts[schema.ISSUED_AT].max()]
    issued = latest[schema.ISSUED_AT].iloc[0]
    recent = history[
        (history[schema.DATETIME] <= issued) & (history[schema.DATETIME] > issued - context_hours * HOUR)
    ]
    keys = series or largest_series(latest, schema.FORECAST, n_series)
    figure = Figure(figsize=(9, 2.4 * len(keys)))
    axes = figure.subplots(len(keys), 1, sharex=True, squeeze=False)
    for axis, key in zip(axes[:, 0], keys):
        past = _rows_of(recent, key).sort_values(schema.DATETIME)
        future = _rows_of(latest, key).sort_values(schema.DATETIME)
        axis.plot(past[schema.DATETIME], past[schema.TARGET], color="black", label="observed")
        axis.plot(future[schema.DATETIME], future[schema.FORECAST], color="tab:blue", label="forecast")
        draw_bands(axis, future, "tab:blue")
        axis.axvline(issued, color="grey", linestyle=":")
        axis.set_title(f"{_series_name(key)}: forecast issued {issued:%Y-%m-%d %H:%M} UTC")
        axis.set_ylabel("kWh")
    axes[0, 0].legend(loc="upper left", fontsize="small")
    return figure


def draw_bands(axis: Axes, forecast: pd.DataFrame, color: str) -> int:
    """Shades the 95 % then the 80 % interval of one series' forecast rows (sorted by time) where they have
    bounds; forecasts without bounds (baselines, objects written before intervals) get none. Returns the bands drawn."""
    drawn = 0
    for coverage in sorted(schema.INTERVAL_COVERAGES, reverse=True):
        lower, upper = (schema.interval_column(side, coverage) for side in ("lower", "upper"))
        if lower not in forecast or upper not in forecast:
            continue
        low, high = (forecast[column].to_numpy(dtype="float64", na_value=np.nan) for column in (lower, upper))
        # An unbounded interval (too few calibration errors) has no edge to draw.
        shown = np.isfinite(low) & np.isfinite(high)
        if not shown.any():
            continue
        axis.fill_between(
            forecast[schema.DATETIME], np.where(shown, low, np.nan), np.where(shown, high, np.nan),
            color=color, alpha=BAND_ALPHA.get(coverage, 0.2), linewidth=0, label=f"{coverage:.0%} interval",
        )
        drawn += 1
    return drawn


def _rows_of(frame: pd.DataFrame, key: tuple[int, int]) -> pd.DataFrame:
    return frame[(frame[schema.AREA] == key[0]) & (frame[schema.CONSUMER_TYPE] == key[1])]


def _series_name(key: tuple[int, int]) -> str:
    return f"{schema.AREA_NAMES.get(int(key[0]), key[0])} / DE35 {int(key[1])}"


def _png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
