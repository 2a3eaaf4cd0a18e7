"""Fixtures: an in-memory GCS emulator on 127.0.0.1 for the test session, behind a proxy as strict as GCS
(IAM roles, generation preconditions), and a fresh bucket per test; Google's OAuth token endpoint as strict
as the real one, and a service-account key that uses it.

Use them by importing: `from energy_assets_tests.gcs_emulator import any_bucket, gcs_bucket, gcs_emulator, gcs_emulator_env`.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

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


@pytest.fixture(scope="session")
def strict_gcs(gcs_emulator: str) -> Iterator[IamStorage]:
    """The emulator behind a loopback proxy that answers as GCS does where the emulator is lenient: Cloud
    Storage's permission checks for the roles granted, and generation preconditions (ifGenerationMatch=0)."""
    roles: set[str] = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IamProxy)
    server.principal = f"energy-assets@{EMULATOR_PROJECT}.iam.gserviceaccount.com"
    server.upstream = ("127.0.0.1", int(gcs_emulator.rsplit(":", 1)[1]))
    server.granted = lambda: frozenset().union(*(STORAGE_ROLES[role] for role in roles))
    server.unknown = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield IamStorage(server, roles)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gcs_emulator_env(strict_gcs: IamStorage, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points google-cloud-storage and gcsfs at the strict emulator for this test only, every role granted."""
    strict_gcs.grant("roles/storage.admin")
    monkeypatch.setenv(EMULATOR_VARIABLE, strict_gcs.url)
    yield strict_gcs.url
    unknown, strict_gcs.server.unknown[:] = list(strict_gcs.server.unknown), []
    assert not unknown, unknown


@pytest.fixture
def iam_gcs(gcs_emulator_env: str, strict_gcs: IamStorage) -> IamStorage:
    """The strict emulator with no role granted: `grant(*roles)` gives the one principal its roles."""
    strict_gcs.grant()
    return strict_gcs


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


# Cloud Storage's predefined roles, as the permissions this project's calls need of them
# (https://cloud.google.com/storage/docs/access-control/iam-roles).
STORAGE_ROLES: dict[str, frozenset[str]] = {
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list"}),
    "roles/storage.objectCreator": frozenset({"storage.objects.create"}),
    "roles/storage.objectUser": frozenset(
        {"storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list", "storage.objects.update"}
    ),
    "roles/storage.objectAdmin": frozenset(
        {
            "storage.objects.create", "storage.objects.delete", "storage.objects.get", "storage.objects.list",
            "storage.objects.update", "storage.objects.getIamPolicy", "storage.objects.setIamPolicy",
        }
    ),
    "roles/storage.legacyBucketReader": frozenset({"storage.buckets.get", "storage.objects.list"}),
    "roles/storage.admin": frozenset(
        {
            "storage.buckets.create", "storage.buckets.get", "storage.objects.create", "storage.objects.delete",
            "storage.objects.get", "storage.objects.list", "storage.objects.update",
        }
    ),
}
_BUCKET = r"/storage/v1/b/(?P<bucket>[^/?]+)"
_OBJECT = _BUCKET + r"/o/(?P<object>[^/?]+)"
# (method, path pattern, permission); an upload also needs storage.objects.delete when it replaces an object.
_PERMISSIONS = [
    ("POST", re.compile(r"/storage/v1/b$"), "storage.buckets.create"),
    ("GET", re.compile(_BUCKET + r"$"), "storage.buckets.get"),
    ("GET", re.compile(_BUCKET + r"/o$"), "storage.objects.list"),
    ("GET", re.compile(r"(/download)?" + _OBJECT + r"$"), "storage.objects.get"),
    ("DELETE", re.compile(_OBJECT + r"$"), "storage.objects.delete"),
    ("POST", re.compile(r"/upload" + _BUCKET + r"/o$"), "storage.objects.create"),
    ("POST", re.compile(_OBJECT + r"/compose$"), "storage.objects.create"),
]


class _IamProxy(BaseHTTPRequestHandler):
    """The emulator behind Cloud Storage's permission checks: a request the principal's roles do not allow
    is answered 403 as GCS answers it; anything else is forwarded."""

    protocol_version = "HTTP/1.1"

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, raw_query = self.path.partition("?")
        query = parse_qs(raw_query)
        try:
            denied = self._denied(self.command, path, query, body)
        except LookupError as unknown:
            self.server.unknown.append(str(unknown))
            self._answer(501, {"content-type": "text/plain"}, str(unknown).encode())
            return
        if not denied and query.get("ifGenerationMatch") == ["0"] and self._exists(*self._target(path, query, body)):
            message = "At least one of the pre-conditions you specified did not hold."
            self._answer(412, {"content-type": "application/json"}, json.dumps(
                {"error": {"code": 412, "message": message, "errors": [{"message": message, "domain": "global", "reason": "conditionNotMet"}]}}
            ).encode())
            return
        if denied:
            message = (
                f"{self.server.principal} does not have {denied} access to the Google Cloud Storage "
                f"{'bucket' if denied.startswith('storage.buckets') else 'object'}. Permission '{denied}' denied on resource (or it may not exist)."
            )
            self._answer(403, {"content-type": "application/json"}, json.dumps(
                {"error": {"code": 403, "message": message, "errors": [{"message": message, "domain": "global", "reason": "forbidden"}]}}
            ).encode())
            return
        connection = HTTPConnection(*self.server.upstream)
        headers = {name: value for name, value in self.headers.items() if name.lower() not in ("host", "content-length")}
        connection.request(self.command, self.path, body=body, headers={**headers, "Content-Length": str(len(body))})
        response = connection.getresponse()
        data = response.read()
        self._answer(response.status, dict(response.getheaders()), data)
        connection.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def _denied(self, method: str, path: str, query: dict, body: bytes) -> str | None:
        """The first permission the request needs and the principal lacks."""
        if method == "PUT" and "upload_id" in query:
            return None  # a chunk of a resumable upload: checked when the upload was started
        for verb, pattern, permission in _PERMISSIONS:
            match = pattern.match(path)
            if verb == method and match:
                needed = [permission]
                if permission == "storage.objects.create" and self._exists(*self._target(path, query, body)):
                    needed.append("storage.objects.delete")  # replacing an object deletes the old one
                return next((need for need in needed if need not in self.server.granted()), None)
        raise LookupError(f"the IAM proxy does not know which permission {method} {path} needs")

    @staticmethod
    def _target(path: str, query: dict, body: bytes) -> tuple[str | None, str | None]:
        """(bucket, object name) an upload or compose writes, when the request names them."""
        match = re.match(r"(/upload)?" + _BUCKET + r"(/o/(?P<object>[^/?]+))?", path)
        if match is None:
            return None, None
        name = match["object"] or (query.get("name") or [None])[0] or _upload_name(body)
        return unquote(match["bucket"]), name and unquote(name)

    def _exists(self, bucket: str | None, name: str | None) -> bool:
        if not (bucket and name):
            return False
        connection = HTTPConnection(*self.server.upstream)
        connection.request("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
        exists = connection.getresponse().status == 200
        connection.close()
        return exists

    def _answer(self, status: int, headers: dict, data: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def _upload_name(body: bytes) -> str | None:
    """The object name in the JSON metadata part of a multipart or resumable upload."""
    match = re.search(rb'"name":\s*"((?:[^"\\]|\\.)*)"', body)
    return json.loads(b'"' + match[1] + b'"') if match else None


class IamStorage:
    """The strict emulator: `grant(*roles)` sets the roles of the one principal every request comes from;
    a request the proxy cannot map to a permission is answered 501 and fails the test at its end."""

    def __init__(self, server: ThreadingHTTPServer, roles: set[str]):
        self.server, self.roles = server, roles
        self.url = f"http://127.0.0.1:{server.server_address[1]}"

    def grant(self, *roles: str) -> None:
        unknown = [role for role in roles if role not in STORAGE_ROLES]
        if unknown:
            raise ValueError(f"unknown roles {unknown}")
        self.roles.clear()
        self.roles.update(roles)


def emulator_bucket(gcs_emulator: str) -> str:
    """A new bucket created on the emulator itself (bucket creation is an administrator's job, not the project's)."""
    name = f"test-{uuid.uuid4().hex[:16]}"
    storage.Client(project=EMULATOR_PROJECT, client_options={"api_endpoint": gcs_emulator}).create_bucket(name)
    return name
