"""Seasonal naive for many origins gives sktime NaiveForecaster's numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_assets import schema
from energy_assets.forecasting.baselines import seasonal_naive, seasonal_naive_origins
from energy_assets.forecasting.panel import InsufficientHistoryError, to_sktime
from energy_assets_tests.test_forecaster import synthetic_history


@pytest.mark.parametrize("sp", [24, 168])
def test_seasonal_naive_origins_match_naive_forecaster(sp):
    y = to_sktime(synthetic_history(days=10))
    times = y.index.get_level_values(-1)
    origins = pd.DatetimeIndex([times[0] + pd.Timedelta(hours=h) for h in (170, 181, 200, 226)])

    batch = seasonal_naive_origins(y, origins, horizon=30, sp=sp)

    for origin in origins:
        expected = seasonal_naive(sp).fit(y[times <= origin]).predict(fh=np.arange(1, 31))
        got = batch[batch[schema.ISSUED_AT] == origin].set_index(
            [schema.AREA, schema.CONSUMER_TYPE, schema.DATETIME]
        )[[schema.TARGET]]
        pd.testing.assert_frame_equal(
            got, expected, check_names=False, check_freq=False, check_index_type=False
        )


def test_seasonal_naive_needs_a_full_season_before_the_origin():
    y = to_sktime(synthetic_history(days=10))
    first = y.index.get_level_values(-1).min()

    with pytest.raises(InsufficientHistoryError, match="needs 168 hours of history; only 100 available"):
        seasonal_naive_origins(y, [first + pd.Timedelta(hours=99)], sp=168)
