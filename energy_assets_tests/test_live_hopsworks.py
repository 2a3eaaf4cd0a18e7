"""The prod path against a real Hopsworks project and a real GCS bucket (opt-in: `pytest -m live`).

Everything is written to throw-away names (a new feature group version with its feature view, a
suffixed model name, a unique bucket prefix) and deleted afterwards, also when the test fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import AssetSelection, DagsterInstance, EnvVar
from google.cloud import storage

from energy_assets import settings
from energy_assets.definitions import deployment_resources
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.resources.hopsworks import CONNECTION, SAAS_HOST, HopsworksModelRegistry
from energy_assets.schema import FEATURE_GROUP_NAME, MODEL_NAME
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, run_range

pytestmark = pytest.mark.live

HOURS = pd.Timedelta(hours=1)
REQUIRED = (settings.FS_API_KEY, settings.FS_PROJECT_NAME, settings.GCS_BUCKET_NAME)


def _missing_settings() -> list[str]:
    missing = [variable for variable in REQUIRED if not settings.text(variable)]
    if settings.text(settings.STORAGE_EMULATOR_HOST):
        missing.append(f"{settings.STORAGE_EMULATOR_HOST} unset (it points GCS at an emulator)")
    if not settings.text(settings.GCS_SERVICE_ACCOUNT_JSON_PATH):
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            google.auth.default()
        except DefaultCredentialsError:
            missing.append(f"Google Cloud credentials ({settings.GCS_SERVICE_ACCOUNT_JSON_PATH} or application default)")
    return missing


@pytest.fixture
def live_project(monkeypatch) -> Iterator[dict]:
    """The prod deployment on throw-away names; removes everything it made afterwards."""
    missing = _missing_settings()
    if missing:
        pytest.skip(f"live Hopsworks/GCS test needs {', '.join(missing)} (see README, 'Running against Hopsworks and GCS')")
    run = uuid.uuid4().hex[:8]
    monkeypatch.setenv(settings.DEPLOYMENT, "prod")
    monkeypatch.setenv(settings.SOURCE, "synthetic")
    monkeypatch.setenv(settings.SYNTHETIC_IN_PROD, "true")  # the throw-away group only
    monkeypatch.setenv(settings.BUCKET_PREFIX, f"energy_assets_live_{run}")
    resources = deployment_resources()
    feature_store = resources["feature_store"].process_config_and_initialize()
    store = feature_store._store()
    taken = [group.version for group in store.get_feature_groups(FEATURE_GROUP_NAME) or []]
    version = max(taken, default=0) + 1
    monkeypatch.setenv(settings.FEATURE_GROUP_VERSION, str(version))
    host = {"host": settings.text(settings.FS_HOST)} if settings.text(settings.FS_HOST) else {}
    resources = {
        **deployment_resources(),
        "model_registry": HopsworksModelRegistry(
            api_key=EnvVar(settings.FS_API_KEY),
            project=EnvVar(settings.FS_PROJECT_NAME),
            model_name_suffix=f"_live_{run}",
            **host,
        ),
    }
    try:
        yield {"resources": resources, "version": version, "prefix": f"energy_assets_live_{run}"}
    finally:
        _clean_up(version, f"{MODEL_NAME}_live_{run}", f"energy_assets_live_{run}")


def _clean_up(version: int, model_name: str, prefix: str) -> None:
    """Delete the throw-away model versions, feature view, feature group version and bucket objects."""
    registry = HopsworksModelRegistry(
        api_key=os.environ[settings.FS_API_KEY],
        project=os.environ[settings.FS_PROJECT_NAME],
        host=settings.text(settings.FS_HOST) or SAAS_HOST,
    )
    project = registry._hopsworks_project()
    for model in project.get_model_registry().get_models(model_name) or []:
        model.delete()
    store = project.get_feature_store()
    view = store.get_feature_view("energy_consumption_denmark_view", version=version)
    if view is not None:
        view.delete()
    group = store.get_feature_group(FEATURE_GROUP_NAME, version=version)
    if group is not None:
        group.delete()
    bucket = storage.Client(project=settings.text(settings.GCS_PROJECT)).bucket(os.environ[settings.GCS_BUCKET_NAME])
    for blob in bucket.list_blobs(prefix=f"{prefix}/"):
        blob.delete()
    CONNECTION.logout()


def test_the_prod_path_runs_against_hopsworks_and_gcs_and_finds_the_model_in_effect(live_project):
    resources = live_project["resources"]
    first_issue = hour("2023-01-12 00:00")
    history = (min_training_hours(ForecasterConfig()) + 24) * HOURS
    instance = DagsterInstance.ephemeral()

    run_range(first_issue - history, first_issue - HOURS, RAW_AND_FEATURES, instance=instance, resources=resources)
    # One run over 25 hours: a model at the first hour, retrained a day later.
    forecasts = run_range(first_issue, first_issue + 24 * HOURS, instance=instance, resources=resources)
    accuracy = run_range(first_issue, first_issue, AssetSelection.assets("forecast_accuracy"), instance=instance, resources=resources)
    registry = resources["model_registry"].process_config_and_initialize()
    models = registry.versions(MODEL_NAME)

    assert forecasts.success and accuracy.success
    assert [model.version for model in models] == [1, 2]
    assert registry.latest(MODEL_NAME, at_or_before=first_issue + 23 * HOURS).version == 1
    assert registry.latest(MODEL_NAME, at_or_before=first_issue + 24 * HOURS).version == 2
    assert {"model_mape", "seasonal_naive_week_mape"} <= set(models[-1].metrics)
    assert models[-1].extra["training_data"]["feature_view_version"] == live_project["version"]
    assert registry.download(models[-1]).is_dir()
    bucket = storage.Client(project=settings.text(settings.GCS_PROJECT)).bucket(os.environ[settings.GCS_BUCKET_NAME])
    names = [blob.name for blob in bucket.list_blobs(prefix=f"{live_project['prefix']}/energy_forecasts/")]
    assert len(names) == 25
