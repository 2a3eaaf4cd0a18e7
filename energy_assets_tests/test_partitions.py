"""The partition set: every hour a run can fill, and no hour after the newest the source can have published."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import build_schedule_context

from energy_assets.partitions import published_partitions
from energy_assets.settings import SettingError
from energy_assets.timeline import hour_key, newest_published_hour
from energy_assets_tests.conftest import REAL_DATA_PARQUET

NOW = pd.Timestamp("2026-11-27 16:20", tz="UTC")


def keys(partitions, now=NOW) -> list[str]:
    return partitions.get_partition_keys(current_time=now.to_pydatetime())


def test_the_set_ends_at_the_newest_published_hour_and_starts_where_asked(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_PUBLICATION_DELAY_HOURS", "360")
    monkeypatch.setenv("ENERGY_ASSETS_PARTITIONS_START", "2026-11-01-00:00")
    partition_keys = keys(published_partitions(NOW))
    newest = newest_published_hour(NOW, pd.Timedelta(hours=360))
    assert partition_keys[0] == "2026-11-01-00:00"
    assert partition_keys[-1] == hour_key(newest) == "2026-11-12-15:00"
    assert len(partition_keys) == 11 * 24 + 16


def test_without_a_start_the_set_covers_the_last_90_days_from_midnight(monkeypatch):
    monkeypatch.delenv("ENERGY_ASSETS_PARTITIONS_START", raising=False)
    monkeypatch.setenv("ENERGY_ASSETS_PUBLICATION_DELAY_HOURS", "0")
    partition_keys = keys(published_partitions(NOW))
    assert partition_keys[0] == "2026-08-29-00:00"
    assert partition_keys[-1] == "2026-11-27-15:00"


def test_a_snapshot_file_bounds_the_set_by_its_own_hours(monkeypatch):
    monkeypatch.delenv("ENERGY_ASSETS_PARTITIONS_START", raising=False)
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(REAL_DATA_PARQUET))
    partitions = published_partitions(NOW)
    partition_keys = keys(partitions)
    assert (partition_keys[0], partition_keys[-1], len(partition_keys)) == ("2023-01-02-00:00", "2023-01-04-23:00", 72)


def test_the_schedule_skips_hours_a_snapshot_never_reaches(monkeypatch, real_data_csv):
    from energy_assets.definitions import hourly_forecast_job
    from energy_assets.schedules import build_hourly_schedule

    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(real_data_csv))
    schedule = build_hourly_schedule(hourly_forecast_job, published_partitions(NOW))
    answer = schedule(build_schedule_context(scheduled_execution_time=NOW.to_pydatetime()))
    assert "is not a partition" in answer.skip_message


def test_a_start_that_is_not_an_hour_names_the_variable(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_PARTITIONS_START", "garbage")
    with pytest.raises(SettingError, match="ENERGY_ASSETS_PARTITIONS_START='garbage'"):
        published_partitions(NOW)
