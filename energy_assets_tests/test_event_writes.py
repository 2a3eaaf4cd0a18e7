"""What a single-run backfill writes to Dagster's event log: one planned event per asset, one materialization per partition."""

from __future__ import annotations

from dagster import AssetKey, DagsterEventType, DagsterInstance

from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, run_range

FIRST, LAST = hour("2023-01-02 00:00"), hour("2023-01-02 05:00")
ASSETS = [AssetKey("consumption_raw"), AssetKey("energy_consumption_features")]


def test_a_ranged_run_plans_each_asset_once_and_materializes_every_partition(tmp_path):
    # Dagster's default instance: a DAGSTER_HOME without dagster.yaml.
    instance = DagsterInstance.from_config(str(tmp_path))

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, instance=instance)

    planned = instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert sorted(entry.dagster_event.asset_key for entry in planned) == sorted(ASSETS)
    hours = [f"2023-01-02-0{h}:00" for h in range(6)]
    for entry in planned:
        subset = entry.dagster_event.event_specific_data.partitions_subset
        assert sorted(subset.get_partition_keys()) == hours
    for key in ASSETS:
        # What the partition status and the asset pages read: every partition's materialization.
        assert sorted(instance.get_materialized_partitions(key)) == hours
        assert instance.get_latest_materialization_event(key).dagster_event.partition == hours[-1]
