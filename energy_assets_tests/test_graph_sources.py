"""The raw asset on the file and API sources: one query per range, clear failures, the real extract."""

import pandas as pd
from dagster import DagsterInstance

from energy_assets.definitions import deployment_resources
from energy_assets.resources.data_source import EnergiDataServiceSource
from energy_assets.schema import CONSUMPTION_COLUMNS, DATETIME
from energy_assets.sources.files import read_window
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets_tests.conftest import REAL_DATA_PARQUET
from energy_assets_tests.edsapi_server import de35_records
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, check_results, hour, run_range

FIRST, LAST = hour("2023-01-02 00:00"), hour("2023-01-03 23:00")
END = LAST + pd.Timedelta(hours=1)


def _api_resources(server) -> dict:
    source = EnergiDataServiceSource(api_base_url=server.base_url, retry_wait_seconds=0.01)
    return {**deployment_resources(), "consumption_source": source}


def test_a_range_is_fetched_from_the_api_with_one_query(edsapi_server):
    edsapi_server.datasets["ConsumptionDE35Hour"] = de35_records(synthetic_consumption(FIRST, END))

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=_api_resources(edsapi_server))

    assert result.success and all(check_results(result).values())
    assert len(edsapi_server.requests) == 1
    assert len(deployment_resources()["feature_store"].read(FIRST, END)) == 48 * 76


def test_an_empty_api_answer_fails_the_raw_asset_without_retrying(edsapi_server):
    edsapi_server.datasets["ConsumptionDE35Hour"] = de35_records(
        synthetic_consumption(FIRST - pd.Timedelta(days=3), FIRST - pd.Timedelta(days=2))
    )

    result = run_range(FIRST, LAST, RAW_AND_FEATURES, resources=_api_resources(edsapi_server), raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "consumption_raw"
    assert "ConsumptionDE35Hour" in failure.event_specific_data.error.message
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert len(edsapi_server.requests) == 1


def test_the_real_extract_flows_through_the_file_source(real_data_csv, monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE_PATH", str(real_data_csv))
    first, last = hour("2023-01-03 00:00"), hour("2023-01-03 23:00")
    end = last + pd.Timedelta(hours=1)

    result = run_range(first, last, RAW_AND_FEATURES, instance=DagsterInstance.ephemeral())

    assert result.success and all(check_results(result).values())
    stored = deployment_resources()["feature_store"].read(first, end).sort_values([DATETIME, "area", "consumer_type"])
    expected = read_window(REAL_DATA_PARQUET, first, end)[CONSUMPTION_COLUMNS]
    pd.testing.assert_frame_equal(
        stored.reset_index(drop=True)[CONSUMPTION_COLUMNS], expected.reset_index(drop=True), check_dtype=False
    )
    assert len(stored) == 24 * 76
