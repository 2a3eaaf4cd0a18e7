"""Fixtures: an in-memory GCS emulator on 127.0.0.1 for the test session, and a fresh bucket per test.

Use them by importing: `from energy_assets_tests.gcs_emulator import any_bucket, gcs_bucket, gcs_emulator, gcs_emulator_env`.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator

import pytest
from gcp_storage_emulator.server import create_server
from google.cloud import storage

from energy_assets.settings import STORAGE_EMULATOR_HOST as EMULATOR_VARIABLE
from energy_assets.resources.bucket import BucketResource, GCSBucketResource, LocalBucketResource
from energy_assets.settings import DEFAULT_BUCKET_PREFIX
from energy_assets.storage.buckets import Bucket, GCSBucket, LocalBucket

EMULATOR_PROJECT = "energy-assets-test"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The emulator's address (`http://127.0.0.1:<port>`), serving from memory until the session ends."""
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def gcs_emulator_env(gcs_emulator: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Points google-cloud-storage at the emulator for this test only."""
    monkeypatch.setenv(EMULATOR_VARIABLE, gcs_emulator)
    return gcs_emulator


@pytest.fixture
def gcs_bucket(gcs_emulator_env: str) -> GCSBucket:
    """A GCSBucket on a bucket created for this test alone."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    storage.Client(project=EMULATOR_PROJECT).create_bucket(name)
    return GCSBucket(bucket_name=name, project=EMULATOR_PROJECT)


@pytest.fixture(params=["local", "gcs"])
def any_bucket(request: pytest.FixtureRequest, tmp_path) -> Bucket:
    """Each test that takes it runs twice: on a LocalBucket and on a GCSBucket in the emulator."""
    if request.param == "local":
        return LocalBucket(root_dir=str(tmp_path / "bucket"))
    return request.getfixturevalue("gcs_bucket")


def as_resource(bucket: Bucket, prefix: str = DEFAULT_BUCKET_PREFIX) -> BucketResource:
    """The bucket resource that opens `bucket`, for IO managers and assets under test."""
    if isinstance(bucket, LocalBucket):
        return LocalBucketResource(root_dir=bucket.root_dir, prefix=prefix)
    return GCSBucketResource(
        bucket_name=bucket.bucket_name,
        project=bucket.project,
        service_account_json_path=bucket.service_account_json_path,
        prefix=prefix,
    )
