"""The partition set: every hour a run can fill, and no hour after the newest the source can have published."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, build_schedule_context

from energy_assets.partitions import _hourly, published_partitions, scorable_partitions
from energy_assets.schema import FORECAST_HORIZON_HOURS
from energy_assets.settings import SettingError
from energy_assets.timeline import HOUR, hour_key, newest_published_hour, parse_hour_key
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.conftest import REAL_DATA_PARQUET

NOW = pd.Timestamp("2026-11-27 16:20", tz="UTC")
DAGSTER = str(Path(sys.executable).with_name("dagster"))


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


def test_the_scorable_issue_hours_end_where_the_last_actual_of_their_forecasts_is_published(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_PUBLICATION_DELAY_HOURS", "360")
    monkeypatch.setenv("ENERGY_ASSETS_PARTITIONS_START", "2026-11-01-00:00")
    published = published_partitions(NOW)
    moving = keys(scorable_partitions(published))
    later = keys(scorable_partitions(published), NOW + HOUR)
    assert (moving[0], moving[-1]) == ("2026-11-01-00:00", hour_key(parse_hour_key(keys(published)[-1]) - FORECAST_HORIZON_HOURS * HOUR))
    assert moving[-1] == "2026-11-11-15:00" and later[-1] == "2026-11-11-16:00"  # they move with the published hours

    monkeypatch.delenv("ENERGY_ASSETS_PARTITIONS_START")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(REAL_DATA_PARQUET))
    snapshot = keys(scorable_partitions(published_partitions(NOW)))
    assert (snapshot[0], snapshot[-1], len(snapshot)) == ("2023-01-02-00:00", "2023-01-03-23:00", 48)
    # A snapshot shorter than the horizon has no issue hour to score.
    assert keys(scorable_partitions(_hourly("2023-01-02-00:00", end_date="2023-01-02-12:00"))) == []


def test_forecast_accuracy_is_partitioned_by_the_scorable_issue_hours():
    from energy_assets.definitions import defs

    graph = defs.resolve_asset_graph()
    accuracy, forecasts, features = (
        graph.get(AssetKey(name)) for name in ("forecast_accuracy", "energy_forecasts", "energy_consumption_features")
    )
    newest = accuracy.partitions_def.get_last_partition_key()
    newest_published = parse_hour_key(forecasts.partitions_def.get_last_partition_key())
    assert parse_hour_key(newest) == newest_published - FORECAST_HORIZON_HOURS * HOUR
    # Issue hour H scores energy_forecasts[H] against the features of H+1 ... H+24: each of them a partition.
    scored = graph.get_parent_partition_keys_for_child(newest, forecasts.key, accuracy.key)
    actuals = graph.get_parent_partition_keys_for_child(newest, features.key, accuracy.key)
    assert scored.partitions_subset.get_partition_keys() == [newest] and not scored.required_but_nonexistent_subset
    assert actuals.partitions_subset.get_partition_keys()[-1] == hour_key(newest_published)
    assert len(actuals.partitions_subset) == FORECAST_HORIZON_HOURS and not actuals.required_but_nonexistent_subset


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


def _header_only(path: Path) -> tuple[Path, str]:
    path.write_text("HourUTC;HourDK;PriceArea;ConsumerType_DE35;TotalCon\n")
    return path, "holds no rows at all, only its columns"


def _empty(path: Path) -> tuple[Path, str]:
    path.write_bytes(b"")
    return path, "empty file, expected a header line"


def _missing(path: Path) -> tuple[Path, str]:
    return path, "snapshot file not found"


def _zero_byte_parquet(path: Path) -> tuple[Path, str]:
    path.with_suffix(".parquet").write_bytes(b"")
    return path.with_suffix(".parquet"), "not a readable parquet file"


def _corrupt_parquet(path: Path) -> tuple[Path, str]:
    whole = pd.DataFrame({"HourUTC": ["2023-01-01T00:00:00"] * 50, "TotalCon": range(50)}).to_parquet()
    path.with_suffix(".parquet").write_bytes(whole[: len(whole) // 2] + whole[-8:])  # a cut footer: PAR1 at both ends
    return path.with_suffix(".parquet"), "not a readable parquet file"


def _unreadable(path: Path) -> tuple[Path, str]:
    path.write_text("HourUTC;PriceArea;ConsumerType_DE35;TotalCon\n2023-01-01T00:00:00;DK1;111;5\n")
    path.chmod(0)
    return path, "cannot read snapshot file"


SNAPSHOT_STATES = {
    "missing": _missing,
    "empty": _empty,
    "header_only": _header_only,
    "zero_byte_parquet": _zero_byte_parquet,
    "corrupt_parquet": _corrupt_parquet,
    "unreadable": _unreadable,
}


@pytest.mark.parametrize("state", [state for state in SNAPSHOT_STATES if state != "unreadable"])
def test_a_snapshot_without_hours_falls_back_with_a_warning_naming_it(monkeypatch, tmp_path, caplog, state):
    path, problem = SNAPSHOT_STATES[state](tmp_path / "snapshot.csv")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(path))
    monkeypatch.setenv("ENERGY_ASSETS_PUBLICATION_DELAY_HOURS", "0")
    monkeypatch.setenv("ENERGY_ASSETS_PARTITIONS_START", "2026-11-01-00:00")

    partition_keys = keys(published_partitions(NOW))

    assert (partition_keys[0], partition_keys[-1]) == ("2026-11-01-00:00", "2026-11-27-15:00")
    assert f"{path} gives no hours" in caplog.text and problem in caplog.text


def without_root_file_access() -> None:
    """In the child: root gives up bypassing file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), as a user has none."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH (linux/capability.h)
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone from the exec'd program
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.mark.slow
@pytest.mark.parametrize("state", list(SNAPSHOT_STATES))
def test_dagster_definitions_validate_passes_whatever_the_snapshot_holds(tmp_path, state):
    path, problem = SNAPSHOT_STATES[state](tmp_path / "snapshot.csv")
    environment = {**os.environ, "ENERGY_ASSETS_SOURCE": "file", "ENERGY_ASSETS_SOURCE_PATH": str(path)}

    completed = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "energy_assets.definitions"],
        cwd=REPO_ROOT,
        env={**environment, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=180,
        preexec_fn=without_root_file_access,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"{path} gives no hours" in completed.stderr and problem in completed.stderr, completed.stderr[-3000:]
