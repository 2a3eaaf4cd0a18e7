"""Reading published forecasts from a bucket without Dagster."""

from __future__ import annotations

import pandas as pd
import pytest
from dataclasses import dataclass, field

from energy_assets.storage.forecasts import gather_forecasts, issued_hours, latest_forecast
from energy_assets.storage.objects import parquet_bytes, partition_object_key, to_arrow
from energy_assets.storage.buckets import Bucket, LocalBucket
from energy_assets.schema import FORECAST_COLUMNS, FORECAST_SCHEMA

ISSUED = ["2023-01-14-20:00", "2023-01-14-21:00", "2023-01-14-23:00"]


def forecast_rows(issued_key: str) -> pd.DataFrame:
    """A forecast issued at `issued_key` for two series, 24 hours ahead; the value encodes the issue hour."""
    issued = pd.to_datetime(issued_key, format="%Y-%m-%d-%H:%M", utc=True).as_unit("us")
    rows = [
        (area, 111, issued, issued + pd.Timedelta(hours=horizon), horizon, 100.0 * issued.hour + horizon, 7)
        for area in (1, 2)
        for horizon in range(1, 25)
    ]
    return pd.DataFrame(rows, columns=FORECAST_COLUMNS)


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


def test_latest_of_one_series(any_bucket):
    publish(any_bucket)
    forecast = latest_forecast(any_bucket, "2023-01-15 12:00", area=2, consumer_type=111)
    assert forecast["area"].unique().tolist() == [2]
    assert forecast["horizon"].tolist() == list(range(1, 25))
    assert forecast["energy_consumption_forecast"].iloc[0] == 2301.0


def test_latest_before_any_issue_names_the_folder(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    with pytest.raises(LookupError, match=f"no forecast issued at or before 2023-01-14 19:00:00\\+00:00 in {bucket.uri('energy_assets/energy_forecasts/')}"):
        latest_forecast(bucket, "2023-01-14 19:00")


def test_latest_of_an_unknown_series_says_so(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    with pytest.raises(LookupError, match="has no series with area=1 and consumer_type=999"):
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


@dataclass(frozen=True)
class CountingBucket(LocalBucket):
    """A LocalBucket that records its listings and reads."""

    _calls: list[str] = field(default_factory=list, compare=False)

    def list_keys(self, prefix: str) -> list[str]:
        self._calls.append(f"list {prefix}")
        return super().list_keys(prefix)

    def read_bytes(self, key: str) -> bytes:
        self._calls.append(f"read {key}")
        return super().read_bytes(key)


def test_one_listing_and_only_the_needed_objects_are_read(tmp_path):
    bucket = CountingBucket(root_dir=str(tmp_path))
    publish(bucket)
    latest_forecast(bucket, "2023-01-14 22:00")
    assert bucket._calls == [
        "list energy_assets/energy_forecasts/",
        "read energy_assets/energy_forecasts/2023-01-14-21:00.parquet",
    ]


def test_an_object_not_named_after_an_hour_is_reported(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    publish(bucket)
    bucket.write_bytes("energy_assets/energy_forecasts/latest.parquet", b"")
    with pytest.raises(ValueError, match="latest.parquet is not named after an hourly partition key"):
        issued_hours(bucket)
