"""The batching SQLite event log stores what Dagster's own stores, event for event, in fewer transactions."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from energy_assets.resources.sqlite_event_log import BatchingSqliteEventLogStorage, sqlite_instance_settings
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, run_range

FIRST, LAST = hour("2023-01-02 00:00"), hour("2023-01-02 05:00")
PLANNED = DagsterEventType.ASSET_MATERIALIZATION_PLANNED
ASSETS = [AssetKey("consumption_raw"), AssetKey("energy_consumption_features")]


def backfilled_instance(dagster_home: Path, batched: bool) -> DagsterInstance:
    dagster_home.mkdir(parents=True)
    if batched:
        (dagster_home / "dagster.yaml").write_text(sqlite_instance_settings(dagster_home))
    instance = DagsterInstance.from_config(str(dagster_home))
    assert isinstance(instance.event_log_storage, BatchingSqliteEventLogStorage) == batched
    assert run_range(FIRST, LAST, RAW_AND_FEATURES, instance=instance).success
    return instance


def stored(instance: DagsterInstance) -> dict:
    """What partition status, asset pages and sensors read back, free of run ids and timestamps."""
    facts = {}
    run = instance.get_runs(limit=1)[0]
    for key in ASSETS:
        records = instance.fetch_materializations(key, limit=100).records
        planned_info = instance.get_latest_planned_materialization_info(key)
        latest = instance.get_latest_materialization_event(key)
        facts[key.to_user_string()] = {
            "materialized_partitions": sorted(instance.get_materialized_partitions(key)),
            "materializations": sorted(
                (record.partition_key, sorted(record.asset_materialization.metadata)) for record in records
            ),
            # Ids grow in the order events were stored.
            "storage_order": [record.partition_key for record in sorted(records, key=lambda record: record.storage_id)],
            "planned": sorted(
                entry.dagster_event.partition for entry in instance.all_logs(run.run_id, of_type=PLANNED)
                if entry.dagster_event.asset_key == key
            ),
            # The index points at the newest planned materialization (run ids differ between the instances).
            "latest_planned_in_this_run": planned_info.run_id == run.run_id,
            "latest": latest.dagster_event.partition,
        }
    facts["run_event_types"] = [
        entry.dagster_event_type for entry in instance.all_logs(run.run_id) if entry.is_dagster_event
    ]
    return facts


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", ["1000", "4"])
def test_a_batched_backfill_stores_the_same_events_as_dagsters_sqlite_event_log(tmp_path, monkeypatch, batch_size):
    plain = stored(backfilled_instance(tmp_path / "plain", batched=False))
    # Batch size 4 splits the six partitions' events into a full batch and a partial one.
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", batch_size)
    batched = stored(backfilled_instance(tmp_path / "batched", batched=True))

    assert batched == plain
    assert plain["consumption_raw"]["materialized_partitions"] == [f"2023-01-02-0{h}:00" for h in range(6)]
    assert plain["consumption_raw"]["latest"] == "2023-01-02-05:00"
