"""The prod path against a real Hopsworks project and a real GCS bucket (opt-in: `pytest -m live`).

Everything is written to throw-away names (a new feature group version with its feature view, a
suffixed model name, a unique bucket prefix) and deleted afterwards, also when the test fails. Besides the
graph, the first real run exercises what the fakes could only imitate (issue 24): the scoped credentials of
every GCS client, the compute-log manager and the pre-flight check on the object roles, one process's logout
beside another's session, a save whose registration wait runs out, and the feature group's compaction.
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
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import HOUR
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, run_range

pytestmark = pytest.mark.live

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
        pytest.skip(f"live Hopsworks/GCS test needs {', '.join(missing)} (see docs/production.md, 'Live tests against a real project')")
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
    history = (min_training_hours(ForecasterConfig()) + 24) * HOUR
    instance = DagsterInstance.ephemeral()

    run_range(first_issue - history, first_issue - HOUR, RAW_AND_FEATURES, instance=instance, resources=resources)
    # One run over 25 hours: a model at the first hour, retrained a day later.
    forecasts = run_range(first_issue, first_issue + 24 * HOUR, instance=instance, resources=resources)
    accuracy = run_range(first_issue, first_issue, AssetSelection.assets("forecast_accuracy"), instance=instance, resources=resources)
    registry = resources["model_registry"].process_config_and_initialize()
    models = registry.versions(MODEL_NAME)

    assert forecasts.success and accuracy.success
    assert [model.version for model in models] == [1, 2]
    assert registry.latest(MODEL_NAME, at_or_before=first_issue + 23 * HOUR).version == 1
    assert registry.latest(MODEL_NAME, at_or_before=first_issue + 24 * HOUR).version == 2
    assert {"model_mape", "seasonal_naive_week_mape"} <= set(models[-1].metrics)
    assert models[-1].extra["training_data"]["feature_view_version"] == live_project["version"]
    assert registry.download(models[-1]).is_dir()
    bucket = storage.Client(project=settings.text(settings.GCS_PROJECT)).bucket(os.environ[settings.GCS_BUCKET_NAME])
    names = [blob.name for blob in bucket.list_blobs(prefix=f"{live_project['prefix']}/energy_forecasts/")]
    assert len(names) == 25


def test_every_gcs_client_gets_a_token_and_the_compute_logs_and_pre_flight_work_on_the_real_bucket(live_project, tmp_path):
    # Issue 24 items 1 and 2: gcsfs (the file layer, the readers) and google-cloud-storage (the compute logs)
    # hold scoped credentials; the compute-log manager loads and writes with object roles alone.
    import google.auth.transport.requests
    import yaml
    from dagster._core.storage.compute_log_manager import ComputeIOType
    from dagster._serdes import ConfigurableClassData

    from energy_assets.app.deployment_check import check_bucket
    from energy_assets.storage.buckets import deployment_bucket
    from energy_assets_tests.conftest import REPO_ROOT

    bucket = deployment_bucket()
    for credentials in (bucket.filesystem.credentials.credentials, bucket.client()._credentials):
        credentials.refresh(google.auth.transport.requests.Request())
        assert credentials.token
    key = f"{live_project['prefix']}/probe/part-0.parquet"
    bucket.write_bytes(key, b"written through gcsfs")
    assert bucket.read_bytes(key) == b"written through gcsfs" and bucket.list_keys(f"{live_project['prefix']}/probe/") == [key]

    section = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())["compute_logs"]
    config = {**section["config"], "local_dir": str(tmp_path), "prefix": f"{live_project['prefix']}/compute_logs"}
    manager = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(config)).rehydrate()
    (tmp_path / "step.out").write_text("a step's output")
    with open(tmp_path / "step.out", "rb") as data:
        manager._upload_file_obj(data, ["live-run", "step"], ComputeIOType.STDOUT)
    assert manager.cloud_storage_has_logs(["live-run", "step"], ComputeIOType.STDOUT)

    findings = check_bucket(bucket, live_project["prefix"])
    assert all(finding.ok for finding in findings), [str(finding) for finding in findings if not finding.ok]


def test_the_pre_flight_check_passes_against_the_real_project(live_project):
    from energy_assets.app.deployment_check import check_hopsworks

    findings = check_hopsworks(
        os.environ[settings.FS_API_KEY], os.environ[settings.FS_PROJECT_NAME], settings.text(settings.FS_HOST)
    )

    optional = "scope JOB" if not settings.flag(settings.TRAINING_DATASETS) else None
    missing = [str(finding) for finding in findings if not finding.ok and not (optional and optional in finding.subject)]
    assert missing == []


LIVE_OTHER_PROCESS = """
import os
from energy_assets.resources.hopsworks import SAAS_HOST, HopsworksModelRegistry
from energy_assets import settings
registry = HopsworksModelRegistry(api_key=os.environ[settings.FS_API_KEY], project=os.environ[settings.FS_PROJECT_NAME],
                                  host=settings.text(settings.FS_HOST) or SAAS_HOST)
registry.versions("energy_consumption_forecaster")
"""


def test_another_process_logging_out_leaves_this_one_s_session_working(live_project):
    # Issue 24 item 3: a process's logout at exit deleted the certificates every process of the host used.
    import subprocess
    import sys

    from energy_assets.resources.hopsworks import CONNECTION

    feature_store = live_project["resources"]["feature_store"].process_config_and_initialize()
    rows = synthetic_consumption(hour("2023-01-01 00:00"), hour("2023-01-01 02:00"))
    feature_store.insert(rows)
    assert (CONNECTION.folder() / "certificates" / "client_key.pem").is_file()  # this process's own folder

    other = subprocess.run([sys.executable, "-c", LIVE_OTHER_PROCESS], capture_output=True, text=True, timeout=600)

    assert other.returncode == 0, other.stderr[-2000:]
    assert len(feature_store.read(hour("2023-01-01 00:00"), hour("2023-01-01 03:00"))) == len(rows)  # Arrow Flight
    feature_store.insert(rows.assign(energy_consumption=rows["energy_consumption"] + 1))  # delta-rs


def test_a_save_whose_registration_wait_runs_out_is_confirmed_by_looking_it_up(live_project, tmp_path, monkeypatch):
    # Issue 24 item 4: hsml 5.2 raises AttributeError when await_registration runs out; 0 makes it run out at once.
    from hsml.model import Model

    save = Model.save
    monkeypatch.setattr(Model, "save", lambda model, path, **options: save(model, path, **{**options, "await_registration": 0}))
    registry = live_project["resources"]["model_registry"].process_config_and_initialize()
    files = tmp_path / "model"
    files.mkdir()
    (files / "weights.txt").write_text("not a real model")

    registered = registry.register(
        MODEL_NAME, files, data_cutoff=hour("2023-01-01 00:00"), training_start=hour("2022-12-01 00:00"),
        feature_group_version=live_project["version"], config={"probe": "item 4"}, metrics={"model_mape": 0.1},
    )

    assert registry.get(MODEL_NAME, registered.version).config == {"probe": "item 4"}


def test_the_feature_group_is_compacted_without_statistics_per_insert(live_project):
    # Issue 24 item 5: hourly inserts are delta-rs MERGEs, one small file each; the maintenance asset compacts them.
    from dagster import materialize

    from energy_assets.assets.maintenance import feature_group_compaction

    feature_store = live_project["resources"]["feature_store"].process_config_and_initialize()
    start = hour("2023-01-02 00:00")
    for offset in range(3):
        feature_store.insert(synthetic_consumption(start + offset * HOUR, start + (offset + 1) * HOUR))
    before = feature_store.read(start, start + 3 * HOUR)

    result = materialize([feature_group_compaction], resources={"feature_store": live_project["resources"]["feature_store"]})

    metadata = result.asset_materializations_for_node("feature_group_compaction")[0].metadata
    assert metadata["data_files_after"].value <= metadata["data_files_before"].value
    pd.testing.assert_frame_equal(feature_store.read(start, start + 3 * HOUR), before)
    group = feature_store.project_handle().get_feature_store().get_feature_group(FEATURE_GROUP_NAME, version=live_project["version"])
    assert group.statistics_config.enabled is False
