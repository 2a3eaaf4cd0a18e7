"""Hours as the project names them: UTC timestamps, partition keys, Danish local time and holidays."""

from __future__ import annotations

from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

# The grid step: every series has one value per UTC hour, and every partition is one hour.
HOUR = pd.Timedelta(hours=1)
# Dagster's HourlyPartitionsDefinition key format, e.g. 2023-01-14-23:00.
HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"
# Consumption follows Danish wall-clock time, whatever the zone of the timestamps.
DANISH_TIME_ZONE = "Europe/Copenhagen"
# Christmas Eve and New Year's Eve are "optional" holidays in the calendar but shut offices like public ones.
HOLIDAY_CATEGORIES = ("public", "optional")


def to_utc_hour(value) -> pd.Timestamp:
    """A timestamp as a tz-aware UTC pandas Timestamp; naive values are taken as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def hour_key(hour: pd.Timestamp) -> str:
    """The partition key naming a UTC hour."""
    return to_utc_hour(hour).strftime(HOUR_KEY_FORMAT)


def parse_hour_key(key: str) -> pd.Timestamp:
    """The UTC hour a partition key names; `ValueError` for anything else."""
    return pd.Timestamp(pd.to_datetime(key, format=HOUR_KEY_FORMAT, utc=True))


def parse_time(value: str) -> pd.Timestamp:
    """A UTC time from a partition key such as 2023-01-14-23:00 or from ISO text; `ValueError` for anything else."""
    try:
        return parse_hour_key(value)
    except ValueError:
        return to_utc_hour(value)


def newest_published_hour(now: pd.Timestamp, publication_delay: pd.Timedelta) -> pd.Timestamp:
    """The newest hour whose data is complete at `now`, given the source's publication delay."""
    return (to_utc_hour(now) - publication_delay).floor("h") - HOUR


@lru_cache(maxsize=64)
def _holiday_dates(first_year: int, last_year: int) -> pd.DatetimeIndex:
    days = holidays.country_holidays("DK", years=range(first_year, last_year + 1), categories=HOLIDAY_CATEGORIES)
    return pd.DatetimeIndex(sorted(days.keys()))


def is_danish_holiday(local_dates: pd.DatetimeIndex) -> "np.ndarray":
    """Per naive local date: a Danish public holiday, Christmas Eve or New Year's Eve."""
    if len(local_dates) == 0:
        return local_dates.isin([])
    return local_dates.isin(_holiday_dates(int(local_dates.year.min()), int(local_dates.year.max())))
