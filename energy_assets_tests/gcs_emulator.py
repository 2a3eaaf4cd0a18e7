"""Fixtures: an in-memory GCS emulator on 127.0.0.1 for the test session, behind a proxy as strict as GCS
(IAM roles, generation preconditions) that can also answer as late as GCS does and counts the requests in
flight (`strict_gcs.traffic`), and a fresh bucket per test; Google's OAuth token endpoint as strict as the
real one, and a service-account key that uses it.

Use them by importing: `from energy_assets_tests.gcs_emulator import any_bucket, gcs_bucket, gcs_emulator, gcs_emulator_env`.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gcp_storage_emulator.server import Server, create_server
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


def start_emulator() -> tuple[Server, str]:
    """An emulator serving from memory on a free loopback port, and its address (`http://127.0.0.1:<port>`)."""
    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """The emulator's address, serving from memory until the session ends."""
    server, url = start_emulator()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def strict_gcs(gcs_emulator: str) -> Iterator[IamStorage]:
    """The emulator behind a loopback proxy that answers as GCS does where the emulator is lenient: Cloud
    Storage's permission checks for the roles granted, and generation preconditions (ifGenerationMatch=0)."""
    roles: set[str] = set()
    server = start_proxy(_IamProxy, gcs_emulator)
    server.principal = f"energy-assets@{EMULATOR_PROJECT}.iam.gserviceaccount.com"
    server.granted = lambda: frozenset().union(*(STORAGE_ROLES[role] for role in roles))
    server.unknown = []
    try:
        yield IamStorage(server, roles)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def gcs_emulator_env(strict_gcs: IamStorage, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points google-cloud-storage and gcsfs at the strict emulator for this test only, every role granted."""
    strict_gcs.grant("roles/storage.admin")
    strict_gcs.traffic.reset()
    monkeypatch.setenv(EMULATOR_VARIABLE, strict_gcs.url)
    yield strict_gcs.url
    strict_gcs.traffic.reset()
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


class LoopbackProxy(BaseHTTPRequestHandler):
    """Forwards each request to `server.upstream` (the emulator) and its answer back, `server.traffic.delay()`
    seconds late, as GCS answers a request only after a round trip; `server.traffic` counts the requests in flight."""

    protocol_version = "HTTP/1.1"
    # An answer goes out as headers, then data: with Nagle's algorithm the data would wait for the client's
    # delayed acknowledgement of the headers (40 ms on Linux), a latency of the proxy's own.
    disable_nagle_algorithm = True

    def _serve(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.traffic.request():
            status, headers, data = self._answer_for(body)
        # Sent after the request left the count: a client holding its answer has no request of its own in flight.
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    def _answer_for(self, body: bytes) -> tuple[int, dict, bytes]:
        return self._forwarded(body)

    def _forwarded(self, body: bytes) -> tuple[int, dict, bytes]:
        """The emulator's (status, headers, data) for this request."""
        headers = {name: value for name, value in self.headers.items() if name.lower() not in ("host", "content-length")}
        with self._upstream() as connection:
            connection.request(self.command, self.path, body=body, headers={**headers, "Content-Length": str(len(body))})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()

    @contextmanager
    def _upstream(self) -> Iterator[HTTPConnection]:
        """A connection to the emulator, one at a time: it serves one request after another, and more connections
        at once than its listen backlog (5) would be reset."""
        with self.server.upstream_lock:
            connection = HTTPConnection(*self.server.upstream)
            try:
                yield connection
            finally:
                connection.close()

    def log_message(self, *args):
        pass


class Traffic:
    """The requests a `LoopbackProxy` serves: each waits `delay()` seconds (none by default) before it is answered;
    `in_flight` counts those not yet answered, `most_in_flight` the most there were at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self, delay: Callable[[], float] = lambda: 0.0) -> None:
        with self._lock:
            self.delay, self.in_flight, self.most_in_flight = delay, 0, 0

    @contextmanager
    def request(self) -> Iterator[None]:
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay())
            yield
        finally:
            with self._lock:
                self.in_flight -= 1


class _ProxyServer(ThreadingHTTPServer):
    # socketserver listens with a backlog of 5; a client opening more connections at once than that would wait
    # for its SYN to be sent again (1 s), where GCS accepts them all.
    request_queue_size = 128


def start_proxy(handler: type[LoopbackProxy], upstream: str) -> ThreadingHTTPServer:
    """A proxy on a free loopback port, serving in a thread of its own, in front of the emulator at `upstream`
    (`http://127.0.0.1:<port>`); stop it with `shutdown()` and `server_close()`."""
    server = _ProxyServer(("127.0.0.1", 0), handler)
    server.upstream = ("127.0.0.1", int(upstream.rsplit(":", 1)[1]))
    server.upstream_lock = threading.Lock()
    server.traffic = Traffic()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _IamProxy(LoopbackProxy):
    """The emulator behind Cloud Storage's permission checks: a request the principal's roles do not allow
    is answered 403 as GCS answers it; anything else is forwarded."""

    def _answer_for(self, body: bytes) -> tuple[int, dict, bytes]:
        path, _, raw_query = self.path.partition("?")
        query = parse_qs(raw_query)
        try:
            denied = self._denied(self.command, path, query, body)
        except LookupError as unknown:
            self.server.unknown.append(str(unknown))
            return 501, {"content-type": "text/plain"}, str(unknown).encode()
        if not denied and query.get("ifGenerationMatch") == ["0"] and self._exists(*self._target(path, query, body)):
            message = "At least one of the pre-conditions you specified did not hold."
            return 412, {"content-type": "application/json"}, json.dumps(
                {"error": {"code": 412, "message": message, "errors": [{"message": message, "domain": "global", "reason": "conditionNotMet"}]}}
            ).encode()
        if denied:
            message = (
                f"{self.server.principal} does not have {denied} access to the Google Cloud Storage "
                f"{'bucket' if denied.startswith('storage.buckets') else 'object'}. Permission '{denied}' denied on resource (or it may not exist)."
            )
            return 403, {"content-type": "application/json"}, json.dumps(
                {"error": {"code": 403, "message": message, "errors": [{"message": message, "domain": "global", "reason": "forbidden"}]}}
            ).encode()
        return self._forwarded(body)

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
        with self._upstream() as connection:
            connection.request("GET", f"/storage/v1/b/{quote(bucket, safe='')}/o/{quote(name, safe='')}")
            return connection.getresponse().status == 200


def _upload_name(body: bytes) -> str | None:
    """The object name in the JSON metadata part of a multipart or resumable upload."""
    match = re.search(rb'"name":\s*"((?:[^"\\]|\\.)*)"', body)
    return json.loads(b'"' + match[1] + b'"') if match else None


class IamStorage:
    """The strict emulator: `grant(*roles)` sets the roles of the one principal every request comes from;
    a request the proxy cannot map to a permission is answered 501 and fails the test at its end."""

    def __init__(self, server: ThreadingHTTPServer, roles: set[str]):
        self.server, self.roles, self.url, self.traffic = server, roles, server.url, server.traffic

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
