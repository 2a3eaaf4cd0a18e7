"""Fixtures: an in-memory GCS emulator on 127.0.0.1 for the test session, and a fresh bucket per test;
Google's OAuth token endpoint as strict as the real one, and a service-account key that uses it.

Use them by importing: `from energy_assets_tests.gcs_emulator import any_bucket, gcs_bucket, gcs_emulator, gcs_emulator_env`.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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


class _TokenEndpoint(BaseHTTPRequestHandler):
    """Google's OAuth 2.0 token endpoint for service-account JWT grants (RFC 7523), as strict as the real one
    about scopes: an assertion without a `scope` claim is refused with `invalid_scope` (gcsfs issue 553)."""

    def do_POST(self):
        body = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        payload = body["assertion"][0].split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.server.grants.append(claims)
        if not claims.get("scope"):
            self._answer(400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope or ID token audience provided."})
        else:
            self._answer(200, {"access_token": f"token-{len(self.server.grants)}", "expires_in": 3599, "token_type": "Bearer"})

    def _answer(self, status: int, content: dict) -> None:
        data = json.dumps(content).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def oauth_token_endpoint() -> Iterator[ThreadingHTTPServer]:
    """A loopback token endpoint; `.grants` holds the claims of every assertion it was sent."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    server.grants = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def service_account_key(tmp_path: Path, oauth_token_endpoint: ThreadingHTTPServer) -> Path:
    """A service-account JSON key file, as the Cloud console downloads it, whose token URI is the loopback endpoint."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": EMULATOR_PROJECT,
                "private_key_id": uuid.uuid4().hex,
                "private_key": pem.decode(),
                "client_email": f"energy-assets@{EMULATOR_PROJECT}.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": f"http://127.0.0.1:{oauth_token_endpoint.server_address[1]}/token",
            }
        )
    )
    return path
