"""The production instance's compute-log manager (deploy/dagster.yaml), loaded and used by each process with
the Cloud Storage roles docs/production.md documents for it, against the emulator behind IAM checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from dagster._core.storage.compute_log_manager import ComputeIOType
from dagster._serdes import ConfigurableClassData

from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.gcs_emulator import emulator_bucket

INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"


def load_compute_log_manager(staging: Path):
    """The compute-log manager as a process loading deploy/dagster.yaml builds it, staging logs in `staging`
    (the system temp folder by default)."""
    section = yaml.safe_load(INSTANCE.read_text())["compute_logs"]
    config = {**section["config"], "local_dir": str(staging)}
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(config)).rehydrate()


@pytest.fixture
def log_bucket(iam_gcs, gcs_emulator, monkeypatch) -> str:
    name = emulator_bucket(gcs_emulator)
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", name)
    return name


def test_the_webserver_and_daemon_load_the_instance_with_the_object_viewer_role(iam_gcs, log_bucket, tmp_path):
    # dagster-gcp's own manager asserts bucket.exists(): storage.buckets.get, which no object role has.
    iam_gcs.grant("roles/storage.objectViewer")

    manager = load_compute_log_manager(tmp_path)

    assert not manager.cloud_storage_has_logs(["run", "step"], ComputeIOType.STDOUT)


def test_a_run_worker_writes_its_step_logs_with_the_object_user_role_and_the_webserver_reads_them(iam_gcs, log_bucket, tmp_path):
    iam_gcs.grant("roles/storage.objectUser")
    manager = load_compute_log_manager(tmp_path / "worker")
    log_key = ["run-1", "compute_logs", "step"]
    local = tmp_path / "step.out"
    for text in ("first line\n", "first line\nsecond line\n"):  # a partial upload, then the whole log over it
        local.write_text(text)
        with open(local, "rb") as data:
            manager._upload_file_obj(data, log_key, ComputeIOType.STDOUT)

    iam_gcs.grant("roles/storage.objectViewer")
    reader = load_compute_log_manager(tmp_path / "webserver")
    assert reader.cloud_storage_has_logs(log_key, ComputeIOType.STDOUT)
    reader.download_from_cloud_storage(log_key, ComputeIOType.STDOUT)
    assert open(reader.local_manager.get_captured_local_path(log_key, "out")).read() == "first line\nsecond line\n"


def test_without_a_role_loading_names_the_missing_permission(iam_gcs, log_bucket, tmp_path):
    with pytest.raises(PermissionError, match=f"load the compute-log manager gs://{log_bucket}/dagster/compute_logs/.*storage.objects.list"):
        load_compute_log_manager(tmp_path)
