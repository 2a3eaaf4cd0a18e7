"""The synthetic source: DE35 shape, determinism for any window, plausible levels and patterns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from energy_assets.schema import AREA, CONSUMER_TYPE, CONSUMPTION_DTYPES, DATETIME, SERIES_KEY, TARGET, de35_series
from energy_assets.sources.synthetic import synthetic_consumption

LOCAL = "Europe/Copenhagen"


def _local_means(frame: pd.DataFrame, code: int, area: int = 1) -> pd.DataFrame:
    rows = frame[(frame[CONSUMER_TYPE] == code) & (frame[AREA] == area)].copy()
    local = rows[DATETIME].dt.tz_convert(LOCAL)
    rows["hour"], rows["date"] = local.dt.hour, local.dt.date
    return rows


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    return synthetic_consumption(pd.Timestamp("2023-01-02", tz="UTC"), pd.Timestamp("2023-01-30", tz="UTC"))


def test_every_series_every_hour_sorted_with_canonical_types():
    frame = synthetic_consumption("2023-03-01T00:00Z", "2023-03-02T00:00Z")
    assert frame.dtypes.astype(str).to_dict() == CONSUMPTION_DTYPES
    assert len(frame) == 24 * 76
    assert frame[DATETIME].nunique() == 24
    pd.testing.assert_frame_equal(frame[SERIES_KEY].drop_duplicates().reset_index(drop=True), de35_series())
    assert frame.equals(frame.sort_values([DATETIME, AREA, CONSUMER_TYPE]).reset_index(drop=True))


@pytest.mark.parametrize(
    "start, split, end",
    [
        ("2023-01-01T00:00Z", "2023-01-01T07:00Z", "2023-01-02T00:00Z"),
        ("2021-03-27T20:00Z", "2021-03-28T01:30Z", "2021-03-29T05:00Z"),  # DST start, split off the hour
        ("1999-12-31T18:00Z", "2000-01-01T00:00Z", "2000-01-01T03:00Z"),
        ("2031-10-25T00:00Z", "2031-10-26T01:00Z", "2031-10-27T00:00Z"),  # DST end
    ],
)
def test_same_values_for_the_same_hour_however_the_window_is_split(start, split, end):
    whole = synthetic_consumption(start, end)
    parts = pd.concat([synthetic_consumption(start, split), synthetic_consumption(split, end)], ignore_index=True)
    pd.testing.assert_frame_equal(parts, whole)
    pd.testing.assert_frame_equal(synthetic_consumption(start, end), whole)


def test_an_hour_has_the_same_value_inside_any_longer_window():
    hour = pd.Timestamp("2024-06-05T11:00Z")
    alone = synthetic_consumption(hour, hour + pd.Timedelta(hours=1))
    longer = synthetic_consumption(hour - pd.Timedelta(days=40), hour + pd.Timedelta(days=3))
    pd.testing.assert_frame_equal(longer[longer[DATETIME] == hour].reset_index(drop=True), alone)


def test_window_bounds_are_half_open_and_whole_hours():
    frame = synthetic_consumption("2023-01-01T00:30Z", "2023-01-01T03:00Z")
    assert list(frame[DATETIME].unique()) == list(pd.date_range("2023-01-01T01:00Z", periods=2, freq="h"))
    with pytest.raises(ValueError, match="empty window"):
        synthetic_consumption("2023-01-01T03:00Z", "2023-01-01T03:00Z")


def test_levels_span_hundreds_to_about_a_million_kwh_and_dk2_is_smaller(january):
    values = january[TARGET]
    assert (values > 0).all() and np.isfinite(values).all()
    assert 50 < values.min() < 1_000
    assert 500_000 < values.max() < 3_000_000
    by_area = january.groupby(AREA)[TARGET].sum()
    assert by_area[2] < 0.8 * by_area[1]


def test_households_peak_in_the_evening(january):
    households = _local_means(january, 121)
    evening = households[households["hour"].between(17, 20)][TARGET].mean()
    night = households[households["hour"].between(2, 4)][TARGET].mean()
    assert evening > 1.8 * night


def test_industry_works_weekdays_and_rests_on_sundays_and_holidays():
    year_end = synthetic_consumption("2023-12-10T00:00Z", "2024-01-01T00:00Z")
    industry = _local_means(year_end, 350)
    noon = industry[industry["hour"] == 11].set_index("date")[TARGET]
    monday, sunday, christmas_day = pd.Timestamp("2023-12-11"), pd.Timestamp("2023-12-17"), pd.Timestamp("2023-12-25")
    assert christmas_day.dayofweek == monday.dayofweek == 0
    assert noon[sunday.date()] < 0.6 * noon[monday.date()]
    assert noon[christmas_day.date()] < 0.6 * noon[monday.date()]


def test_offices_work_office_hours_and_street_lights_shine_at_night(january):
    office = _local_means(january, 443)
    weekday = office[pd.to_datetime(office["date"]).dt.dayofweek < 5]
    assert weekday[weekday["hour"].between(9, 14)][TARGET].mean() > 2 * weekday[weekday["hour"] >= 21][TARGET].mean()
    lights = _local_means(january, 450)
    assert lights[lights["hour"] == 22][TARGET].mean() > 5 * lights[lights["hour"] == 12][TARGET].mean()


def test_noise_varies_by_hour_and_series_but_stays_moderate(january):
    households = _local_means(january, 111)
    same_hour = households[households["hour"] == 19][TARGET]
    assert same_hour.nunique() == len(same_hour)
    relative_spread = same_hour.std() / same_hour.mean()
    assert 0.01 < relative_spread < 0.3
    dk1, dk2 = _local_means(january, 111, 1)[TARGET].to_numpy(), _local_means(january, 111, 2)[TARGET].to_numpy()
    assert not np.allclose(dk2 / dk1, (dk2 / dk1)[0])
