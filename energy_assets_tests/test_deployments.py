"""Deployments: prod on the Hopsworks fake and the GCS emulator, and the `dagster` CLI on the code location."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance, DagsterInvalidConfigError
from google.cloud import storage

from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.definitions import deployment_resources
from energy_assets.resources.bucket import GCSBucketResource
from energy_assets.resources.hopsworks import HopsworksFeatureStore, HopsworksModelRegistry
from energy_assets.schema import MODEL_NAME
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, run_range
from energy_assets_tests.hopsworks_fake import FAKE_API_KEY, FAKE_PROJECT, fake_hopsworks

HOURS = pd.Timedelta(hours=1)
DAGSTER = str(Path(sys.executable).with_name("dagster"))
SECRET_VARIABLES = ("FS_API_KEY", "FS_PROJECT_NAME", "FS_HOST", "GOOGLE_CLOUD_BUCKET_NAME")


def _environment(**overrides: str) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    return {**environment, **overrides}


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


def test_prod_materializes_the_whole_graph_on_hopsworks_and_gcs(tmp_path, monkeypatch, gcs_emulator_env):
    bucket_name = f"forecasts-{uuid.uuid4().hex[:12]}"
    storage.Client(project="test").create_bucket(bucket_name)
    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    monkeypatch.setenv("FS_API_KEY", FAKE_API_KEY)
    monkeypatch.setenv("FS_PROJECT_NAME", FAKE_PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", bucket_name)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test")
    first_issue = hour("2023-01-12 00:00")
    history = (min_training_hours(ForecasterConfig()) + 24) * HOURS
    instance = DagsterInstance.ephemeral()

    with fake_hopsworks(tmp_path) as backend:
        resources = deployment_resources()
        run_range(first_issue - history, first_issue - HOURS, RAW_AND_FEATURES, instance=instance, resources=resources)
        result = run_range(first_issue, first_issue + HOURS, instance=instance, resources=resources)
        # Outside a run, EnvVar fields resolve only through Dagster's own initialization.
        models = resources["model_registry"].process_config_and_initialize().versions(MODEL_NAME)
        feature_store = resources["feature_store"].process_config_and_initialize()
        features = feature_store.read(first_issue - history, first_issue + 2 * HOURS)

    assert result.success
    assert [model.version for model in models] == [1]
    assert len(features) == (len(pd.date_range(first_issue - history, first_issue + HOURS, freq="h"))) * 76
    names = sorted(blob.name for blob in storage.Client(project="test").list_blobs(bucket_name))
    assert [n for n in names if "energy_forecasts" in n] == [
        "energy_assets/energy_forecasts/utc_date=2023-01-12/utc_hour=0/part-0.parquet",
        "energy_assets/energy_forecasts/utc_date=2023-01-12/utc_hour=1/part-0.parquet",
    ]
    assert backend is not None
    logged = "\n".join(str(entry) for run in instance.get_runs() for entry in instance.all_logs(run.run_id))
    assert "forecasting_model" in logged
    assert FAKE_API_KEY not in logged


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
