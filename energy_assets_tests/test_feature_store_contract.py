"""The feature-store contract, run against every implementation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    CONSUMPTION_DTYPES,
    DATETIME,
    SERIES_KEY,
    TARGET,
    empty_consumption_frame,
)

START = pd.Timestamp("2023-01-01 20:00", tz="UTC")
SERIES = pd.DataFrame({AREA: [1, 1, 2], CONSUMER_TYPE: [111, 999, 111]})

MakeStore = Callable[..., FeatureStore]


def consumption_rows(series: pd.DataFrame, hours: pd.DatetimeIndex, offset: float = 0.0) -> pd.DataFrame:
    """One row per series and hour, with a value unique to each row, in canonical column order."""
    rows = series[SERIES_KEY].merge(pd.DataFrame({DATETIME: hours}), how="cross")
    rows[TARGET] = np.arange(len(rows), dtype="float64") + offset
    return rows[CONSUMPTION_COLUMNS]


def canonical(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` as a store must return them: canonical dtypes, sorted by series then hour."""
    return rows.astype(CONSUMPTION_DTYPES).sort_values([*SERIES_KEY, DATETIME]).reset_index(drop=True)


@pytest.fixture(params=["local", "hopsworks"])
def make_store(request, tmp_path) -> MakeStore:
    """Build stores of one implementation sharing one backend: make_store(feature_group_version)."""

    def make(feature_group_version: int = 1) -> FeatureStore:
        if request.param == "local":
            return LocalFeatureStore(root_dir=str(tmp_path / "feature_store"), feature_group_version=feature_group_version)
        from energy_assets_tests.hopsworks_fake import hopsworks_feature_store

        return hopsworks_feature_store(tmp_path, feature_group_version=feature_group_version)

    return make


def test_round_trip_returns_canonical_dtypes_sorted(make_store: MakeStore):
    store = make_store()
    rows = consumption_rows(SERIES, pd.date_range(START, periods=8, freq="h"))
    loose = rows.sample(frac=1, random_state=0).astype({AREA: "int64", CONSUMER_TYPE: "int64"})
    loose[DATETIME] = loose[DATETIME].astype("datetime64[ns, UTC]")

    store.insert(loose)

    result = store.read(START, START + pd.Timedelta(hours=8))
    assert result.dtypes.astype(str).to_dict() == CONSUMPTION_DTYPES
    pd.testing.assert_frame_equal(result, canonical(rows))


def test_inserting_the_same_rows_twice_stores_them_once(make_store: MakeStore):
    store = make_store()
    rows = consumption_rows(SERIES, pd.date_range(START, periods=6, freq="h"))

    store.insert(rows)
    store.insert(rows)

    pd.testing.assert_frame_equal(store.read(START, START + pd.Timedelta(days=1)), canonical(rows))


def test_a_new_value_replaces_the_stored_row_with_the_same_key(make_store: MakeStore):
    store = make_store()
    rows = consumption_rows(SERIES, pd.date_range(START, periods=6, freq="h"))
    store.insert(rows)
    corrected = rows[rows[DATETIME] >= START + pd.Timedelta(hours=4)].assign(**{TARGET: -1.0})

    store.insert(corrected)

    expected = rows.copy()
    expected.loc[expected[DATETIME] >= START + pd.Timedelta(hours=4), TARGET] = -1.0
    pd.testing.assert_frame_equal(store.read(START, START + pd.Timedelta(days=1)), canonical(expected))


def test_window_includes_start_and_excludes_end_across_midnight(make_store: MakeStore):
    store = make_store()
    rows = consumption_rows(SERIES, pd.date_range(START, periods=12, freq="h"))
    store.insert(rows)
    start, end = START + pd.Timedelta(hours=2), START + pd.Timedelta(hours=7)

    result = store.read(start, end)

    assert sorted(result[DATETIME].unique()) == list(pd.date_range(start, end, freq="h", inclusive="left"))
    pd.testing.assert_frame_equal(result, canonical(rows[(rows[DATETIME] >= start) & (rows[DATETIME] < end)]))


def test_read_only_the_selected_series(make_store: MakeStore):
    store = make_store()
    rows = consumption_rows(SERIES, pd.date_range(START, periods=5, freq="h"))
    store.insert(rows)
    wanted = pd.DataFrame({AREA: [2, 1], CONSUMER_TYPE: [111, 999]})

    result = store.read(START, START + pd.Timedelta(hours=5), series=wanted)

    expected = rows.merge(wanted, on=SERIES_KEY)[CONSUMPTION_COLUMNS]
    pd.testing.assert_frame_equal(result, canonical(expected))


def test_feature_group_versions_are_separate_stores(make_store: MakeStore):
    first, second = make_store(1), make_store(2)
    hours = pd.date_range(START, periods=4, freq="h")
    first_rows, second_rows = consumption_rows(SERIES, hours), consumption_rows(SERIES, hours, offset=100.0)

    first.insert(first_rows)
    second.insert(second_rows)

    window = (START, START + pd.Timedelta(hours=4))
    pd.testing.assert_frame_equal(first.read(*window), canonical(first_rows))
    pd.testing.assert_frame_equal(second.read(*window), canonical(second_rows))


def test_reading_a_version_never_written_gives_an_empty_canonical_frame(make_store: MakeStore):
    make_store(1).insert(consumption_rows(SERIES, pd.date_range(START, periods=4, freq="h")))

    never_written = make_store(7).read(START, START + pd.Timedelta(hours=4))
    outside_the_data = make_store(1).read(START - pd.Timedelta(days=3), START)

    pd.testing.assert_frame_equal(never_written, empty_consumption_frame())
    pd.testing.assert_frame_equal(outside_the_data, empty_consumption_frame())
