"""Published forecasts read straight from the bucket's hive-partitioned dataset, for consumers without Dagster.

Only the date folders and the dates asked for are listed, never the whole dataset; each object is read
once by the project's one parquet reader, its schema and issue hour checked, and one that is unreadable
or is not a forecast is named, then skipped or raised, as the caller chooses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from energy_assets.schema import (
    AREA,
    AREA_NAMES,
    CONSUMER_TYPE,
    FORECAST_SCHEMA,
    ISSUED_AT,
    PARTITION_DATE,
    empty_frame,
    schema_mismatch,
)
from energy_assets.settings import DEFAULT_BUCKET_PREFIX
from energy_assets.storage.buckets import Bucket, check_prefix
from energy_assets.storage.objects import asset_folder, date_folder, hour_of_object, read_tables
from energy_assets.timeline import HOUR, to_utc_hour

FORECASTS_ASSET = "energy_forecasts"


@dataclass(frozen=True)
class SkippedHour:
    """An issue hour whose object could not be used as a forecast, and why."""

    issued_at: pd.Timestamp
    uri: str
    reason: str

    def __str__(self) -> str:
        return f"{self.issued_at:%Y-%m-%d %H:%M} UTC ({self.uri}): {self.reason}"


class UnusableForecastError(ValueError):
    """A stored forecast object is unreadable or is not a forecast."""

    def __init__(self, skipped: SkippedHour):
        super().__init__(f"the forecast object issued at {skipped}")
        self.skipped = skipped


class NoSuchSeriesError(LookupError):
    """The forecast read has no rows for the series asked for."""

    def __init__(self, issued_at: pd.Timestamp, uri: str, area: int | None, consumer_type: int | None, series: pd.DataFrame):
        self.issued_at, self.uri, self.area, self.consumer_type = issued_at, uri, area, consumer_type
        self.areas = sorted(int(code) for code in series[AREA].unique())
        # The consumer types of the area asked, or of every area when none was asked or it is not there.
        in_area = series[series[AREA] == area] if area in self.areas else series
        self.consumer_types = sorted(int(code) for code in in_area[CONSUMER_TYPE].unique())
        asked = " and ".join(
            text for text in (
                None if area is None else f"area {AREA_NAMES.get(area, area)}",
                None if consumer_type is None else f"consumer type {consumer_type}",
            ) if text
        )
        super().__init__(
            f"the forecast issued at {issued_at} ({uri}) has no series with {asked}; it has areas "
            f"{', '.join(AREA_NAMES.get(code, str(code)) for code in self.areas)} and consumer types "
            f"{', '.join(map(str, self.consumer_types))}" + (f" in {AREA_NAMES.get(area, area)}" if area in self.areas else "")
        )


class ForecastDataset:
    """The hive-partitioned `energy_forecasts` dataset of a bucket."""

    def __init__(self, bucket: Bucket, prefix: str = DEFAULT_BUCKET_PREFIX):
        self.bucket = bucket
        self.folder = asset_folder(prefix, [FORECASTS_ASSET])
        check_prefix(self.folder)

    def issue_dates(self) -> list[dt.date]:
        """The dates that have a date folder, oldest first (one non-recursive listing)."""
        dates = []
        for name in self.bucket.list_folders(self.folder):
            if name.startswith(f"{PARTITION_DATE}="):
                try:
                    dates.append(dt.date.fromisoformat(name.split("=", 1)[1]))
                except ValueError:
                    continue  # not a folder this layout writes; consumers' own folders are left alone
        return sorted(dates)

    def issue_hours_on(self, date: dt.date) -> dict[pd.Timestamp, str]:
        """Issue hour -> object key of every forecast issued on a UTC date (one listing of that date)."""
        hours = {}
        for key in self.bucket.list_keys(self.folder + date_folder(pd.Timestamp(date))):
            hour = hour_of_object(key[len(self.folder) :])
            if hour is not None:
                hours[hour] = key
        return dict(sorted(hours.items()))

    def issue_hours(self, start: pd.Timestamp, end: pd.Timestamp) -> dict[pd.Timestamp, str]:
        """Issue hour -> object key of every forecast issued from `start` to `end`, listing only those dates."""
        hours = {}
        for date in self.issue_dates():
            if start.date() <= date <= end.date():
                hours.update({hour: key for hour, key in self.issue_hours_on(date).items() if start <= hour <= end})
        return hours

    def read(self, hours: dict[pd.Timestamp, str], skipped: list[SkippedHour] | None) -> dict[pd.Timestamp, pa.Table]:
        """Each hour's forecast table; an unusable object is appended to `skipped` (or raised as
        `UnusableForecastError` when `skipped` is None)."""
        hour_of = {key: hour for hour, key in hours.items()}
        tables, unusable = read_tables(self.bucket, list(hours.values()), lambda key, table: _not_a_forecast(hour_of[key], table))
        for problem in sorted(unusable, key=lambda problem: hour_of[problem.key]):
            skipped_hour = SkippedHour(hour_of[problem.key], problem.uri, problem.reason)
            if skipped is None:
                raise UnusableForecastError(skipped_hour)
            skipped.append(skipped_hour)
        return {hour_of[key]: table for key, table in tables.items()}


def _not_a_forecast(hour: pd.Timestamp, table: pa.Table) -> str | None:
    """Why a table is not the forecast issued at `hour`, or None when it is."""
    problem = schema_mismatch(table.schema, FORECAST_SCHEMA)  # `read_tables` added the later columns old objects lack
    if problem:
        return f"not a forecast: it {problem}"
    issued = pc.unique(table[ISSUED_AT]).to_pylist()
    if any(to_utc_hour(value) != hour for value in issued):
        return f"holds forecasts issued at {sorted(map(str, issued))[:3]}, not at the hour its name gives"
    return None


def latest_forecast(
    bucket: Bucket,
    at_or_before: pd.Timestamp | None,
    area: int | None = None,
    consumer_type: int | None = None,
    prefix: str = DEFAULT_BUCKET_PREFIX,
    skipped: list[SkippedHour] | None = None,
) -> pd.DataFrame:
    """The newest usable forecast issued at or before `at_or_before` (None: the newest stored), for every
    series or the one selected.

    With a `skipped` list, unusable objects of newer hours are appended to it and older hours tried;
    without one, the first unusable object raises `UnusableForecastError`.
    """
    at = None if at_or_before is None else to_utc_hour(at_or_before)
    dataset = ForecastDataset(bucket, prefix)
    for date in reversed([date for date in dataset.issue_dates() if at is None or date <= at.date()]):
        for hour, path in reversed([(hour, path) for hour, path in dataset.issue_hours_on(date).items() if at is None or hour <= at]):
            tables = dataset.read({hour: path}, skipped)
            if hour not in tables:
                continue
            forecast = tables[hour].to_pandas()
            selected = select_series(forecast, area, consumer_type)
            if selected.empty:
                raise NoSuchSeriesError(hour, bucket.uri(path), area, consumer_type, forecast)
            return selected
    when = "" if at is None else f" at or before {at}"
    raise LookupError(f"no usable forecast issued{when} in {bucket.uri(dataset.folder)}")


def previous_issue_hour(issued_at: pd.Timestamp) -> pd.Timestamp:
    """The issue hour whose forecast `series_missing_since_previous_hour` compares with `issued_at`'s."""
    return to_utc_hour(issued_at) - HOUR


def series_missing_since_previous_hour(
    bucket: Bucket,
    issued_at: pd.Timestamp,
    forecast: pd.DataFrame,
    area: int | None = None,
    consumer_type: int | None = None,
    prefix: str = DEFAULT_BUCKET_PREFIX,
) -> pd.DataFrame:
    """The (area, consumer_type) series, of the area and/or consumer type selected, that the forecast issued the
    hour before `issued_at` (`previous_issue_hour`) has and `forecast` (issued at it) lacks, in key order; none
    when that hour has no usable object.

    The forecasts asset writes no rows for a series the gap rule refuses at an hour (`history_gaps`), so what is
    absent is found by comparing with the hour before, which the hourly schedule wrote from the same series.
    """
    keys = [AREA, CONSUMER_TYPE]
    previous = previous_issue_hour(issued_at)
    dataset = ForecastDataset(bucket, prefix)
    tables = dataset.read(dataset.issue_hours(previous, previous), [])
    if previous not in tables:
        return pd.DataFrame({key: pd.Series(dtype="int64") for key in keys})
    before = select_series(tables[previous].select(keys).to_pandas(), area, consumer_type)
    before = before[keys].astype("int64").drop_duplicates()
    now = forecast[keys].astype("int64").drop_duplicates()
    missing = before.merge(now, on=keys, how="left", indicator=True)
    return missing[missing["_merge"] == "left_only"][keys].sort_values(keys).reset_index(drop=True)


def gather_forecasts(
    bucket: Bucket,
    issued_from: pd.Timestamp,
    issued_to: pd.Timestamp,
    area: int | None = None,
    consumer_type: int | None = None,
    prefix: str = DEFAULT_BUCKET_PREFIX,
    skipped: list[SkippedHour] | None = None,
) -> pd.DataFrame:
    """Every forecast issued from `issued_from` to `issued_to` (both included) in one table, oldest issue first;
    zero rows with the forecast columns when none was issued then. Unusable objects are appended to
    `skipped`, or raise `UnusableForecastError` when it is None."""
    start, end = to_utc_hour(issued_from), to_utc_hour(issued_to)
    if start > end:
        raise ValueError(f"issued_from {start} is after issued_to {end}")
    dataset = ForecastDataset(bucket, prefix)
    tables = dataset.read(dataset.issue_hours(start, end), skipped)
    if not tables:
        return empty_frame(FORECAST_SCHEMA)
    gathered = pa.concat_tables([tables[hour] for hour in sorted(tables)]).to_pandas()
    return select_series(gathered, area, consumer_type)


def select_series(forecast: pd.DataFrame, area: int | None, consumer_type: int | None) -> pd.DataFrame:
    """The rows of one area and/or consumer type (every row for None)."""
    keep = pd.Series(True, index=forecast.index)
    if area is not None:
        keep &= forecast[AREA] == area
    if consumer_type is not None:
        keep &= forecast[CONSUMER_TYPE] == consumer_type
    return forecast[keep].reset_index(drop=True)
