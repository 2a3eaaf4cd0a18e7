"""The synthetic, file and API sources behind ConsumptionSource, and what each publishes."""

from __future__ import annotations

import pandas as pd
import pytest

from energy_assets.resources.data_source import EnergiDataServiceSource, FileSource, SyntheticSource
from energy_assets.schema import SERIES_KEY, de35_series
from energy_assets.sources.errors import SourceUnavailableError
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets_tests.edsapi_server import ScriptedAnswer, de35_records, industry_record

START, END = pd.Timestamp("2023-02-01T00:00Z"), pd.Timestamp("2023-02-01T06:00Z")


@pytest.fixture
def rows() -> pd.DataFrame:
    return synthetic_consumption(START, END)


def test_synthetic_is_the_default(rows):
    source = SyntheticSource()
    pd.testing.assert_frame_equal(source.fetch(START, END), rows)
    pd.testing.assert_frame_equal(source.expected_series(), de35_series())
    assert "synthetic" in source.describe()


def test_file_source_reads_the_snapshot_window(tmp_path, rows):
    path = tmp_path / "snapshot.parquet"
    pd.DataFrame(de35_records(rows)).to_parquet(path)
    source = FileSource(path=str(path))
    later = START + pd.Timedelta(hours=2)
    pd.testing.assert_frame_equal(source.fetch(later, END), synthetic_consumption(later, END))
    pd.testing.assert_frame_equal(source.expected_series(), de35_series())
    assert str(path) in source.describe()


def test_file_source_without_path_names_the_variable(monkeypatch):
    from energy_assets.definitions import deployment_resources
    from energy_assets.settings import SettingError

    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "file")
    monkeypatch.delenv("ENERGY_ASSETS_SOURCE_PATH", raising=False)
    with pytest.raises(SettingError, match="ENERGY_ASSETS_SOURCE=file needs ENERGY_ASSETS_SOURCE_PATH"):
        deployment_resources()


def test_api_source_fetches_the_configured_dataset(edsapi_server, rows):
    edsapi_server.datasets["ConsumptionDE35Hour"] = de35_records(rows)
    source = EnergiDataServiceSource(api_base_url=edsapi_server.base_url, page_size=200)
    pd.testing.assert_frame_equal(source.fetch(START, END), rows)
    assert len(edsapi_server.requests) == 3  # 456 records, 200 a page
    assert len(source.expected_series()) == 76


def test_api_source_for_consumption_industry(edsapi_server):
    edsapi_server.datasets["ConsumptionIndustry"] = [
        industry_record("2023-02-01T00:00", 101, "Privat", 10.0),
        industry_record("2023-02-01T00:00", 751, "Erhverv", 20.0),
    ]
    source = EnergiDataServiceSource(dataset="ConsumptionIndustry", api_base_url=edsapi_server.base_url)
    frame = source.fetch(START, END)
    assert frame[SERIES_KEY].to_numpy().tolist() == [[1, 1001], [2, 1003]]
    assert len(source.expected_series()) == 6


def test_api_source_passes_retry_settings_to_the_client(edsapi_server):
    edsapi_server.scripted.extend([ScriptedAnswer(503)] * 3)
    source = EnergiDataServiceSource(api_base_url=edsapi_server.base_url, max_attempts=2, retry_wait_seconds=0.001
    )
    with pytest.raises(SourceUnavailableError, match=r"failed 2 attempt\(s\).*HTTP 503"):
        source.fetch(START, END)
    assert len(edsapi_server.requests) == 2
