"""Published forecasts read straight from the bucket's hive-partitioned dataset, for consumers without Dagster.

Through the bucket's pyarrow file system, only the date folders and the dates asked for are listed, never
the whole dataset; each object is opened once, its schema and issue hour checked, and one that is
unreadable or is not a forecast is named, then skipped or raised, as the caller chooses.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs as arrow_fs

from energy_assets.schema import (
    AREA,
    AREA_NAMES,
    CONSUMER_TYPE,
    FORECAST_SCHEMA,
    INTERVAL_COLUMNS,
    ISSUED_AT,
    PARTITION_DATE,
    empty_frame,
    schema_mismatch,
    with_absent_columns,
)
from energy_assets.settings import DEFAULT_BUCKET_PREFIX
from energy_assets.storage.buckets import Bucket, check_prefix
from energy_assets.storage.objects import asset_folder, date_folder, hour_of_object
from energy_assets.timeline import to_utc_hour

FORECASTS_ASSET = "energy_forecasts"
# Reads are network round trips on GCS; a few in flight hide most of the latency.
_READ_THREADS = 8


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
    """The hive-partitioned `energy_forecasts` dataset of a bucket, seen through a pyarrow file system."""

    def __init__(self, bucket: Bucket, prefix: str = DEFAULT_BUCKET_PREFIX):
        self.bucket = bucket
        self.folder = asset_folder(prefix, [FORECASTS_ASSET])
        check_prefix(self.folder)
        self.filesystem, root = bucket.arrow_filesystem()
        self.path = f"{root}/{self.folder}"

    def issue_dates(self) -> list[dt.date]:
        """The dates that have a date folder, oldest first (one non-recursive listing)."""
        infos = self.filesystem.get_file_info(arrow_fs.FileSelector(self.path, allow_not_found=True))
        dates = []
        for info in infos:
            name = info.base_name
            if info.type == arrow_fs.FileType.Directory and name.startswith(f"{PARTITION_DATE}="):
                try:
                    dates.append(dt.date.fromisoformat(name.split("=", 1)[1]))
                except ValueError:
                    continue  # not a folder this layout writes; consumers' own folders are left alone
        return sorted(dates)

    def issue_hours_on(self, date: dt.date) -> dict[pd.Timestamp, str]:
        """Issue hour -> object path of every forecast issued on a UTC date (one listing of that date)."""
        date_path = self.path + date_folder(pd.Timestamp(date))
        infos = self.filesystem.get_file_info(arrow_fs.FileSelector(date_path, allow_not_found=True, recursive=True))
        hours = {}
        for info in infos:
            hour = hour_of_object(info.path[len(self.path) :]) if info.type == arrow_fs.FileType.File else None
            if hour is not None:
                hours[hour] = info.path
        return dict(sorted(hours.items()))

    def issue_hours(self, start: pd.Timestamp, end: pd.Timestamp) -> dict[pd.Timestamp, str]:
        """Issue hour -> object path of every forecast issued from `start` to `end`, listing only those dates."""
        dates = [date for date in self.issue_dates() if start.date() <= date <= end.date()]
        hours = {}
        if not dates:
            return hours
        # One listing per date, several in flight: on GCS each is a round trip.
        with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(dates))) as pool:
            for listed in pool.map(self.issue_hours_on, dates):
                hours.update({hour: path for hour, path in listed.items() if start <= hour <= end})
        return hours

    def uri(self, path: str) -> str:
        """The bucket URI of an object path of this dataset."""
        return self.bucket.uri(self.folder + path[len(self.path) :])

    def read(self, hours: dict[pd.Timestamp, str], skipped: list[SkippedHour] | None) -> dict[pd.Timestamp, pa.Table]:
        """Each hour's forecast table, read concurrently; an unusable object is appended to `skipped`
        (or raised as `UnusableForecastError` when `skipped` is None)."""
        if not hours:
            return {}
        with ThreadPoolExecutor(max_workers=min(_READ_THREADS, len(hours))) as pool:
            # Every read finishes inside the pool, errors included, before any is reported.
            results = dict(zip(hours, pool.map(lambda item: self._read_one(*item), hours.items())))
        tables = {}
        for hour, result in results.items():
            if isinstance(result, pa.Table):
                tables[hour] = result
                continue
            problem = SkippedHour(hour, self.uri(hours[hour]), result)
            if skipped is None:
                raise UnusableForecastError(problem)
            skipped.append(problem)
        return tables


    def _read_one(self, hour: pd.Timestamp, path: str) -> pa.Table | str:
        """The forecast in one object, opened once, or why it is not one."""
        try:
            with self.filesystem.open_input_file(path) as handle:
                parquet = pq.ParquetFile(handle)
                # Objects written before forecasts carried intervals lack their columns: read as nulls.
                problem = schema_mismatch(parquet.schema_arrow, FORECAST_SCHEMA, optional=INTERVAL_COLUMNS)
                if problem:
                    return f"not a forecast: it {problem}"
                table = parquet.read()
        except (pa.ArrowException, OSError) as error:
            return f"not a readable parquet object: {error}"
        issued = pc.unique(table[ISSUED_AT]).to_pylist()
        if any(to_utc_hour(value) != hour for value in issued):
            return f"holds forecasts issued at {sorted(map(str, issued))[:3]}, not at the hour its name gives"
        return with_absent_columns(table, FORECAST_SCHEMA)


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
                raise NoSuchSeriesError(hour, dataset.uri(path), area, consumer_type, forecast)
            return selected
    when = "" if at is None else f" at or before {at}"
    raise LookupError(f"no usable forecast issued{when} in {bucket.uri(dataset.folder)}")


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
