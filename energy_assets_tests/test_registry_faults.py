"""A damaged model version blocks nothing else, and registering the same training twice, even at once, keeps one version."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from energy_assets.forecasting.training import ForecasterConfig
from energy_assets.resources.local_model_registry import DamagedModelVersion, LocalModelRegistry
from energy_assets_tests.graph_helpers import hour, run_range

CUTOFF = pd.Timestamp("2023-01-10 00:00", tz="UTC")


def register(registry, cutoff=CUTOFF, config=None):
    with tempfile.TemporaryDirectory() as files:
        (Path(files) / "model.bin").write_bytes(b"weights")
        return registry.register(
            "m", files, data_cutoff=cutoff, training_start=cutoff - pd.Timedelta(hours=719), feature_group_version=1,
            config=config or ForecasterConfig().to_dict(), metrics={"model_mape": 0.1},
        )


@pytest.mark.parametrize("damage", ["truncated", "deleted"])
def test_a_damaged_version_is_named_and_blocks_no_other(tmp_path, damage, caplog):
    registry = LocalModelRegistry(root_dir=str(tmp_path))
    first, second = register(registry), register(registry, cutoff=CUTOFF + pd.Timedelta(hours=24))
    metadata = tmp_path / "m" / f"v{second.version}" / "metadata.json"
    if damage == "truncated":
        metadata.write_text(metadata.read_text()[:40])
    else:
        metadata.unlink()

    assert [model.version for model in registry.versions("m")] == [first.version]
    assert str(metadata) in caplog.text
    with pytest.raises(DamagedModelVersion, match=str(metadata)):
        registry.get("m", second.version)
    assert registry.latest("m", CUTOFF + pd.Timedelta(hours=30)).version == first.version


CONCURRENT_REGISTRATION = """
import sys, tempfile, time
from pathlib import Path
import pandas as pd
from energy_assets.forecasting.training import ForecasterConfig
from energy_assets.resources.local_model_registry import LocalModelRegistry
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
cutoff = pd.Timestamp("2023-01-10 00:00", tz="UTC")
with tempfile.TemporaryDirectory() as files:
    (Path(files) / "model.bin").write_bytes(b"weights")
    model = LocalModelRegistry(root_dir=sys.argv[1]).register(
        "m", files, data_cutoff=cutoff, training_start=cutoff - pd.Timedelta(hours=719), feature_group_version=1,
        config=ForecasterConfig().to_dict(), metrics={"model_mape": 0.1},
    )
print(model.version)
"""


@pytest.mark.slow
def test_concurrent_registrations_of_one_training_keep_one_version(tmp_path):
    go = tmp_path / "go"
    processes = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_REGISTRATION, str(tmp_path / "registry"), str(go)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    go.touch()
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [out.strip() for out, _ in outputs] == ["1"] * 4, [err[-500:] for _, err in outputs]
    assert [model.version for model in LocalModelRegistry(root_dir=str(tmp_path / "registry")).versions("m")] == [1]


@pytest.mark.slow
def test_two_model_runs_for_the_same_hour_register_one_version(isolated_state):
    from energy_assets.definitions import deployment_resources
    from energy_assets_tests.graph_helpers import RAW_AND_FEATURES
    from dagster import AssetSelection
    from energy_assets.schema import MODEL_NAME

    issue = hour("2022-12-12 00:00")
    run_range(hour("2022-12-01 00:00"), issue, RAW_AND_FEATURES)
    model_only = AssetSelection.assets("forecasting_model")
    first, second = run_range(issue, issue, model_only), run_range(issue, issue, model_only)
    versions = deployment_resources()["model_registry"].versions(MODEL_NAME)
    assert len(versions) == 1
    for result in (first, second):
        (materialization,) = result.asset_materializations_for_node("forecasting_model")
        assert materialization.metadata["registry_version"].value == versions[0].version


def test_on_hopsworks_the_later_of_two_racing_registrations_steps_back(tmp_path, monkeypatch):
    import energy_assets.resources.hopsworks as adapter
    from energy_assets_tests.hopsworks_fake import hopsworks_model_registry

    registry = hopsworks_model_registry(tmp_path)
    first = register(registry)
    real = adapter.first_registration
    calls = []

    def racing(models, **training):
        calls.append(len(models))
        # The check before saving runs before the other run's version exists: it sees nothing.
        return None if len(calls) == 1 else real(models, **training)

    monkeypatch.setattr(adapter, "first_registration", racing)
    again = register(registry)

    assert again.version == first.version
    assert [model.version for model in registry.versions("m")] == [first.version]
    assert calls == [1, 2]  # the second look saw both versions, and the later one was deleted
