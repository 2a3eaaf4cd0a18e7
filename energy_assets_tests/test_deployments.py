"""Deployments: prod on the Hopsworks fake and the GCS emulator, and the `dagster` CLI on the code location."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetSelection, DagsterInstance, DagsterInvalidConfigError
from google.cloud import storage
from hsml.python.model import Model as PythonModel

from energy_assets.forecasting.provenance import frame_sha256
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.definitions import deployment_resources
from energy_assets.resources.bucket import GCSBucketResource
from energy_assets.resources.hopsworks import HopsworksFeatureStore, HopsworksModelRegistry
from energy_assets.storage.buckets import GCSBucket
from energy_assets.storage.objects import read_frame
from energy_assets.schema import ISSUED_AT, MODEL_NAME, MODEL_VERSION
from energy_assets.timeline import HOUR
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, run_range
from energy_assets_tests.hopsworks_fake import FAKE_API_KEY, FAKE_PROJECT, FakeModel, fake_hopsworks

DAGSTER = str(Path(sys.executable).with_name("dagster"))
SECRET_VARIABLES = ("FS_API_KEY", "FS_PROJECT_NAME", "FS_HOST", "GOOGLE_CLOUD_BUCKET_NAME")


def _environment(**overrides: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    return {**environment, **overrides}


@pytest.mark.slow
def test_prod_definitions_load_without_network_or_credentials(tmp_path):
    completed = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "energy_assets.definitions"],
        cwd=REPO_ROOT,
        env=_environment(ENERGY_ASSETS_DEPLOYMENT="prod", DAGSTER_HOME=str(tmp_path), STORAGE_EMULATOR_HOST=""),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]


def test_prod_uses_hopsworks_and_gcs(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    resources = deployment_resources()
    assert isinstance(resources["feature_store"], HopsworksFeatureStore)
    assert isinstance(resources["model_registry"], HopsworksModelRegistry)
    assert isinstance(resources["bucket_io_manager"].bucket, GCSBucketResource)
    assert resources["bucket_io_manager"].bucket is resources["bucket"]


def test_a_missing_credential_fails_the_run_naming_the_variable(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    for variable in SECRET_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", "never-reached")
    first = hour("2023-01-02 00:00")

    with pytest.raises(DagsterInvalidConfigError, match='environment variable "FS_API_KEY" which is not set'):
        run_range(first, first, RAW_AND_FEATURES)


@pytest.mark.parametrize(
    ("settings", "named"),
    [({}, "ENERGY_ASSETS_SOURCE"), ({"ENERGY_ASSETS_SOURCE": "synthetic"}, "ENERGY_ASSETS_ALLOW_SYNTHETIC_IN_PROD")],
)
def test_prod_refuses_an_unchosen_or_synthetic_source_before_anything_is_written(
    tmp_path, monkeypatch, gcs_emulator_env, settings, named
):
    bucket_name = f"refused-{uuid.uuid4().hex[:12]}"
    storage.Client(project="test").create_bucket(bucket_name)
    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    monkeypatch.setenv("FS_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("FS_PROJECT_NAME", FAKE_PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", bucket_name)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test")
    monkeypatch.delenv("ENERGY_ASSETS_SOURCE", raising=False)
    monkeypatch.delenv("ENERGY_ASSETS_ALLOW_SYNTHETIC_IN_PROD", raising=False)
    for variable, value in settings.items():
        monkeypatch.setenv(variable, value)
    first = hour("2023-01-02 00:00")

    with fake_hopsworks(tmp_path) as backend:
        result = run_range(first, first, RAW_AND_FEATURES, raise_on_error=False)

    assert not result.success
    failures = "\n".join(str(event.event_specific_data) for event in result.all_events if event.is_failure)
    assert named in failures
    assert not (backend.root / "feature_groups").exists()
    assert list(storage.Client(project="test").list_blobs(bucket_name)) == []


@pytest.mark.slow
def test_a_misconfigured_production_run_fails_at_once_naming_the_variable(tmp_path):
    # `dagster asset materialize` runs steps in their own processes (the multiprocess executor), where
    # Dagster retries a step whose resources fail to initialise by the op's RetryPolicy, whatever the error.
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    environment = {
        key: value for key, value in _environment().items() if key not in ("ENERGY_ASSETS_SOURCE", "ENERGY_ASSETS_ALLOW_SYNTHETIC_IN_PROD")
    }
    completed = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "energy_assets.definitions", "--select", "consumption_raw",
         "--partition", "2023-01-02-00:00"],
        cwd=REPO_ROOT,
        env={
            **environment,
            "ENERGY_ASSETS_DEPLOYMENT": "prod",
            "DAGSTER_HOME": str(dagster_home),
            "GOOGLE_CLOUD_BUCKET_NAME": "never-reached",
            "STORAGE_EMULATOR_HOST": "",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode != 0
    instance = DagsterInstance.from_config(str(dagster_home))
    [run] = instance.get_runs()
    events = [record.dagster_event for record in instance.all_logs(run.run_id) if record.dagster_event]
    assert [event.event_type_value for event in events if event.event_type_value == "STEP_UP_FOR_RETRY"] == []
    failures = "\n".join(str(event.event_specific_data) for event in events if event.is_failure or event.is_resource_init_failure)
    assert "ENERGY_ASSETS_SOURCE is not set: production needs the source chosen explicitly" in failures


@pytest.mark.slow
def test_prod_runs_the_whole_graph_for_three_days_with_daily_retraining_on_hopsworks_and_gcs(
    tmp_path, monkeypatch, gcs_emulator_env
):
    bucket_name = f"forecasts-{uuid.uuid4().hex[:12]}"
    storage.Client(project="test").create_bucket(bucket_name)
    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    monkeypatch.setenv("ENERGY_ASSETS_SOURCE", "synthetic")
    monkeypatch.setenv("ENERGY_ASSETS_ALLOW_SYNTHETIC_IN_PROD", "true")
    monkeypatch.setenv("ENERGY_ASSETS_TRAINING_DATASETS", "true")
    monkeypatch.setenv("FS_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("FS_PROJECT_NAME", FAKE_PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", bucket_name)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test")
    first_issue = hour("2023-01-12 00:00")
    last_issue = first_issue + 71 * HOUR
    history = (min_training_hours(ForecasterConfig()) + 24) * HOUR
    instance = DagsterInstance.ephemeral()

    with fake_hopsworks(tmp_path) as backend:
        resources = deployment_resources()
        run_range(first_issue - history, first_issue - HOUR, RAW_AND_FEATURES, instance=instance, resources=resources)
        forecasts = run_range(first_issue, last_issue, instance=instance, resources=resources)
        accuracy = run_range(
            first_issue, last_issue - 24 * HOUR, AssetSelection.assets("forecast_accuracy"), instance=instance, resources=resources
        )
        # Outside a run, EnvVar fields resolve only through Dagster's own initialization.
        registry = resources["model_registry"].process_config_and_initialize()
        models = registry.versions(MODEL_NAME)
        in_effect = {
            issue: registry.latest(MODEL_NAME, at_or_before=issue).version
            for issue in pd.date_range(first_issue, last_issue, freq="h")
        }
        facts = registry.get(MODEL_NAME, 3).extra
        feature_store = resources["feature_store"].process_config_and_initialize()
        features = feature_store.read(first_issue - history, last_issue + HOUR)
        training_dataset = feature_store.training_dataset(facts["training_data"]["training_dataset_version"])

    assert forecasts.success and accuracy.success
    assert [model.version for model in models] == [1, 2, 3]
    assert len(features) == len(pd.date_range(first_issue - history, last_issue, freq="h")) * 76
    assert [model.data_cutoff for model in models] == [first_issue + day * 24 * HOUR for day in range(3)]
    assert all(isinstance(model, PythonModel) for model in _sdk_models(backend))
    assert all(model.metrics["model_mape"] > 0 and "seasonal_naive_week_mape" in model.metrics for model in models)
    assert facts["training_data"]["feature_view"] == "energy_consumption_denmark_view"
    assert facts["training_data"]["training_dataset_version"] == 3
    # The recorded training dataset holds exactly the rows the training saw.
    assert (len(training_dataset), frame_sha256(training_dataset)) == (facts["training_data"]["rows"], facts["training_data"]["sha256"])
    client = storage.Client(project="test")
    forecast_objects = [b.name for b in client.list_blobs(bucket_name, prefix="energy_assets/energy_forecasts/")]
    assert len(forecast_objects) == 72
    assert all(":" not in name and name.endswith("/part-0.parquet") for name in forecast_objects)
    versions_used = {}
    for name in forecast_objects:
        frame = read_frame(GCSBucket(bucket_name=bucket_name, project="test"), [name])
        versions_used[frame[ISSUED_AT].iloc[0]] = set(frame[MODEL_VERSION])
    assert all(versions_used[issue] == {version} for issue, version in in_effect.items())
    assert [b.name for b in client.list_blobs(bucket_name, prefix="energy_assets/forecast_accuracy/")]
    logged = "\n".join(str(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id))
    assert FAKE_API_KEY not in logged


def _sdk_models(backend) -> list:
    """Every registered model as the SDK builds it from the fake backend's stored answer."""
    return [FakeModel.from_backend(None, path.parent) for path in backend.root.glob("models/*/*/model.json")]


@pytest.mark.slow
def test_the_dagster_cli_backfills_a_range_in_one_run(tmp_path):
    home = tmp_path / "state"
    completed = subprocess.run(
        [
            DAGSTER, "asset", "materialize", "-m", "energy_assets.definitions",
            "--select", "consumption_raw,energy_consumption_features",
            "--partition-range", "2023-01-02-00:00...2023-01-02-11:00",
        ],
        cwd=REPO_ROOT,
        env=_environment(ENERGY_ASSETS_HOME=str(home), DAGSTER_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stderr.count("RUN_SUCCESS") == 1
    raw_objects = list((home / "bucket" / "energy_assets" / "consumption_raw").glob("utc_date=2023-01-02/utc_hour=*/part-0.parquet"))
    assert len(raw_objects) == 12
    day_files = list((home / "feature_store" / "energy_consumption_denmark" / "v1").glob("*.parquet"))
    assert pd.read_parquet(day_files[0]).shape[0] == 12 * 76
