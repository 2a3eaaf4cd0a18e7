"""The model-registry contract, run against every implementation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.resources.model_registry import ModelRegistry, RegisteredModel

NAME = "energy_consumption_forecaster"
CUTOFF = pd.Timestamp("2023-01-10 12:00", tz="UTC")


@pytest.fixture(params=["local", "hopsworks"])
def registry(request, tmp_path) -> ModelRegistry:
    """An empty registry of one implementation."""
    if request.param == "local":
        return LocalModelRegistry(root_dir=str(tmp_path / "model_registry"))
    from energy_assets_tests.hopsworks_fake import hopsworks_model_registry

    return hopsworks_model_registry(tmp_path)


def model_files(directory: Path, tag: str) -> Path:
    """A model folder with a top-level and a nested file whose contents carry `tag`."""
    (directory / "nested").mkdir(parents=True)
    (directory / "model.json").write_text(f'{{"tag": "{tag}"}}')
    (directory / "nested" / "weights.bin").write_bytes(tag.encode() * 100)
    return directory


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file below `directory` by relative path."""
    return {str(path.relative_to(directory)): path.read_bytes() for path in directory.rglob("*") if path.is_file()}


def register(registry: ModelRegistry, tmp_path: Path, cutoff: pd.Timestamp = CUTOFF, name: str = NAME, tag: str = "a"):
    """Register a small model trained on the 14 days before `cutoff`."""
    return registry.register(
        name,
        model_files(tmp_path / f"model-{name}-{tag}", tag),
        data_cutoff=cutoff,
        training_start=cutoff - pd.Timedelta(days=14),
        feature_group_version=1,
        config={"lags": [1, 24], "tag": tag},
        metrics={"mae": 1.5},
    )


def test_versions_are_numbered_from_one_per_model(registry: ModelRegistry, tmp_path):
    models = [register(registry, tmp_path, tag=tag) for tag in "abc"]
    other = register(registry, tmp_path, name="other_model")

    assert [model.version for model in models] == [1, 2, 3]
    assert [model.version for model in registry.versions(NAME)] == [1, 2, 3]
    assert other.version == 1
    assert registry.versions("never_registered") == []


def test_metadata_round_trips(registry: ModelRegistry, tmp_path):
    facts = {
        "data_cutoff": CUTOFF,
        "training_start": pd.Timestamp("2022-12-21 00:00", tz="UTC"),
        "feature_group_version": 3,
        "config": {"lags": [1, 24], "regressor": {"name": "lightgbm", "n_estimators": 200}},
        "metrics": {"mae": 1.25, "mape": 0.031},
        "extra": {"series": 76, "note": "first"},
    }

    registered = registry.register(NAME, model_files(tmp_path / "model", "a"), **facts)

    expected = RegisteredModel(name=NAME, version=1, **facts)
    assert registered == expected
    assert registry.get(NAME, 1) == expected
    assert str(registry.get(NAME, 1).data_cutoff.tz) == "UTC"
    assert str(registry.get(NAME, 1).training_start.tz) == "UTC"


def test_files_round_trip_per_version(registry: ModelRegistry, tmp_path):
    first, second = register(registry, tmp_path, tag="first"), register(registry, tmp_path, tag="second")

    assert files_of(registry.download(first)) == files_of(tmp_path / f"model-{NAME}-first")
    assert files_of(registry.download(second)) == files_of(tmp_path / f"model-{NAME}-second")


def test_get_of_a_missing_version_names_model_and_version(registry: ModelRegistry, tmp_path):
    register(registry, tmp_path)

    with pytest.raises(KeyError, match=rf"{NAME}.*version\W*2\b"):
        registry.get(NAME, 2)
    with pytest.raises(KeyError, match=r"never_registered.*version\W*1\b"):
        registry.get("never_registered", 1)


def test_latest_is_the_newest_cutoff_at_or_before_ties_going_to_the_highest_version(registry: ModelRegistry, tmp_path):
    hour = pd.Timedelta(hours=1)
    for version, cutoff in enumerate([CUTOFF, CUTOFF + 2 * hour, CUTOFF + hour, CUTOFF + 2 * hour], start=1):
        assert register(registry, tmp_path, cutoff=cutoff, tag=str(version)).version == version

    assert registry.latest(NAME).version == 4
    assert registry.latest(NAME, at_or_before=CUTOFF + 2 * hour).version == 4
    assert registry.latest(NAME, at_or_before=CUTOFF + 1.5 * hour).version == 3
    assert registry.latest(NAME, at_or_before=CUTOFF + hour).version == 3
    assert registry.latest(NAME, at_or_before=CUTOFF).version == 1
    assert registry.latest(NAME, at_or_before=CUTOFF - hour) is None
    assert registry.latest("never_registered") is None
