"""Forecast charts come back as PNG images."""

from __future__ import annotations

import io

import matplotlib.image
import pandas as pd
import pytest

from energy_assets import schema
from matplotlib.collections import PolyCollection

from energy_assets.forecasting.plots import (
    forecast_with_history_figure,
    forecasts_vs_actuals_figure,
    plot_forecast_with_history,
    plot_forecasts_vs_actuals,
)
from energy_assets.forecasting.training import ForecasterConfig, forecast_origins, train_forecaster
from energy_assets_tests.test_forecaster import synthetic_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def trained():
    history = synthetic_history(days=14)
    return history, train_forecaster(history, history[schema.DATETIME].max(), ForecasterConfig(n_estimators=10))


def image_height(png: bytes) -> int:
    return matplotlib.image.imread(io.BytesIO(png)).shape[0]


def test_forecasts_vs_actuals_is_a_png_with_one_panel_per_series(trained):
    _, result = trained

    two = plot_forecasts_vs_actuals(result.validation_forecasts, n_series=2)
    three = plot_forecasts_vs_actuals(result.validation_forecasts, series=[(1, 111), (2, 212), (2, 999)])

    assert two.startswith(PNG_SIGNATURE) and three.startswith(PNG_SIGNATURE)
    assert image_height(three) > image_height(two)


def test_forecast_with_history_is_a_png(trained):
    history, result = trained
    issued = history[schema.DATETIME].max()
    forecasts = forecast_origins(result.model, history, [issued - pd.Timedelta(hours=1), issued])

    png = plot_forecast_with_history(forecasts, history, n_series=3)

    assert png.startswith(PNG_SIGNATURE)


def test_plots_refuse_empty_input(trained):
    history, result = trained

    with pytest.raises(ValueError, match="no forecasts to plot"):
        plot_forecasts_vs_actuals(result.validation_forecasts.iloc[:0])
    with pytest.raises(ValueError, match="no forecasts to plot"):
        plot_forecast_with_history(result.validation_forecasts.iloc[:0], history)


def bands_per_panel(figure) -> list[list[str]]:
    """The labels of the shaded areas (fill_between) of each panel."""
    return [[c.get_label() for c in axis.collections if isinstance(c, PolyCollection)] for axis in figure.axes]


def test_the_forecast_shows_its_80_and_95_percent_bands(trained):
    history, result = trained
    issued = history[schema.DATETIME].max()
    forecasts = forecast_origins(result.model, history, [issued])
    assert forecasts[schema.INTERVAL_COLUMNS].notna().all().all()

    figure = forecast_with_history_figure(forecasts, history, n_series=2)

    assert bands_per_panel(figure) == [["95% interval", "80% interval"]] * 2
    assert "80% interval" in [text.get_text() for text in figure.axes[0].get_legend().get_texts()]


def test_forecasts_without_bounds_plot_without_bands(trained):
    history, result = trained
    issued = history[schema.DATETIME].max()
    forecasts = forecast_origins(result.model, history, [issued])
    null_bounds = forecasts.assign(**{column: float("nan") for column in schema.INTERVAL_COLUMNS})
    # As read from an object written before intervals, where the columns are absent altogether.
    no_columns = forecasts.drop(columns=schema.INTERVAL_COLUMNS)

    for frame in (null_bounds, no_columns):
        assert bands_per_panel(forecast_with_history_figure(frame, history, n_series=2)) == [[], []]
        assert plot_forecast_with_history(frame, history, n_series=2).startswith(PNG_SIGNATURE)


def test_the_validation_plot_shades_the_model_s_bands(trained):
    _, result = trained
    frame = result.validation_forecasts
    assert frame.loc[frame["model"] == "model", schema.INTERVAL_COLUMNS].notna().all().all()

    # Only the model's bounds are shaded, though the backtest gives the baselines bounds too.
    assert bands_per_panel(forecasts_vs_actuals_figure(frame, n_series=2)) == [["95% interval", "80% interval"]] * 2
    assert bands_per_panel(forecasts_vs_actuals_figure(frame.drop(columns=schema.INTERVAL_COLUMNS), n_series=2)) == [[], []]
