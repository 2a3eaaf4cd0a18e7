"""Bucket contract on a local folder and on the GCS emulator, plus each implementation's failure modes."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import google.auth.transport.requests
import pytest

from energy_assets.settings import GCS_SERVICE_ACCOUNT_JSON_PATH as SERVICE_ACCOUNT_VARIABLE
from energy_assets.storage.buckets import GCSBucket, LocalBucket, cannot_heal, deployment_bucket
from energy_assets_tests.gcs_emulator import emulator_bucket

READ_WRITE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
KEY = "energy_assets/energy_forecasts/2023-01-14-23:00.parquet"


def test_round_trip_keeps_colons_and_returns_uri(any_bucket):
    uri = any_bucket.write_bytes(KEY, b"first")
    assert uri == any_bucket.uri(KEY)
    assert uri.endswith("/energy_assets/energy_forecasts/2023-01-14-23:00.parquet")
    assert uri.startswith("file:///" if isinstance(any_bucket, LocalBucket) else "gs://")
    assert any_bucket.read_bytes(KEY) == b"first"
    assert any_bucket.exists(KEY)


def test_rewrite_replaces_the_object(any_bucket):
    any_bucket.write_bytes(KEY, b"first")
    any_bucket.write_bytes(KEY, b"second, longer")
    assert any_bucket.read_bytes(KEY) == b"second, longer"
    assert any_bucket.list_keys("energy_assets/") == [KEY]


def test_list_keys_filters_by_prefix_and_sorts(any_bucket):
    for key in ["a/x/2.parquet", "a/x/1.parquet", "a/xy.parquet", "b/1.parquet"]:
        any_bucket.write_bytes(key, b"")
    assert any_bucket.list_keys("a/x/") == ["a/x/1.parquet", "a/x/2.parquet"]
    assert any_bucket.list_keys("a/x") == ["a/x/1.parquet", "a/x/2.parquet", "a/xy.parquet"]
    assert any_bucket.list_keys("c/") == []


def test_missing_object_names_its_uri(any_bucket):
    any_bucket.write_bytes("other.parquet", b"")
    with pytest.raises(FileNotFoundError, match=f"no object at {any_bucket.uri(KEY)}"):
        any_bucket.read_bytes(KEY)
    assert not any_bucket.exists(KEY)


def test_write_many_writes_each_object_and_returns_the_uris_in_order(any_bucket):
    objects = [(f"many/utc_hour={hour}/part-0.parquet", f"hour {hour}".encode()) for hour in range(24)]
    objects.append((objects[0][0], b"hour 0 again"))  # a key given twice: the later bytes win
    uris = any_bucket.write_many(objects)
    assert uris == [any_bucket.uri(key) for key, _ in objects]
    assert {key: any_bucket.read_bytes(key) for key, _ in objects} == {**dict(objects)}
    assert any_bucket.read_bytes(objects[0][0]) == b"hour 0 again"


def test_local_write_many_raises_the_first_error_and_keeps_what_was_written(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    bucket.write_bytes("many/3/part-0.parquet", b"previous")
    (tmp_path / "many" / "5").write_bytes(b"a file where the folder of object 5 belongs")
    objects = [(f"many/{hour}/part-0.parquet", f"hour {hour}".encode()) for hour in range(24)]
    with pytest.raises(OSError):
        bucket.write_many(objects)
    assert [bucket.read_bytes(key) for key, _ in objects[:5]] == [data for _, data in objects[:5]]
    assert not any(path.name.startswith(".") for path in tmp_path.rglob("*"))


def test_write_many_checks_every_key_before_writing_any(any_bucket):
    objects = [(f"many/{hour}/part-0.parquet", b"x") for hour in range(24)] + [("many/../escape", b"x")]
    with pytest.raises(ValueError, match="invalid object key 'many/../escape'"):
        any_bucket.write_many(objects)
    assert any_bucket.list_keys("many/") == []


def _hours(count: int, text: str = "hour") -> list[tuple[str, bytes]]:
    return [(f"many/utc_hour={hour}/part-0.parquet", f"{text} {hour}".encode()) for hour in range(count)]


def test_gcs_write_many_uploads_several_objects_at_a_time(gcs_bucket, strict_gcs):
    # On GCS every upload waits on a round trip: one after another, a 720-hour backfill waited on 720 in turn.
    strict_gcs.traffic.reset(delay=lambda: 0.02)
    gcs_bucket.write_many(_hours(24))
    assert strict_gcs.traffic.most_in_flight > 1
    assert strict_gcs.traffic.most_in_flight <= GCSBucket.writes_in_flight


def test_gcs_write_many_keeps_every_object_and_their_order_when_uploads_end_out_of_order(gcs_bucket, strict_gcs):
    jitter = random.Random(0)
    strict_gcs.traffic.reset(delay=lambda: jitter.uniform(0.0, 0.03))
    objects = _hours(72)
    objects += [(key, data + b" again") for key, data in objects[10:14]]  # keys given twice: the later bytes win

    uris = gcs_bucket.write_many(objects)

    assert uris == [gcs_bucket.uri(key) for key, _ in objects]
    assert gcs_bucket.read_many([key for key, _ in objects]) == dict(objects)
    assert gcs_bucket.list_keys("many/") == sorted(dict(objects))


def test_gcs_write_many_raises_the_earliest_refused_object_after_the_uploads_in_flight(iam_gcs, gcs_emulator):
    bucket = GCSBucket(bucket_name=emulator_bucket(gcs_emulator))
    objects = _hours(120)
    iam_gcs.grant("roles/storage.objectUser")
    bucket.write_many(_hours(120, "previous")[40:41] + _hours(120, "previous")[90:91])
    iam_gcs.grant("roles/storage.objectCreator")  # may create objects, not replace them
    iam_gcs.traffic.reset(delay=lambda: 0.03)

    with pytest.raises(PermissionError, match=f"write {bucket.uri(objects[40][0])}: .*lacks storage.objects.delete") as refused:
        bucket.write_many(objects)
    in_flight_at_the_error = iam_gcs.traffic.in_flight

    iam_gcs.grant("roles/storage.objectViewer")
    stored = bucket.read_many(bucket.list_keys("many/"))
    assert in_flight_at_the_error == 0
    assert cannot_heal(refused.value)
    # Every object before the refused one is written, the refused ones keep their bytes, nothing else is there.
    assert {key: stored[key] for key, _ in objects[:40]} == dict(objects[:40])
    assert stored[objects[40][0]] == b"previous 40" and stored[objects[90][0]] == b"previous 90"
    assert set(stored.items()) <= set(objects) | {(objects[40][0], b"previous 40"), (objects[90][0], b"previous 90")}
    # No upload starts once one failed: the objects after the refused one are the few already on their way.
    assert len(stored) < 40 + 1 + 40


def test_gcs_write_many_creates_one_file_system_for_all_its_threads(gcs_bucket, monkeypatch):
    import gcsfs

    created = []

    class CountedFileSystem(gcsfs.GCSFileSystem):
        def __init__(self, *args, **kwargs):
            created.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(gcsfs, "GCSFileSystem", CountedFileSystem)
    fresh = GCSBucket(bucket_name=gcs_bucket.bucket_name, project=gcs_bucket.project)
    fresh.write_many(_hours(24))
    assert len(created) == 1
    assert len(fresh.list_keys("many/")) == 24


@pytest.mark.parametrize("key", ["../escape", "a//b", "/abs", "a/.hidden", "a/./b"])
def test_local_rejects_keys_outside_or_hidden(tmp_path, key):
    with pytest.raises(ValueError, match="invalid object key"):
        LocalBucket(root_dir=str(tmp_path)).write_bytes(key, b"x")


def test_local_failed_write_keeps_previous_object_and_leaves_no_temporary(tmp_path, monkeypatch):
    bucket = LocalBucket(root_dir=str(tmp_path))
    bucket.write_bytes(KEY, b"previous")

    def fail_replace(source, target):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="disk full"):
        bucket.write_bytes(KEY, b"new")
    assert bucket.read_bytes(KEY) == b"previous"
    assert os.listdir(tmp_path / "energy_assets" / "energy_forecasts") == ["2023-01-14-23:00.parquet"]


CRASH_MID_WRITE = """
import os, sys
from energy_assets.storage.buckets import LocalBucket
os.fsync = lambda descriptor: os._exit(3)  # the process dies after writing, before the rename
LocalBucket(root_dir=sys.argv[1]).write_bytes(sys.argv[2], b"half-written new bytes")
"""


def test_local_crash_mid_write_keeps_previous_object_and_hides_the_temporary(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    bucket.write_bytes(KEY, b"previous")
    crashed = subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(tmp_path), KEY], check=False)
    assert crashed.returncode == 3
    leftovers = os.listdir(tmp_path / "energy_assets" / "energy_forecasts")
    assert len(leftovers) == 2, "the crashed write should have left its temporary file behind"
    assert bucket.read_bytes(KEY) == b"previous"
    assert bucket.list_keys("energy_assets/") == [KEY]


def test_gcs_missing_bucket_is_named(gcs_emulator_env):
    bucket = GCSBucket(bucket_name="never-created")
    for attempt in (lambda: bucket.write_bytes(KEY, b"x"), lambda: bucket.read_bytes(KEY), lambda: bucket.list_keys("")):
        with pytest.raises(FileNotFoundError, match="GCS bucket 'never-created' does not exist"):
            attempt()


@pytest.fixture
def no_emulator(monkeypatch):
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)


def test_gcs_bad_service_account_path_names_the_variable(no_emulator, tmp_path):
    bucket = GCSBucket(bucket_name="b", service_account_json_path=str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match=f"missing.json.*does not exist: check {SERVICE_ACCOUNT_VARIABLE}"):
        bucket.list_keys("")


def test_gcs_invalid_service_account_file_names_the_variable_not_the_key(no_emulator, tmp_path):
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps({"type": "service_account", "private_key": "SECRET-KEY-MATERIAL"}))
    bucket = GCSBucket(bucket_name="b", service_account_json_path=str(key_file))
    with pytest.raises(ValueError, match=f"not a valid service-account JSON key.*{SERVICE_ACCOUNT_VARIABLE}") as error:
        bucket.read_bytes(KEY)
    assert "SECRET" not in str(error.value)


def test_gcs_without_any_credentials_says_how_to_provide_them(no_emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(PermissionError, match=f"cannot authenticate.*{SERVICE_ACCOUNT_VARIABLE}"):
        GCSBucket(bucket_name="b").list_keys("")


def test_the_readers_file_system_explains_credentials_as_the_client_does(no_emulator, tmp_path, monkeypatch):
    missing = GCSBucket(bucket_name="b", service_account_json_path=str(tmp_path / "missing.json"))
    with pytest.raises(FileNotFoundError, match=f"missing.json.*does not exist: check {SERVICE_ACCOUNT_VARIABLE}"):
        missing.arrow_filesystem()
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "absent.json"))
    with pytest.raises(PermissionError, match=f"cannot authenticate.*{SERVICE_ACCOUNT_VARIABLE}"):
        GCSBucket(bucket_name="b").arrow_filesystem()


def test_gcs_client_is_created_on_first_use_only(no_emulator, tmp_path):
    bucket = GCSBucket(bucket_name="b", service_account_json_path=str(tmp_path / "missing.json"))
    assert bucket.uri(KEY) == f"gs://b/{KEY}"  # building and naming need no credentials


class _Forbidding(BaseHTTPRequestHandler):
    """Answers every request like GCS does when the principal lacks a role."""

    def _forbid(self):
        body = json.dumps({"error": {"code": 403, "message": "caller lacks storage.objects access"}}).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _forbid

    def log_message(self, *args):
        pass


@pytest.fixture
def forbidding_storage(monkeypatch):
    server = HTTPServer(("127.0.0.1", 0), _Forbidding)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server.server_address[1]}")
    yield
    server.shutdown()
    server.server_close()


def test_gcs_missing_permission_names_the_role(forbidding_storage):
    bucket = GCSBucket(bucket_name="locked")
    with pytest.raises(PermissionError, match="permission denied to write gs://locked/.*storage.objects.create.*Storage Object User"):
        bucket.write_bytes(KEY, b"x")
    with pytest.raises(PermissionError, match="storage.objects.list.*Storage Object Viewer"):
        bucket.list_keys("")


def test_the_deployment_picks_the_bucket(isolated_state, monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_BUCKET_NAME", "forecasts")
    local = deployment_bucket()
    assert isinstance(local, LocalBucket) and local.root_dir == str(isolated_state / "bucket")

    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    monkeypatch.setenv(SERVICE_ACCOUNT_VARIABLE, "/secrets/key.json")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "energy")
    assert deployment_bucket() == GCSBucket(
        bucket_name="forecasts", project="energy", service_account_json_path="/secrets/key.json"
    )


def test_prod_without_a_bucket_name_names_the_variable_at_first_use(monkeypatch):
    monkeypatch.setenv("ENERGY_ASSETS_DEPLOYMENT", "prod")
    monkeypatch.delenv("GOOGLE_CLOUD_BUCKET_NAME", raising=False)
    bucket = deployment_bucket()
    with pytest.raises(ValueError, match="GOOGLE_CLOUD_BUCKET_NAME"):
        bucket.list_keys("energy_assets/")


def test_local_rewrite_after_a_crash_removes_the_crashed_temporary_and_keeps_a_live_one(tmp_path):
    bucket = LocalBucket(root_dir=str(tmp_path))
    bucket.write_bytes(KEY, b"previous")
    crashed = subprocess.run([sys.executable, "-c", CRASH_MID_WRITE, str(tmp_path), KEY], check=False)
    assert crashed.returncode == 3
    folder = tmp_path / "energy_assets" / "energy_forecasts"
    # A writer that is still running (this process) owns its temporary: it must survive.
    live = folder / f".2023-01-14-23:00.parquet.{os.getpid()}.inflight.partial"
    live.write_bytes(b"being written")

    bucket.write_bytes(KEY, b"re-run")

    assert sorted(os.listdir(folder)) == sorted(["2023-01-14-23:00.parquet", live.name])
    assert bucket.read_bytes(KEY) == b"re-run"


@pytest.mark.parametrize("prefix", ["../", "../../..", "a/../../", "/etc/", "a//b", "a/.hidden/"])
def test_local_listing_refuses_a_prefix_leaving_the_bucket(tmp_path, prefix):
    (tmp_path / "outside.txt").write_text("not in the bucket")
    bucket = LocalBucket(root_dir=str(tmp_path / "bucket"))
    bucket.write_bytes(KEY, b"x")
    with pytest.raises(ValueError, match=f"invalid prefix {prefix!r}"):
        bucket.list_keys(prefix)


def test_every_client_s_service_account_credentials_carry_the_storage_scope(no_emulator, service_account_key, oauth_token_endpoint):
    # Google refuses a token request without a scope (invalid_scope); storage.Client adds its scopes to the
    # credentials it is given, gcsfs uses them as they are: the readers failed while the writes worked.
    bucket = GCSBucket(bucket_name="b", project="energy-assets-test", service_account_json_path=str(service_account_key))
    filesystem, _ = bucket.arrow_filesystem()
    clients = {
        "gcsfs (the file layer, the readers' pyarrow file system)": filesystem.handler.fs.credentials.credentials,
        "google-cloud-storage (the compute logs)": bucket.client()._credentials,
    }

    for client, credentials in clients.items():
        credentials.refresh(google.auth.transport.requests.Request())
        assert credentials.token and oauth_token_endpoint.grants[-1]["scope"] == READ_WRITE_SCOPE, client


def test_a_missing_object_is_told_from_a_missing_bucket_with_object_roles_alone(iam_gcs, gcs_emulator):
    # bucket.exists() needs storage.buckets.get, which no object role has: its 403 escaped as a retryable error.
    iam_gcs.grant("roles/storage.objectViewer")
    bucket = GCSBucket(bucket_name=emulator_bucket(gcs_emulator))

    with pytest.raises(FileNotFoundError, match=f"no object at {bucket.uri(KEY)}"):
        bucket.read_bytes(KEY)
    with pytest.raises(FileNotFoundError, match="GCS bucket 'never-created' does not exist"):
        GCSBucket(bucket_name="never-created").read_bytes(KEY)


def test_a_missing_permission_is_named_and_cannot_heal(iam_gcs, gcs_emulator):
    bucket = GCSBucket(bucket_name=emulator_bucket(gcs_emulator))
    iam_gcs.grant("roles/storage.objectUser")
    bucket.write_bytes(KEY, b"first")

    iam_gcs.grant("roles/storage.objectCreator")  # may create objects, not replace them
    with pytest.raises(PermissionError, match="lacks storage.objects.delete on bucket .*Storage Object User") as replacing:
        bucket.write_bytes(KEY, b"second")
    iam_gcs.grant()
    with pytest.raises(PermissionError, match="lacks storage.objects.get") as reading:
        bucket.read_bytes(KEY)

    assert cannot_heal(replacing.value) and cannot_heal(reading.value)
