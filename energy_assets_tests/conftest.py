"""Shared fixtures: the vendored real extract and a private state directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

# The tests name hours from December 2022 on; partitions are built when the definitions are imported,
# and every subprocess a test starts inherits this.
os.environ.setdefault("ENERGY_ASSETS_PARTITIONS_START", "2022-12-01-00:00")

# Loopback servers every test module may ask for: the Energi Data Service fake and the GCS emulator.
pytest_plugins = ["energy_assets_tests.edsapi_server", "energy_assets_tests.gcs_emulator"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# Three days of the real ConsumptionDE35Hour extract, vendored so every clone runs the tests on real rows
# (data/SOURCE.md: origin, licence, what was cut).
REAL_DATA_PARQUET = Path(__file__).resolve().parent / "data" / "ConsumptionDE35Hour_2023-01-02_2023-01-04.parquet"
REAL_DATA_FIRST_HOUR, REAL_DATA_LAST_HOUR = "2023-01-02T00:00Z", "2023-01-04T23:00Z"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Live tests reach a real Hopsworks project and bucket: only an explicit `-m live` runs them."""
    if "live" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="live test against real Hopsworks and GCS: run with `pytest -m live` (see docs/production.md, 'Live tests against a real project')")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def real_data_csv(tmp_path) -> Path:
    """The vendored rows as the dataset's own CSV download lays them out (`;`-separated, its column names):
    written from the parquet, which gives byte for byte the shared extract's CSV of the same rows."""
    path = tmp_path / REAL_DATA_PARQUET.with_suffix(".csv").name
    pd.read_parquet(REAL_DATA_PARQUET).to_csv(path, sep=";", index=False)
    return path


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch) -> Path:
    """Every test gets its own ENERGY_ASSETS_HOME so no test touches another's state or the repo."""
    home = tmp_path / "energy_assets_home"
    monkeypatch.setenv("ENERGY_ASSETS_HOME", str(home))
    monkeypatch.delenv("ENERGY_ASSETS_DEPLOYMENT", raising=False)
    return home
