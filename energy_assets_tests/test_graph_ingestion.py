"""The ingestion half of the graph materialized for real: raw rows into a checked feature group."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import DagsterInstance

from energy_assets.definitions import deployment_resources
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.schema import CONSUMPTION_COLUMNS, DATETIME, TARGET
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import hour_key
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, check_results, hour, run_range

FIRST, LAST = hour("2023-01-02 00:00"), hour("2023-01-02 05:00")
END = LAST + pd.Timedelta(hours=1)


def stored_features() -> pd.DataFrame:
    return deployment_resources()["feature_store"].read(FIRST, END)


def test_a_range_of_hours_runs_as_one_run_into_the_feature_group():
    result = run_range(FIRST, LAST, RAW_AND_FEATURES)

    assert result.success
    assert all(check_results(result).values()) and len(check_results(result)) == 6
    features = stored_features()
    assert len(features) == 6 * 76
    assert features[DATETIME].nunique() == 6
    pd.testing.assert_frame_equal(
        features.sort_values(CONSUMPTION_COLUMNS).reset_index(drop=True),
        synthetic_consumption(FIRST, END)[CONSUMPTION_COLUMNS].sort_values(CONSUMPTION_COLUMNS).reset_index(drop=True),
        check_like=True,
    )
    raw_objects = deployment_bucket().list_keys("energy_assets/consumption_raw/")
    assert len(raw_objects) == 6
    # The run's figures are on its newest partition; the older hours' events carry no copy of them (the IO
    # manager's summary of the objects written, rows among it, is on every one).
    for asset, figures in [("consumption_raw", {"source", "hours", "series", "preview"}), ("energy_consumption_features", {"rows", "hours", "total_consumption_kwh"})]:
        metadata = {m.partition: m.metadata for m in result.asset_materializations_for_node(asset)}
        assert len(metadata) == 6
        newest = metadata.pop(hour_key(LAST))
        assert figures <= set(newest) and newest["rows"].value == 6 * 76 and newest["hours"].value == 6
        assert not any(figures & set(older) for older in metadata.values())


def test_rematerializing_replaces_an_hour_without_duplicating_it():
    instance = DagsterInstance.ephemeral()
    run_range(FIRST, LAST, RAW_AND_FEATURES, instance=instance)
    run_range(FIRST + pd.Timedelta(hours=2), FIRST + pd.Timedelta(hours=3), RAW_AND_FEATURES, instance=instance)

    features = stored_features()
    assert len(features) == 6 * 76
    assert not features.duplicated(["datetime_utc", "area", "consumer_type"]).any()


def _write_snapshot(tmp_path, monkeypatch, rows: pd.DataFrame) -> None:
    path = tmp_path / "snapshot.parquet"
    rows.to_parquet(path, index=False)
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(path))


def _good_rows() -> pd.DataFrame:
    return synthetic_consumption(FIRST, END)[CONSUMPTION_COLUMNS]


def _negative(rows):
    rows.loc[5, TARGET] = -12.5
    return rows


def _unknown_consumer_type(rows):
    rows.loc[7, "consumer_type"] = 555
    return rows


def _duplicated(rows):
    return pd.concat([rows, rows.iloc[[3]]], ignore_index=True)


def _missing_hour(rows):
    return rows[rows[DATETIME] != FIRST + pd.Timedelta(hours=4)]


@pytest.mark.parametrize(
    ("corrupt", "failing_check", "named_in_metadata"),
    [
        (_negative, "finite_non_negative_consumption", "-12.5"),
        (_unknown_consumer_type, "known_areas_and_consumer_types", "555"),
        (_duplicated, "complete_hours", "duplicate"),
        (_missing_hour, "complete_hours", "missing"),
    ],
)
def test_bad_rows_fail_a_blocking_check_and_leave_the_feature_group_untouched(
    tmp_path, monkeypatch, corrupt, failing_check, named_in_metadata
):
    run_range(FIRST, LAST, RAW_AND_FEATURES)
    before = stored_features()
    _write_snapshot(tmp_path, monkeypatch, corrupt(_good_rows().assign(**{TARGET: lambda f: f[TARGET] * 2})))

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, raise_on_error=False)

    assert not result.success
    checks = check_results(result)
    assert checks[failing_check] is False
    evaluation = next(
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION" and e.asset_check_evaluation_data.check_name == failing_check
    )
    assert named_in_metadata in evaluation.metadata["offending_rows_preview"].value
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "feature group not updated" in failure.event_specific_data.error.message
    pd.testing.assert_frame_equal(stored_features(), before)


def test_a_truncated_file_fails_the_raw_asset_with_a_clear_error(tmp_path, monkeypatch):
    run_range(FIRST, LAST, RAW_AND_FEATURES)
    before = stored_features()
    path = tmp_path / "snapshot.csv"
    text = _good_rows().to_csv(index=False)
    path.write_text(text[: len(text) // 2 - 7])
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(path))

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "consumption_raw"
    assert "snapshot.csv" in failure.event_specific_data.error.message
    pd.testing.assert_frame_equal(stored_features(), before)
