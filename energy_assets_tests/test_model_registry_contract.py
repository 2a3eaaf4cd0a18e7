"""The model-registry contract, run against every implementation."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import pytest

from energy_assets.forecasting.evaluation import METRICS
from energy_assets.forecasting.provenance import REGISTRY_FORECASTER_NAMES, registry_metrics
from energy_assets.forecasting.training import ForecasterConfig
from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.forecasting.retraining import RegisteredModel
from energy_assets.resources.model_registry import ModelRegistry

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


def project_metrics() -> dict[str, float]:
    """Every validation metric a training reports ({forecaster}_{metric}), under the names the project registers."""
    keys = [f"{forecaster}_{metric}" for forecaster in REGISTRY_FORECASTER_NAMES for metric in METRICS]
    return registry_metrics({key: 0.01 * number for number, key in enumerate(keys, start=1)})


def test_the_metrics_the_project_registers_read_back_under_the_same_names(registry: ModelRegistry, tmp_path):
    metrics = project_metrics()
    registered = registry.register(
        NAME,
        model_files(tmp_path / "model", "a"),
        data_cutoff=CUTOFF,
        training_start=CUTOFF - pd.Timedelta(days=14),
        feature_group_version=1,
        config={},
        metrics=metrics,
    )

    assert registered.metrics == metrics
    assert registry.get(NAME, 1).metrics == metrics
    assert registry.versions(NAME)[0].metrics == metrics


@pytest.mark.parametrize("name", ["snaive168_mape", "modelMape", "mape__model", "mape_2"])
def test_a_metric_name_the_registry_would_rename_is_refused_before_anything_is_stored(
    registry: ModelRegistry, tmp_path, name
):
    with pytest.raises(ValueError, match=name):
        registry.register(
            NAME,
            model_files(tmp_path / "model", "a"),
            data_cutoff=CUTOFF,
            training_start=CUTOFF,
            feature_group_version=1,
            config={},
            metrics={name: 0.1, "mape": 0.2},
        )
    assert registry.versions(NAME) == []


def test_bulky_training_facts_round_trip(registry: ModelRegistry, tmp_path):
    """A full configuration, 40 excluded series and hyperparameter-search results: far over 1000 characters."""
    config = {"lags": [1, 2, 3, 4, 5, 6, 12, 24], "holiday_lags": [24, 168], "learning_rate": 0.05, "n_estimators": 400}
    extra = {
        "training_rows": 54_720,
        "training_window_days": 30,
        "training_data": {"feature_view": "energy_consumption_denmark_view", "feature_view_version": 1, "rows": 54_720, "sha256": "ab" * 32},
        "excluded_series": [{"area": 1, "consumer_type": 100 + n, "hours_available": n} for n in range(40)],
        "hyperparameter_search": [{"n_estimators": 100 * n, "holiday_weight": 1.0, "mape": 0.05, "rmspe": 0.07} for n in range(12)],
    }
    assert len(str(extra)) > 3000

    registered = registry.register(
        NAME, model_files(tmp_path / "model", "a"), data_cutoff=CUTOFF, training_start=CUTOFF - pd.Timedelta(days=30),
        feature_group_version=2, config=config, metrics=project_metrics(), extra=extra,
    )

    again = registry.get(NAME, registered.version)
    assert (again.config, dict(again.extra)) == (config, extra)
    assert files_of(registry.download(again)) == files_of(tmp_path / "model")


def test_registering_the_same_training_twice_returns_the_first_version(registry):
    first = register_training(registry)
    again = register_training(registry)
    other = register_training(registry, cutoff=pd.Timestamp("2023-01-11 00:00", tz="UTC"))
    assert again.version == first.version
    assert [model.version for model in registry.versions("m")] == [first.version, other.version]


def register_training(registry, cutoff=pd.Timestamp("2023-01-10 00:00", tz="UTC")):
    with tempfile.TemporaryDirectory() as files:
        (Path(files) / "model.bin").write_bytes(b"weights")
        return registry.register(
            "m", files, data_cutoff=cutoff, training_start=cutoff - pd.Timedelta(hours=719), feature_group_version=1,
            config=ForecasterConfig().to_dict(), metrics={"model_mape": 0.1},
        )
