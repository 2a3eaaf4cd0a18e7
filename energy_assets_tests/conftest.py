"""Shared fixtures: the real extract's location and a private state directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests name hours from December 2022 on; partitions are built when the definitions are imported,
# and every subprocess a test starts inherits this.
os.environ.setdefault("ENERGY_ASSETS_PARTITIONS_START", "2022-12-01-00:00")

# Loopback servers every test module may ask for: the Energi Data Service fake and the GCS emulator.
pytest_plugins = ["energy_assets_tests.edsapi_server", "energy_assets_tests.gcs_emulator"]

REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "raw"
REAL_DATA_CSV = REAL_DATA_DIR / "ConsumptionDE35Hour_2022-12-21_2023-01-14.csv"
REAL_DATA_PARQUET = REAL_DATA_DIR / "ConsumptionDE35Hour_2022-12-21_2023-01-14.parquet"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Live tests reach a real Hopsworks project and bucket: only an explicit `-m live` runs them."""
    if "live" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="live test against real Hopsworks and GCS: run with `pytest -m live` (see README)")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def real_data_dir() -> Path:
    """The real ConsumptionDE35Hour extract, or a skip naming the folder that is missing."""
    if not REAL_DATA_CSV.exists():
        pytest.skip(f"real extract not found at {REAL_DATA_DIR} (it lives beside the repo in shared/data/raw)")
    return REAL_DATA_DIR


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch) -> Path:
    """Every test gets its own ENERGY_ASSETS_HOME so no test touches another's state or the repo."""
    home = tmp_path / "energy_assets_home"
    monkeypatch.setenv("ENERGY_ASSETS_HOME", str(home))
    monkeypatch.delenv("ENERGY_ASSETS_DEPLOYMENT", raising=False)
    return home
