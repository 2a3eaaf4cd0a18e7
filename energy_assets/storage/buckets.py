"""Buckets: the project's objects under one root of an fsspec file system (no Dagster).

One file layer for every process: the local file system for the embedded default, gcsfs for Google
Cloud Storage, `memory://` for tests. GCS is opened in one place with one credentials rule
(`gcs_credentials`), which the compute logs share. Writes are crash-safe: a local object is written
to a hidden temporary file and renamed over its key; a GCS upload is atomic by itself (readers see
the old object or the new one), and `create_only` makes it conditional on the object not existing
(generation precondition 0).
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pyarrow import fs as arrow_fs

from energy_assets import settings
from energy_assets.storage.files import WRITES_IN_FLIGHT, write_atomically, write_concurrently

# A file being written is hidden (leading dot) and ends with this; keys can never look like that.
_PARTIAL_SUFFIX = ".partial"
READ_WRITE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
READS_IN_FLIGHT = 16
_FILESYSTEM_CREATION = threading.Lock()


def check_prefix(prefix: str) -> None:
    """`ValueError` unless every folder of the listing prefix `prefix` is a plain name: '..' would walk
    outside the bucket (the rule of `settings.is_object_prefix`)."""
    if not settings.is_object_prefix(prefix, partial_last=True):
        raise ValueError(f"invalid prefix {prefix!r}: prefixes are '/'-separated names, none empty or starting with '.'")


class Bucket:
    """Flat key -> bytes storage where a written object appears whole or not at all, on an fsspec file system."""

    scheme: str  # of the URIs that name the objects
    writes_in_flight: int = WRITES_IN_FLIGHT  # objects `write_many` writes at once

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        """The fsspec file system holding the bucket (created on first use)."""
        raise NotImplementedError

    @property
    def root(self) -> str:
        """The bucket's root as a path of `filesystem`."""
        raise NotImplementedError

    def uri(self, key: str) -> str:
        """Where the object with `key` lives (`file://...`, `gs://...`, `memory://...`); also names folders."""
        return f"{self.scheme}://{self.root}/{key}"

    def write_bytes(self, key: str, data: bytes, create_only: bool = False) -> str:
        """Write one object atomically and return its URI; with `create_only`, `FileExistsError` instead of
        replacing an existing object."""
        path, filesystem = self._path(key), self.filesystem  # errors of either explain themselves
        with self._explained("write", key):
            filesystem.pipe_file(path, data, mode="create" if create_only else "overwrite")
        return self.uri(key)

    def write_many(self, objects: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write each (key, bytes) object as `write_bytes` does, `writes_in_flight` at a time, and return their
        URIs in order. A key given twice gets its later bytes (only those are written). Every key is checked before
        anything is written. Once a write fails no other starts; when those in flight have ended, the error of
        the earliest object that failed raises naming its key, and the objects written stay written."""
        for key, _ in objects:
            self._path(key)
        latest = dict(objects)
        written = write_concurrently(lambda item: self.write_bytes(*item), list(latest.items()), self.writes_in_flight)
        uris = dict(zip(latest, written))
        return [uris[key] for key, _ in objects]

    def read_bytes(self, key: str) -> bytes:
        """The bytes of one object; `FileNotFoundError` naming the URI when it is absent."""
        return self.read_many([key])[key]

    def read_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The bytes of each object, fetched concurrently where the file system can (gcsfs: one batch of requests)."""
        paths = {key: self._path(key) for key in keys}
        filesystem = self.filesystem
        # A few requests in flight hide most of the latency; fsspec's default (1,280) floods a small server.
        batch = {"batch_size": READS_IN_FLIGHT} if filesystem.async_impl else {}
        fetched = filesystem.cat(list(paths.values()), on_error="return", **batch) if keys else {}
        for key, path in paths.items():
            if isinstance(fetched[path], BaseException):
                with self._explained("read", key):
                    raise fetched[path]
        return {key: fetched[path] for key, path in paths.items()}

    def list_keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, sorted; hidden files (a local write in progress) are never listed."""
        check_prefix(prefix)
        folder = prefix.rpartition("/")[0]
        filesystem = self.filesystem
        with self._explained("list", prefix):
            found = filesystem.find(self._path(folder) if folder else self.root)
        start = len(self.root) + 1
        keys = (path[start:] for path in found)
        return sorted(key for key in keys if key.startswith(prefix) and not any(part.startswith(".") for part in key.split("/")))

    def list_folders(self, prefix: str) -> list[str]:
        """The names of the folders directly in the folder `prefix` (one listing, not recursive), sorted."""
        check_prefix(prefix)
        filesystem = self.filesystem
        with self._explained("list", prefix):
            try:
                entries = filesystem.ls(self._path(prefix.rstrip("/")) if prefix else self.root, detail=True)
            except FileNotFoundError:
                self.check_listable(prefix, f"list {self.uri(prefix)}")
                return []
        return sorted(entry["name"].rstrip("/").rpartition("/")[2] for entry in entries if entry["type"] == "directory")

    def exists(self, key: str) -> bool:
        """Whether an object with `key` exists."""
        path, filesystem = self._path(key), self.filesystem
        with self._explained("read", key):
            return filesystem.isfile(path)

    def delete(self, key: str) -> None:
        """Remove one object; `FileNotFoundError` naming the URI when it is absent."""
        path, filesystem = self._path(key), self.filesystem
        with self._explained("delete", key):
            filesystem.rm_file(path)

    def check_listable(self, prefix: str, purpose: str) -> None:
        """Whether the bucket exists and may be listed; errors say which is not so."""

    def arrow_filesystem(self) -> tuple[arrow_fs.FileSystem, str]:
        """The bucket as a pyarrow file system and the path of its root in it, for pyarrow datasets."""
        return arrow_fs.PyFileSystem(arrow_fs.FSSpecHandler(self.filesystem)), self.root

    def _path(self, key: str) -> str:
        """The file system path of `key`; `ValueError` unless it is '/'-separated plain names (no '..', nothing hidden)."""
        if any(part in ("", ".", "..") or part.startswith(".") for part in key.split("/")):
            raise ValueError(f"invalid object key {key!r}: keys are '/'-separated names, none empty or starting with '.'")
        return f"{self.root}/{key}"

    @contextmanager
    def _explained(self, action: str, key: str) -> Iterator[None]:
        """Errors of the file system as errors that say what is wrong and what to do."""
        try:
            yield
        except FileNotFoundError:
            raise FileNotFoundError(f"no object at {self.uri(key)}") from None


@dataclass(frozen=True, eq=True)
class LocalBucket(Bucket):
    """A folder on the local disk; each key is a file path relative to `root_dir`. Writes go through a hidden
    temporary file in the same folder, fsynced, then renamed over the key."""

    root_dir: str
    scheme = "file"

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        return LocalFileSystem()

    @property
    def root(self) -> str:
        return Path(self.root_dir).resolve().as_posix()

    def write_bytes(self, key: str, data: bytes, create_only: bool = False) -> str:
        path = Path(self._path(key))
        if create_only and path.exists():
            raise FileExistsError(f"{self.uri(key)} exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda file: file.write(data), suffix=_PARTIAL_SUFFIX)
        return self.uri(key)

    def arrow_filesystem(self) -> tuple[arrow_fs.FileSystem, str]:
        """pyarrow's own local file system (what it makes of fsspec's), and the folder's absolute path."""
        return arrow_fs.LocalFileSystem(), self.root

    def uri(self, key: str) -> str:
        """`file://` and the absolute path. `=` and `:` are kept (RFC 3986 allows them), so hive names stay readable."""
        return "file://" + quote(f"{self.root}/{key}", safe="/:=")


@dataclass(frozen=True, eq=True)
class MemoryBucket(Bucket):
    """A bucket in fsspec's process-wide `memory://` file system: for tests that need no disk or server."""

    name: str
    scheme = "memory"

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem("memory")

    @property
    def root(self) -> str:
        return f"/{self.name}"

    def uri(self, key: str) -> str:
        return f"memory:/{self.root}/{key}"


@dataclass
class GCSBucket(Bucket):
    """A Google Cloud Storage bucket through gcsfs, with the credentials `gcs_credentials` gives. The file system
    is created on first use, so building Definitions needs neither network nor credentials."""

    bucket_name: str
    project: str | None = None
    service_account_json_path: str | None = None
    _filesystem: Any = field(default=None, init=False, repr=False, compare=False)
    scheme = "gs"
    # An upload waits on a round trip (30-80 ms), not on a disk: at 80 ms 16 at a time hide it better than 8
    # (benchmarks/bucket_writes.py), and even at 30 ms (533 a second) they stay within the 1,000 object writes a
    # second a bucket takes before Cloud Storage has to scale it up (https://cloud.google.com/storage/docs/request-rate).
    writes_in_flight = 16

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        if not self.bucket_name:
            raise ValueError(f"no GCS bucket configured: set {settings.GCS_BUCKET_NAME}")
        # One file system however many threads ask at once (`write_many`'s): gcsfs runs every call of it as a
        # coroutine on fsspec's one event loop, all through one HTTP session.
        with _FILESYSTEM_CREATION:
            if self._filesystem is None:
                import gcsfs  # local deployments never load it

                credentials, project = gcs_credentials(self.service_account_json_path, self.project)
                # Listings are not cached: other processes write the bucket too.
                self._filesystem = gcsfs.GCSFileSystem(
                    project=project, token=credentials or "anon", use_listings_cache=False, skip_instance_cache=True
                )
        return self._filesystem

    @property
    def root(self) -> str:
        return self.bucket_name

    def client(self) -> Any:
        """A google-cloud-storage client on the same credentials (dagster-gcp's compute logs use one)."""
        from google.cloud import storage

        credentials, project = gcs_credentials(self.service_account_json_path, self.project)
        # With the emulator, google-cloud-storage picks anonymous credentials by itself.
        return storage.Client(project=project, credentials=credentials) if credentials else storage.Client(project=project)

    def check_listable(self, prefix: str, purpose: str) -> None:
        """One listing of at most one object: tells a missing bucket from a missing object with `storage.objects.list`
        alone (`bucket.exists()` would need `storage.buckets.get`, which no object role has)."""
        filesystem = self.filesystem
        with self._explained("list", prefix, purpose):
            filesystem.call("GET", "b/{}/o", self.bucket_name, prefix=prefix, maxResults=1, json_out=True)

    @contextmanager
    def _explained(self, action: str, key: str, purpose: str | None = None) -> Iterator[None]:
        from gcsfs.retry import HttpError
        from google.auth.exceptions import DefaultCredentialsError, RefreshError

        try:
            yield
        except FileNotFoundError:
            if action != "list" and purpose is None:
                self.check_listable(key, f"tell whether {self.uri(key)} or its bucket is missing")
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise FileNotFoundError(
                f"GCS bucket {self.bucket_name!r} does not exist or is not visible to these credentials: "
                f"create it or fix {settings.GCS_BUCKET_NAME}"
            ) from None
        except FileExistsError:
            raise FileExistsError(f"{self.uri(key)} exists (written since it was looked at); it was left as it is") from None
        except (HttpError, DefaultCredentialsError, RefreshError) as error:
            if isinstance(error, HttpError) and error.code != 401:
                raise
            raise PermissionError(_credentials_help(f"credentials rejected ({type(error).__name__}: {error})")) from None
        except OSError as error:
            if not str(error).startswith("Forbidden"):  # gcsfs's form of a 403
                raise
            raise PermissionError(_permission_help(self.bucket_name, f"{purpose or action} {self.uri(key)}", action, str(error))) from None


def gcs_credentials(service_account_json_path: str | None, project: str | None) -> tuple[Any, str | None]:
    """The credentials and project every GCS client of the project uses: none (anonymous) with the emulator
    (STORAGE_EMULATOR_HOST); else the service-account key at `service_account_json_path`; else application
    default credentials. Scoped for object reads and writes: Google refuses a token request without a scope
    (invalid_scope), and gcsfs, unlike storage.Client, adds none. The project defaults to the credentials'."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account

    if os.environ.get(settings.STORAGE_EMULATOR_HOST):
        return None, project or "energy-assets-emulator"
    if service_account_json_path:
        path = Path(service_account_json_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"service-account JSON file {str(path)!r} does not exist: check {settings.GCS_SERVICE_ACCOUNT_JSON_PATH}"
            )
        try:
            credentials = service_account.Credentials.from_service_account_file(str(path), scopes=[READ_WRITE_SCOPE])
        except (ValueError, KeyError) as error:
            # The parser's message names missing fields, never the key material.
            raise ValueError(
                f"{str(path)!r} is not a valid service-account JSON key ({type(error).__name__}: {error}): "
                f"check {settings.GCS_SERVICE_ACCOUNT_JSON_PATH}"
            ) from None
        return credentials, project or credentials.project_id
    try:
        credentials, default_project = google.auth.default(scopes=[READ_WRITE_SCOPE])
    except DefaultCredentialsError as error:
        raise PermissionError(_credentials_help(f"no application default credentials ({error})")) from None
    return credentials, project or default_project


def cannot_heal(error: BaseException) -> bool:
    """Whether a bucket call would fail the same way if retried: a bad key or setting, missing credentials
    or permission, a missing or read-only folder; network errors and GCS's 429/5xx are not among them."""
    if isinstance(error, (ValueError, PermissionError, FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)):
        return True
    return isinstance(error, OSError) and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM)


# The permission each action needs, when GCS's answer does not name it; and the least role that grants it.
_ACTION_PERMISSIONS = {"read": "storage.objects.get", "list": "storage.objects.list", "write": "storage.objects.create", "delete": "storage.objects.delete"}
_PERMISSION_ROLES = {
    "storage.objects.get": "Storage Object Viewer (roles/storage.objectViewer)",
    "storage.objects.list": "Storage Object Viewer (roles/storage.objectViewer)",
    "storage.objects.create": "Storage Object User (roles/storage.objectUser)",
    "storage.objects.delete": "Storage Object User (roles/storage.objectUser)",
}


def _permission_help(bucket_name: str, what: str, action: str, answer: str) -> str:
    """A 403 explained: the permission that was missing and a role on the bucket that grants it."""
    named = re.search(r"(storage\.[a-zA-Z]+\.[a-zA-Z]+)", answer or "")
    permission = named[1] if named else _ACTION_PERMISSIONS[action]
    role = _PERMISSION_ROLES.get(permission, "a role that has it")
    return (
        f"permission denied to {what}: the credentials' principal lacks {permission} on bucket {bucket_name!r}; "
        f"grant it {role} there (docs/production.md, 'What a first real run needs'; `energy-assets check-deployment` lists "
        f"what each process needs). GCS said: {answer.strip()}"
    )


def _credentials_help(problem: str) -> str:
    return (
        f"cannot authenticate to Google Cloud Storage: {problem}; set {settings.GCS_SERVICE_ACCOUNT_JSON_PATH} to a "
        "service-account JSON key file, or run `gcloud auth application-default login`"
    )


def deployment_bucket() -> Bucket:
    """The bucket of the deployment the environment selects: a folder under the state directory, or GCS."""
    if settings.deployment_name() == "local":
        return LocalBucket(root_dir=str(settings.state_dir() / "bucket"))
    return GCSBucket(
        bucket_name=settings.text(settings.GCS_BUCKET_NAME, ""),
        project=settings.text(settings.GCS_PROJECT),
        service_account_json_path=settings.text(settings.GCS_SERVICE_ACCOUNT_JSON_PATH),
    )
