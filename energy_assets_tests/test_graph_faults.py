"""Hostile input and faults through real runs: the error names what is at fault, errors that cannot
heal are not retried, and the stored state (bucket and feature group) is compared before and after."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import ExecuteInProcessResult

from energy_assets.definitions import deployment_resources
from energy_assets.resources.bucket import GCSBucketResource, LocalBucketResource
from energy_assets.resources.data_source import EnergiDataServiceSource, FileSource
from energy_assets.resources.io_manager import PartitionedParquetIOManager
from energy_assets.schema import CONSUMPTION_COLUMNS, TARGET
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.storage.buckets import LocalBucket
from energy_assets.storage.objects import partition_object_key, read_frame
from energy_assets_tests.edsapi_server import ScriptedAnswer, de35_records
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, check_results, hour, partition_key, run_range

FIRST, LAST = hour("2023-01-02 00:00"), hour("2023-01-02 02:00")
END = LAST + pd.Timedelta(hours=1)
ROWS_PER_HOUR = 76


def stored_state(home: Path) -> dict[str, bytes]:
    """Every file of the local state (feature group, bucket) by path, hidden files aside."""
    return {
        str(path.relative_to(home)): path.read_bytes()
        for path in sorted(home.rglob("*"))
        if path.is_file() and not any(part.startswith(".") for part in path.relative_to(home).parts)
    }


def stored_features() -> pd.DataFrame:
    return deployment_resources()["feature_store"].read(FIRST, END)


def failure_message(result: ExecuteInProcessResult, step: str) -> str:
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == [step]
    return failures[0].event_specific_data.error.message


def retries(result: ExecuteInProcessResult) -> int:
    return sum(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def new_rows() -> pd.DataFrame:
    """Good rows that differ from the synthetic ones already stored, so a partial write would show."""
    rows = synthetic_consumption(FIRST, END)[CONSUMPTION_COLUMNS]
    return rows.assign(**{TARGET: rows[TARGET] * 2})


def with_file_source(path: Path) -> dict:
    return {**deployment_resources(), "consumption_source": FileSource(path=str(path))}


@pytest.fixture
def filled(isolated_state) -> dict[str, bytes]:
    """Three good hours stored; the state every failing run below must leave as it is."""
    assert run_range(FIRST, LAST, RAW_AND_FEATURES).success
    state = stored_state(isolated_state)
    assert any(name.startswith("feature_store/") for name in state) and any(name.startswith("bucket/") for name in state)
    return state


def _inf_parquet(path: Path) -> Path:
    rows = new_rows()
    rows.loc[80, TARGET] = np.inf
    rows.to_parquet(path.with_suffix(".parquet"), index=False)
    return path.with_suffix(".parquet")


def _1e400_csv(path: Path) -> Path:
    rows = new_rows().astype({TARGET: object})
    rows.loc[5, TARGET] = "1e400"
    rows.to_csv(path.with_suffix(".csv"), index=False)
    return path.with_suffix(".csv")


def _boolean_parquet(path: Path) -> Path:
    rows = new_rows()
    rows[TARGET] = rows.index % 2 == 0
    rows.to_parquet(path.with_suffix(".parquet"), index=False)
    return path.with_suffix(".parquet")


def _csv_cut_in_its_last_value(path: Path) -> Path:
    text = new_rows().to_csv(index=False)
    path.with_suffix(".csv").write_text(text[:-4])  # 501535.0\n -> 50153
    return path.with_suffix(".csv")


def _hour_utc_with_an_offset_contradicting_hour_dk(path: Path) -> Path:
    records = pd.DataFrame(de35_records(new_rows()))
    # The hour 01:00 written with an offset: read on its own terms it is 00:00 UTC, which HourDK (02:00) contradicts.
    records.loc[80, "HourUTC"] = records.loc[80, "HourUTC"] + "+01:00"
    records.to_csv(path.with_suffix(".csv"), sep=";", index=False)
    return path.with_suffix(".csv")


def _empty_csv(path: Path) -> Path:
    path.with_suffix(".csv").write_bytes(b"")
    return path.with_suffix(".csv")


def _header_only_csv(path: Path) -> Path:
    new_rows().head(0).to_csv(path.with_suffix(".csv"), index=False)
    return path.with_suffix(".csv")


def _zero_byte_parquet(path: Path) -> Path:
    path.with_suffix(".parquet").write_bytes(b"")
    return path.with_suffix(".parquet")


def _missing_file(path: Path) -> Path:
    return path.with_suffix(".csv")


def _folder(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("write", "named"),
    [
        (_inf_parquet, r"snapshot.parquet: 1 infinite value\(s\) in column 'energy_consumption' at records 80"),
        (_1e400_csv, r"snapshot.csv: 1 infinite value\(s\) in column 'energy_consumption' at lines 7: \['1e400'\]"),
        (_boolean_parquet, r"snapshot.parquet: 228 boolean value\(s\) where a number belongs in column 'energy_consumption'"),
        (_csv_cut_in_its_last_value, r"snapshot.csv: truncated: line 229, the last, does not end with a line break"),
        (
            _hour_utc_with_an_offset_contradicting_hour_dk,
            r"snapshot.csv: 1 row\(s\) whose HourUTC and HourDK disagree .* at lines 82: "
            r"HourUTC '2023-01-02T01:00:00\+01:00' \(read as 2023-01-02 00:00 UTC",
        ),
        (_empty_csv, r"snapshot.csv: empty file, expected a header line"),
        (_header_only_csv, r"snapshot .*snapshot.csv holds no rows at all, only its columns"),
        (_zero_byte_parquet, r"snapshot.parquet: not a readable parquet file"),
        (_missing_file, r"snapshot file not found: .*snapshot.csv"),
        (_folder, r"snapshot path .*snapshot is a folder, not a file"),
    ],
    ids=[
        "inf_in_parquet",
        "1e400_in_csv",
        "boolean_in_parquet",
        "csv_cut_in_last_value",
        "hour_utc_offset_contradicting_hour_dk",
        "empty_csv",
        "header_only_csv",
        "zero_byte_parquet",
        "missing_file",
        "folder_as_file",
    ],
)
def test_a_bad_snapshot_fails_the_raw_asset_at_once_naming_it_and_stores_nothing(
    tmp_path, isolated_state, filled, write, named
):
    path = write(tmp_path / "snapshot")

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=with_file_source(path), raise_on_error=False)

    assert not result.success
    assert pd.Series([failure_message(result, "consumption_raw")]).str.contains(named).all(), failure_message(
        result, "consumption_raw"
    )
    assert retries(result) == 0
    assert stored_state(isolated_state) == filled


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_empty_value_reaches_the_no_nulls_check_which_names_it(tmp_path, isolated_state, filled, suffix):
    rows = new_rows()
    rows.loc[100, TARGET] = np.nan  # an empty field in the CSV, NaN in parquet
    path = tmp_path / f"snapshot{suffix}"
    rows.to_csv(path, index=False) if suffix == ".csv" else rows.to_parquet(path, index=False)
    features_before = stored_features()

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=with_file_source(path), raise_on_error=False)

    assert not result.success
    assert check_results(result)["no_nulls"] is False
    evaluation = next(
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == "no_nulls"
    )
    assert evaluation.metadata["offending_rows"].value == 1
    assert str(rows.loc[100, "consumer_type"]) in evaluation.metadata["offending_rows_preview"].value
    assert "feature group not updated" in failure_message(result, "energy_consumption_features")
    assert retries(result) == 0
    pd.testing.assert_frame_equal(stored_features(), features_before)
    # The raw layer holds what the source published, the empty value included.
    hour_key = partition_key(rows.loc[100, "datetime_utc"])
    raw = read_frame(LocalBucket(str(isolated_state / "bucket")), [partition_object_key("energy_assets", ["consumption_raw"], hour_key)])
    assert raw[TARGET].isna().sum() == 1


def test_a_read_only_bucket_fails_at_once_naming_it(isolated_state, filled, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    result = run_range(FIRST, LAST, RAW_AND_FEATURES, raise_on_error=False)

    assert not result.success
    message = failure_message(result, "consumption_raw")
    assert "cannot write to file://" in message and "Read-only file system" in message
    assert retries(result) == 0
    monkeypatch.undo()
    assert stored_state(isolated_state) == filled


def test_a_bucket_prefix_leaving_the_bucket_fails_at_once(isolated_state, tmp_path):
    bucket = LocalBucketResource(root_dir=str(tmp_path / "bucket"), prefix="../outside")
    resources = {**deployment_resources(), "bucket": bucket, "bucket_io_manager": PartitionedParquetIOManager(bucket=bucket)}

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=resources, raise_on_error=False)

    assert not result.success
    assert "invalid object key '../outside/consumption_raw/" in failure_message(result, "consumption_raw")
    assert retries(result) == 0
    assert not (tmp_path / "outside").exists() and not (tmp_path / "bucket").exists()


def test_missing_gcs_credentials_fail_at_once_naming_the_variable(isolated_state, tmp_path, monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    bucket = GCSBucketResource(bucket_name="energy-assets-test")
    resources = {**deployment_resources(), "bucket": bucket, "bucket_io_manager": PartitionedParquetIOManager(bucket=bucket)}

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=resources, raise_on_error=False)

    assert not result.success
    assert "cannot authenticate to Google Cloud Storage" in failure_message(result, "consumption_raw")
    assert "GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON_PATH" in failure_message(result, "consumption_raw")
    assert retries(result) == 0


@pytest.mark.parametrize(
    "answer",
    [ScriptedAnswer(500, {"message": "boom"}), ScriptedAnswer(200, {"total": 0, "records": []}, delay_seconds=30)],
    ids=["http_500_forever", "hanging_connection"],
)
def test_a_broken_api_fails_the_run_at_the_fetch_deadline(edsapi_server, isolated_state, filled, answer):
    edsapi_server.always = answer
    # Attempts enough that only the deadline ends the client's retrying.
    source = EnergiDataServiceSource(
        api_base_url=edsapi_server.base_url,
        timeout_seconds=0.5,
        deadline_seconds=1.5,
        max_attempts=1000,
        retry_wait_seconds=0.05,
    )

    result = run_range(
        FIRST, LAST, RAW_AND_FEATURES, resources={**deployment_resources(), "consumption_source": source}, raise_on_error=False
    )

    assert not result.success
    assert "the fetch's deadline of 1.5 s passed" in failure_message(result, "consumption_raw")
    assert retries(result) == 0
    assert stored_state(isolated_state) == filled


@pytest.mark.slow
def test_an_unavailable_api_is_retried_by_the_asset_and_heals(edsapi_server, isolated_state):
    edsapi_server.datasets["ConsumptionDE35Hour"] = de35_records(synthetic_consumption(FIRST, END))
    edsapi_server.scripted.append(ScriptedAnswer(503, {"message": "maintenance"}))
    source = EnergiDataServiceSource(api_base_url=edsapi_server.base_url, max_attempts=1)

    # The RetryPolicy waits 30 s before its first retry.
    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources={**deployment_resources(), "consumption_source": source})

    assert result.success and retries(result) == 1
    assert len(stored_features()) == 3 * ROWS_PER_HOUR


def check_metadata(result: ExecuteInProcessResult, check: str) -> dict:
    return next(
        e.asset_check_evaluation_data.metadata
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == check
    )


@pytest.mark.parametrize("value", [1e300, 0.0], ids=["1e300", "zero"])
def test_an_implausible_value_is_refused_before_the_upsert_naming_the_row(tmp_path, isolated_state, filled, value):
    rows = new_rows()
    rows.loc[80, TARGET] = value
    rows.to_parquet(tmp_path / "snapshot.parquet", index=False)
    features_before = stored_features()

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=with_file_source(tmp_path / "snapshot.parquet"), raise_on_error=False)

    assert not result.success
    assert {name for name, passed in check_results(result).items() if not passed} == {"plausible_consumption"}
    metadata = check_metadata(result, "plausible_consumption")
    assert metadata["offending_rows"].value == 1 and metadata["history_hours"].value == 0
    message = failure_message(result, "energy_consumption_features")
    assert "feature group not updated" in message and "plausible_consumption: 1 row(s), first: datetime_utc=2023-01-02 01:00" in message
    assert f"consumer_type={rows.loc[80, 'consumer_type']}, energy_consumption={value:.6g}" in message
    assert "accept_level_change" in message
    assert retries(result) == 0
    pd.testing.assert_frame_equal(stored_features(), features_before)


def test_a_genuine_level_change_is_refused_until_its_series_is_named_in_the_run_config(tmp_path, isolated_state):
    day_before = FIRST - pd.Timedelta(days=1)
    assert run_range(day_before, FIRST - pd.Timedelta(hours=1), RAW_AND_FEATURES).success
    rows = synthetic_consumption(FIRST, FIRST + pd.Timedelta(hours=1))[CONSUMPTION_COLUMNS]
    changed = (rows["area"] == 1) & (rows["consumer_type"] == 111)
    rows.loc[changed, TARGET] *= 100
    rows.to_parquet(tmp_path / "snapshot.parquet", index=False)
    resources = with_file_source(tmp_path / "snapshot.parquet")

    refused = run_range(FIRST, FIRST, RAW_AND_FEATURES, resources=resources, raise_on_error=False)
    accepted = run_range(
        FIRST,
        FIRST,
        RAW_AND_FEATURES,
        resources=resources,
        run_config={"ops": {"energy_consumption_features": {"config": {"accept_level_change": ["1/111"]}}}},
    )

    assert check_results(refused)["plausible_consumption"] is False
    assert check_metadata(refused, "plausible_consumption")["history_hours"].value == 24
    assert accepted.success and check_metadata(accepted, "plausible_consumption")["accepted_series"].value == "1/111"
    stored = stored_features()
    assert stored.loc[(stored["area"] == 1) & (stored["consumer_type"] == 111), TARGET].tolist() == rows.loc[changed, TARGET].tolist()
