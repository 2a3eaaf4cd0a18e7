"""`energy-assets check-deployment` against the strict GCS emulator (IAM roles) and the Hopsworks fake (API key
scopes): it names every missing permission and scope, per process, and leaves nothing behind."""

from __future__ import annotations

import pytest

from energy_assets.app.cli import main
from energy_assets.resources.hopsworks import CONNECTION
from energy_assets.storage.buckets import GCSBucket
from energy_assets_tests.gcs_emulator import EMULATOR_PROJECT, emulator_bucket
from energy_assets_tests.hopsworks_fake import FAKE_API_KEY, FAKE_PROJECT, FAKE_HOST, fake_hopsworks


@pytest.fixture
def prod(iam_gcs, gcs_emulator, monkeypatch, tmp_path):
    """Production settings on the strict emulator and the Hopsworks fake; the test grants roles and scopes."""
    bucket = emulator_bucket(gcs_emulator)
    for variable, value in {
        "ENERGY_ASSETS_DEPLOYMENT": "prod", "GOOGLE_CLOUD_BUCKET_NAME": bucket, "GOOGLE_CLOUD_PROJECT": EMULATOR_PROJECT,
        "FS_API_KEY": FAKE_API_KEY, "FS_PROJECT_NAME": FAKE_PROJECT, "FS_HOST": FAKE_HOST,
    }.items():
        monkeypatch.setenv(variable, value)
    with fake_hopsworks(tmp_path) as backend:
        yield iam_gcs, backend, GCSBucket(bucket_name=bucket, project=EMULATOR_PROJECT)


def test_a_deployment_with_every_role_and_scope_passes_and_leaves_nothing_behind(prod, capsys):
    iam, backend, bucket = prod
    iam.grant("roles/storage.objectUser")

    status = main(["check-deployment"])

    out = capsys.readouterr().out
    assert status == 0, out
    assert "MISSING" not in out and "everything this deployment needs is there" in out
    for line in ("ok       storage.objects.delete", "ok       webserver (reads step logs)", "ok       login (scope PROJECT)",
                 "ok       feature store (scope FEATURESTORE", "is created by the first insert", "ok       jobs (scope JOB"):
        assert line in out
    iam.grant("roles/storage.admin")
    assert bucket.list_keys("") == [] and backend.datasets == {"Models", "Resources"}


def test_missing_permissions_and_scopes_are_named_with_the_processes_they_stop(prod, capsys):
    iam, backend, _ = prod
    iam.grant("roles/storage.objectViewer")
    backend.api_key_scopes -= {"DATASET_CREATE", "JOB"}

    status = main(["check-deployment"])

    out = capsys.readouterr().out
    assert status == 1
    assert "MISSING  storage.objects.create: permission denied to write gs://" in out and "Storage Object User" in out
    assert "MISSING  storage.objects.delete: not checked: probing it needs storage.objects.create" in out
    assert "ok       webserver (reads step logs)" in out and "ok       daemon (loads the instance)" in out
    assert "MISSING  code server and run workers (write objects and step logs): lacks storage.objects.create, storage.objects.delete" in out
    assert "MISSING  datasets (scope DATASET_CREATE: upload model files to the Models dataset): the API key lacks the DATASET_CREATE scope" in out
    assert "MISSING  datasets (scope DATASET_DELETE: remove a failed upload from the Models dataset): not checked" in out
    assert "MISSING  jobs (scope JOB" in out and "ok       model registry (scope MODELREGISTRY" in out
    assert out.rstrip().endswith("6 missing")


def test_a_key_without_the_project_scope_and_a_project_without_models_are_named(prod, capsys):
    iam, backend, _ = prod
    iam.grant("roles/storage.objectUser")
    backend.datasets.discard("Models")

    assert main(["check-deployment"]) == 1
    assert "MISSING  datasets (scope DATASET_VIEW: see the Models dataset and download model files): the Models dataset does not exist: enable the project's Serving service" in capsys.readouterr().out

    backend.api_key_scopes.discard("PROJECT")
    CONNECTION.logout()  # each command is a process of its own
    assert main(["check-deployment"]) == 1
    out = capsys.readouterr().out
    assert "MISSING  login (log in to the project; scope PROJECT): Hopsworks login to project" in out and "403" in out


def test_a_missing_bucket_is_named(prod, capsys, monkeypatch):
    iam, _, _ = prod
    iam.grant("roles/storage.admin")
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", "never-created")

    assert main(["check-deployment"]) == 1
    assert "MISSING  the bucket and its credentials: GCS bucket 'never-created' does not exist" in capsys.readouterr().out


def test_the_local_deployment_checks_its_folder(isolated_state, capsys):
    assert main(["check-deployment"]) == 0
    out = capsys.readouterr().out
    assert f"bucket file://{isolated_state}/bucket/" in out and "Hopsworks" not in out
