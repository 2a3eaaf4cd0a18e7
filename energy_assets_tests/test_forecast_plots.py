"""Forecast charts come back as PNG images."""

from __future__ import annotations

import io

import matplotlib.image
import pandas as pd
import pytest

from energy_assets import schema
from energy_assets.forecasting.plots import plot_forecast_with_history, plot_forecasts_vs_actuals
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
    forecasts = forecast_origins(result.forecaster, history, [issued - pd.Timedelta(hours=1), issued])

    png = plot_forecast_with_history(forecasts, history, n_series=3)

    assert png.startswith(PNG_SIGNATURE)


def test_plots_refuse_empty_input(trained):
    history, result = trained

    with pytest.raises(ValueError, match="no forecasts to plot"):
        plot_forecasts_vs_actuals(result.validation_forecasts.iloc[:0])
    with pytest.raises(ValueError, match="no forecasts to plot"):
        plot_forecast_with_history(result.validation_forecasts.iloc[:0], history)
