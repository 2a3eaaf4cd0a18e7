"""Feature group maintenance: the daily compaction asset and its schedule, on the Hopsworks fake and the local store."""

from __future__ import annotations

import pandas as pd
from dagster import DefaultScheduleStatus, materialize

from energy_assets.assets.maintenance import feature_group_compaction
from energy_assets.definitions import defs
from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.schema import DATETIME
from energy_assets_tests.hopsworks_fake import hopsworks_feature_store
from energy_assets_tests.test_hopsworks import START, rows


def test_the_schedule_compacts_once_a_day_between_two_hourly_runs_and_is_off_until_switched_on():
    schedule = defs.resolve_schedule_def("feature_group_maintenance_schedule")

    assert (schedule.cron_schedule, schedule.execution_timezone) == ("35 3 * * *", "UTC")
    assert schedule.default_status == DefaultScheduleStatus.STOPPED
    assert defs.resolve_job_def(schedule.job_name).asset_layer.executable_asset_keys == {feature_group_compaction.key}


def test_the_asset_compacts_the_hopsworks_group_and_says_so(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    for hour in range(6):
        store.insert(rows(hours=1).assign(**{DATETIME: START + pd.Timedelta(hours=hour)}))

    result = materialize([feature_group_compaction], resources={"feature_store": store})

    metadata = result.asset_materializations_for_node("feature_group_compaction")[0].metadata
    assert (metadata["data_files_before"].value, metadata["data_files_after"].value) == (6, 1)
    assert len(store.read(START, START + pd.Timedelta(hours=6))) == 12


def test_the_local_store_has_nothing_to_compact(tmp_path):
    store = LocalFeatureStore(root_dir=str(tmp_path))
    store.insert(rows())  # 22:00 ... 01:00: two days

    result = materialize([feature_group_compaction], resources={"feature_store": store})

    metadata = result.asset_materializations_for_node("feature_group_compaction")[0].metadata
    assert metadata["data_files"].value == 2 and "none needed" in metadata["compaction"].value
