"""Reading published forecasts from a bucket without Dagster."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import fsspec.implementations.local
import pandas as pd
import pyarrow as pa
import pytest

from energy_assets.storage.forecasts import (
    SkippedHour,
    UnusableForecastError,
    gather_forecasts,
    latest_forecast,
    series_missing_since_previous_hour,
)
from energy_assets.storage.objects import parquet_bytes, partition_object_key, read_frame, to_arrow
from energy_assets.storage.buckets import Bucket, LocalBucket
from energy_assets.schema import (
    FORECAST,
    LATER_FORECAST_COLUMNS,
    FORECAST_COLUMNS,
    FORECAST_SCHEMA,
    HISTORY_HOURS_MISSING,
    INTERVAL_COLUMNS,
    conform,
    interval_column,
)

ISSUED = ["2023-01-14-20:00", "2023-01-14-21:00", "2023-01-14-23:00"]
MODEL_7_SHA256 = hashlib.sha256(b"the training of model version 7").hexdigest()


def forecast_rows(issued_key: str) -> pd.DataFrame:
    """A forecast issued at `issued_key` for two series, 24 hours ahead; the value encodes the issue hour."""
    issued = pd.to_datetime(issued_key, format="%Y-%m-%d-%H:%M", utc=True).as_unit("us")
    rows = [
        (area, 111, issued, issued + pd.Timedelta(hours=horizon), horizon, 100.0 * issued.hour + horizon, 7, MODEL_7_SHA256)
        for area in (1, 2)
        for horizon in range(1, 25)
    ]
    frame = pd.DataFrame(rows, columns=[c for c in FORECAST_COLUMNS if c not in [*INTERVAL_COLUMNS, HISTORY_HOURS_MISSING]])
    for spread, coverage in ((0.1, 0.8), (0.2, 0.95)):
        frame[interval_column("lower", coverage)] = frame[FORECAST] * (1 - spread)
        frame[interval_column("upper", coverage)] = frame[FORECAST] * (1 + spread)
    frame[HISTORY_HOURS_MISSING] = 0
    return frame[FORECAST_COLUMNS]


def test_objects_written_before_intervals_read_with_missing_bounds_and_count(tmp_path):
    bucket = LocalBucket(str(tmp_path))
    publish(bucket, ISSUED[1:])
    schema_before_intervals = pa.schema([f for f in FORECAST_SCHEMA if f.name not in LATER_FORECAST_COLUMNS])
    bucket.write_bytes(
        partition_object_key("energy_assets", ["energy_forecasts"], ISSUED[0]),
        parquet_bytes(conform(forecast_rows(ISSUED[0]), schema_before_intervals, "old forecasts")),
    )
    skipped = []

    gathered = gather_forecasts(bucket, pd.Timestamp("2023-01-14 20:00", tz="UTC"), pd.Timestamp("2023-01-14 23:00", tz="UTC"), skipped=skipped)
    oldest = latest_forecast(bucket, pd.Timestamp("2023-01-14 20:30", tz="UTC"))

    assert skipped == []
    assert list(gathered.columns) == FORECAST_COLUMNS and len(gathered) == 3 * 48
    old = gathered[gathered["issued_at"] == gathered["issued_at"].min()]
    assert old[INTERVAL_COLUMNS].isna().all().all() and old[FORECAST].notna().all()
    # Null, not 0: an old forecast may have read a filled hour, and nothing says whether it did.
    assert old[HISTORY_HOURS_MISSING].isna().all() and (gathered[HISTORY_HOURS_MISSING].drop(old.index) == 0).all()
    assert gathered.loc[gathered.index.difference(old.index), INTERVAL_COLUMNS].notna().all().all()
    assert oldest[INTERVAL_COLUMNS].isna().all().all()
    # The IO manager's reader (a backfill loading many partitions) takes the mix as well.
    stored = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*.parquet"))
    mixed = read_frame(bucket, stored)
    assert list(mixed.columns) == FORECAST_COLUMNS and mixed[INTERVAL_COLUMNS].isna().sum().sum() == 48 * 4
    assert mixed[HISTORY_HOURS_MISSING].isna().sum() == 48


def publish(bucket: Bucket, issued_keys=ISSUED, prefix: str = "energy_assets") -> None:
    """Store forecasts where the IO manager puts the energy_forecasts asset."""
    for key in issued_keys:
        bucket.write_bytes(
            partition_object_key(prefix, ["energy_forecasts"], key), parquet_bytes(to_arrow(forecast_rows(key)))
        )


def test_latest_is_the_newest_issued_at_or_before_the_hour(any_bucket):
    publish(any_bucket)
    at_issue = latest_forecast(any_bucket, pd.Timestamp("2023-01-14 21:00", tz="UTC"))
    between = latest_forecast(any_bucket, pd.Timestamp("2023-01-14 22:59", tz="UTC"))
    assert set(at_issue["issued_at"]) == set(between["issued_at"]) == {pd.Timestamp("2023-01-14 21:00", tz="UTC")}
    assert len(at_issue) == 48
    assert list(at_issue.columns) == FORECAST_COLUMNS
    pd.testing.assert_series_equal(at_issue.dtypes, FORECAST_SCHEMA.empty_table().to_pandas().dtypes)


def test_the_series_missing_since_the_hour_before_are_those_it_had(any_bucket):
    publish(any_bucket)
    refused = forecast_rows("2023-01-14-22:00")
    any_bucket.write_bytes(
        partition_object_key("energy_assets", ["energy_forecasts"], "2023-01-14-22:00"),
        parquet_bytes(to_arrow(refused[refused["area"] == 2])),
    )
    at_22 = latest_forecast(any_bucket, "2023-01-14 22:00")
    missing = series_missing_since_previous_hour(any_bucket, pd.Timestamp("2023-01-14 22:00", tz="UTC"), at_22)
    assert missing.to_dict("records") == [{"area": 1, "consumer_type": 111}]
    assert series_missing_since_previous_hour(any_bucket, pd.Timestamp("2023-01-14 22:00", tz="UTC"), at_22, area=2).empty
    # 21:00 has every series of 20:00; before 20:00 there is no object to compare with: none missing either way.
    at_21 = latest_forecast(any_bucket, "2023-01-14 21:00")
    assert series_missing_since_previous_hour(any_bucket, pd.Timestamp("2023-01-14 21:00", tz="UTC"), at_21).empty
    at_20 = latest_forecast(any_bucket, "2023-01-14 20:00")
    assert series_missing_since_previous_hour(any_bucket, pd.Timestamp("2023-01-14 20:00", tz="UTC"), at_20.iloc[:0]).empty


def test_latest_of_one_series(any_bucket):
    publish(any_bucket)
    forecast = latest_forecast(any_bucket, "2023-01-15 12:00", area=2, consumer_type=111)
    assert forecast["area"].unique().tolist() == [2]
    assert forecast["horizon"].tolist() == list(range(1, 25))
    assert forecast["energy_consumption_forecast"].iloc[0] == 2301.0


def test_latest_before_any_issue_names_the_folder(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    with pytest.raises(LookupError, match=f"no usable forecast issued at or before 2023-01-14 19:00:00\\+00:00 in {bucket.uri('energy_assets/energy_forecasts/')}"):
        latest_forecast(bucket, "2023-01-14 19:00")


def test_latest_of_an_unknown_series_says_so(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    with pytest.raises(LookupError, match="has no series with area DK1 and consumer type 999; it has areas DK1, DK2 and consumer types 111 in DK1"):
        latest_forecast(bucket, "2023-01-15", area=1, consumer_type=999)


def test_gather_takes_both_ends_in_issue_order(any_bucket):
    publish(any_bucket)
    gathered = gather_forecasts(any_bucket, "2023-01-14 21:00", "2023-01-14 23:00", area=1)
    assert gathered["issued_at"].dt.hour.unique().tolist() == [21, 23]
    assert len(gathered) == 2 * 24 and set(gathered["area"]) == {1}


def test_gather_of_an_empty_range_has_the_forecast_columns(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    gathered = gather_forecasts(bucket, "2023-01-14 22:00", "2023-01-14 22:30")
    assert gathered.empty and list(gathered.columns) == FORECAST_COLUMNS
    with pytest.raises(ValueError, match="is after issued_to"):
        gather_forecasts(bucket, "2023-01-15", "2023-01-14")


class CountingFileSystem(fsspec.implementations.local.LocalFileSystem):
    """A local fsspec file system that records what it lists and reads."""

    def __init__(self, calls: list[str]):
        super().__init__()
        self.calls = calls

    def ls(self, path, detail=False, **kwargs):
        self.calls.append(f"ls {path}")
        return super().ls(path, detail=detail, **kwargs)

    def find(self, path, *args, **kwargs):
        self.calls.append(f"find {path}")
        return super().find(path, *args, **kwargs)

    def cat_file(self, path, *args, **kwargs):
        self.calls.append(f"read {path}")
        return super().cat_file(path, *args, **kwargs)


@dataclass(frozen=True)
class CountingBucket(LocalBucket):
    """A LocalBucket whose file system records its listings and reads."""

    _calls: list[str] = field(default_factory=list, compare=False)

    @property
    def filesystem(self):
        return CountingFileSystem(self._calls)


def test_latest_lists_only_the_dates_and_the_day_it_reads(tmp_path):
    bucket = CountingBucket(root_dir=str(tmp_path))
    publish(bucket, ["2023-01-12-05:00", *ISSUED])
    bucket._calls.clear()
    latest_forecast(bucket, "2023-01-14 22:00")
    folder = f"{Path(bucket.root_dir).resolve()}/energy_assets/energy_forecasts"
    # The dataset's date folders (one listing, not recursive), then the day asked for; on GCS each is one request.
    assert [call for call in bucket._calls if call.startswith(("ls", "find"))][:2] == [
        f"ls {folder}",
        f"find {folder}/utc_date=2023-01-14",
    ]
    assert not any("utc_date=2023-01-12" in call for call in bucket._calls)
    read = [call.split(" ", 1)[1] for call in bucket._calls if call.startswith("read")]
    assert read == [f"{folder}/utc_date=2023-01-14/utc_hour=21/part-0.parquet"]


def test_objects_are_hive_partitioned_without_colons(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    keys = bucket.list_keys("energy_assets/")
    assert keys == [
        "energy_assets/energy_forecasts/utc_date=2023-01-14/utc_hour=20/part-0.parquet",
        "energy_assets/energy_forecasts/utc_date=2023-01-14/utc_hour=21/part-0.parquet",
        "energy_assets/energy_forecasts/utc_date=2023-01-14/utc_hour=23/part-0.parquet",
    ]
    assert not any(":" in key for key in keys)


def spoil(bucket: Bucket, issued_key: str, data: bytes) -> str:
    """Replace the forecast object of an issue hour with `data`; its URI."""
    key = partition_object_key("energy_assets", ["energy_forecasts"], issued_key)
    return bucket.write_bytes(key, data)


def truncated(issued_key: str) -> bytes:
    whole = parquet_bytes(to_arrow(forecast_rows(issued_key)))
    return whole[: len(whole) // 2]


def consumption_object() -> bytes:
    rows = pd.DataFrame(
        {"datetime_utc": [pd.Timestamp("2023-01-14 23:00", tz="UTC")], "area": [1], "consumer_type": [111], "energy_consumption": [5.0]}
    )
    return parquet_bytes(to_arrow(rows))


@pytest.mark.parametrize(
    "bad, reason",
    [
        (truncated("2023-01-14-23:00"), "not a readable parquet object"),
        (b"", "not a readable parquet object"),
        (consumption_object(), "not a forecast: it has columns ['datetime_utc', 'area', 'consumer_type', 'energy_consumption']"),
        (parquet_bytes(to_arrow(forecast_rows("2023-01-14-20:00"))), "holds forecasts issued at"),
    ],
    ids=["truncated", "zero-byte", "consumption_raw", "wrong-hour"],
)
def test_an_unusable_object_is_named_and_skipped(any_bucket, bad, reason):
    publish(any_bucket)
    uri = spoil(any_bucket, "2023-01-14-23:00", bad)
    with pytest.raises(UnusableForecastError) as raised:
        gather_forecasts(any_bucket, "2023-01-14 20:00", "2023-01-14 23:00")
    assert uri in str(raised.value) and reason in str(raised.value)
    skipped: list[SkippedHour] = []
    gathered = gather_forecasts(any_bucket, "2023-01-14 20:00", "2023-01-14 23:00", skipped=skipped)
    assert gathered["issued_at"].dt.hour.unique().tolist() == [20, 21]
    assert [(hour.issued_at, hour.uri) for hour in skipped] == [(pd.Timestamp("2023-01-14 23:00", tz="UTC"), uri)]
    assert reason in skipped[0].reason
    skipped.clear()
    latest = latest_forecast(any_bucket, "2023-01-15", skipped=skipped)
    assert set(latest["issued_at"]) == {pd.Timestamp("2023-01-14 21:00", tz="UTC")}
    assert [hour.uri for hour in skipped] == [uri]
