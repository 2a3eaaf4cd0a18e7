"""Buckets: flat key -> bytes storage in a local folder or in Google Cloud Storage (no Dagster)."""

from __future__ import annotations

import errno
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass, field
from urllib.parse import quote

import google.auth
from google.api_core.exceptions import Forbidden, NotFound
from google.auth.exceptions import DefaultCredentialsError, RefreshError
from google.cloud import storage
from google.oauth2 import service_account
from pyarrow import fs as arrow_fs

from energy_assets import settings
from energy_assets.storage.files import write_atomically

# A file being written is hidden (leading dot) and ends with this; keys can never look like that.
_PARTIAL_SUFFIX = ".partial"
_READ_WRITE_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"


def check_prefix(prefix: str) -> None:
    """`ValueError` unless every folder of the listing prefix `prefix` is a plain name: '..' would walk
    outside the bucket (the rule of `settings.is_object_prefix`)."""
    if not settings.is_object_prefix(prefix, partial_last=True):
        raise ValueError(f"invalid prefix {prefix!r}: prefixes are '/'-separated names, none empty or starting with '.'")


class Bucket(ABC):
    """Flat key -> bytes storage where a written object appears whole or not at all."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> str:
        """Write one object atomically and return its URI."""

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The bytes of one object; `FileNotFoundError` naming the URI when it is absent."""

    @abstractmethod
    def list_keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, sorted."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """Where the object with `key` lives (`file://...` or `gs://...`)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove one object; `FileNotFoundError` naming the URI when it is absent."""

    @abstractmethod
    def arrow_filesystem(self) -> tuple[arrow_fs.FileSystem, str]:
        """The bucket as a pyarrow file system and the path of its root in it, for pyarrow datasets."""

    def exists(self, key: str) -> bool:
        """Whether an object with `key` exists."""
        return key in self.list_keys(key)


@dataclass(frozen=True)
class LocalBucket(Bucket):
    """A folder on the local disk; each key is a file path relative to `root_dir`."""

    root_dir: str

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write through a hidden temporary file in the same folder, fsync it, then rename over the key."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda file: file.write(data), suffix=_PARTIAL_SUFFIX)
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        """The file's bytes; `FileNotFoundError` naming the URI when it is absent."""
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object at {self.uri(key)}")
        return path.read_bytes()

    def list_keys(self, prefix: str) -> list[str]:
        """Every key starting with `prefix`, sorted; files still being written are never listed."""
        root = Path(self.root_dir).resolve()
        check_prefix(prefix)
        folders = prefix.split("/")[:-1]
        # Only walk the deepest folder the prefix names in full.
        folder = root.joinpath(*folders)
        if not folder.is_dir():
            return []
        keys = (
            path.relative_to(root).as_posix()
            for path in folder.rglob("*")
            if path.is_file() and not path.name.startswith(".")
        )
        return sorted(key for key in keys if key.startswith(prefix))

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Unlink the file."""
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"no object at {self.uri(key)}")
        path.unlink()

    def arrow_filesystem(self) -> tuple[arrow_fs.FileSystem, str]:
        """The local file system and the folder's absolute path."""
        return arrow_fs.LocalFileSystem(), Path(self.root_dir).resolve().as_posix()

    def uri(self, key: str) -> str:
        """`file://` and the absolute path; also names folders (`prefix/`). `=` and `:` are kept (RFC 3986 allows them), so hive names stay readable."""
        return "file://" + quote(f"{Path(self.root_dir).resolve().as_posix()}/{key}", safe="/:=")

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") or part.startswith(".") for part in parts):
            raise ValueError(
                f"invalid object key {key!r}: keys are '/'-separated names, none empty or starting with '.'"
            )
        return Path(self.root_dir).resolve().joinpath(*parts)


@dataclass
class GCSBucket(Bucket):
    """A Google Cloud Storage bucket; a write is one single-request upload, which GCS makes atomic.

    Credentials: the service-account JSON file when `service_account_json_path` is set, else
    application default credentials. With `STORAGE_EMULATOR_HOST` set, the emulator is used
    with anonymous credentials. The client is created on first use, so building Definitions
    needs neither network nor credentials.
    """

    bucket_name: str
    project: str | None = None
    service_account_json_path: str | None = None
    _client: storage.Client | None = field(default=None, init=False, repr=False, compare=False)

    def write_bytes(self, key: str, data: bytes) -> str:
        """Upload one object in a single request; readers see the old object or the new one."""
        with self._explained("write", key):
            self._bucket().blob(key).upload_from_string(data, content_type="application/octet-stream")
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes; `FileNotFoundError` naming the URI when it is absent."""
        with self._explained("read", key):
            return self._bucket().blob(key).download_as_bytes()

    def list_keys(self, prefix: str) -> list[str]:
        """Every object name starting with `prefix`, sorted."""
        with self._explained("list", prefix):
            return sorted(blob.name for blob in self._storage_client().list_blobs(self.bucket_name, prefix=prefix))

    def exists(self, key: str) -> bool:
        """Whether the object exists (one metadata request)."""
        with self._explained("read", key):
            return self._bucket().blob(key).exists()

    def delete(self, key: str) -> None:
        """Delete the object (one request)."""
        with self._explained("delete", key):
            self._bucket().blob(key).delete()

    def arrow_filesystem(self) -> tuple[arrow_fs.FileSystem, str]:
        """gcsfs behind pyarrow's fsspec handler, with the same credentials (gcsfs, like the client, honours
        `STORAGE_EMULATOR_HOST`); gcsfs is imported here so that local reads never load it."""
        import gcsfs

        if os.environ.get(settings.STORAGE_EMULATOR_HOST):
            token = "anon"
        elif self.service_account_json_path:
            token = self._service_account_credentials()
        else:
            try:
                token, _ = google.auth.default(scopes=[_READ_WRITE_SCOPE])
            except DefaultCredentialsError as error:
                raise PermissionError(_credentials_help(f"no application default credentials ({error})")) from None
        filesystem = gcsfs.GCSFileSystem(project=self.project, token=token)
        return arrow_fs.PyFileSystem(arrow_fs.FSSpecHandler(filesystem)), self.bucket_name

    def uri(self, key: str) -> str:
        """`gs://<bucket>/<key>`."""
        return f"gs://{self.bucket_name}/{key}"

    def client(self) -> storage.Client:
        """The google-cloud-storage client on these credentials (the compute logs use it)."""
        return self._storage_client()

    def check_listable(self, prefix: str, purpose: str) -> None:
        """Whether the bucket exists and the credentials may list `prefix`: one listing, so neither
        `storage.buckets.get` nor an object under `prefix` is needed; errors say which is missing."""
        with self._explained("list", prefix, purpose):
            next(iter(self._storage_client().list_blobs(self.bucket_name, prefix=prefix, max_results=1)), None)

    def _bucket(self) -> storage.Bucket:
        return self._storage_client().bucket(self.bucket_name)

    def _storage_client(self) -> storage.Client:
        if not self.bucket_name:
            raise ValueError(f"no GCS bucket configured: set {settings.GCS_BUCKET_NAME}")
        if self._client is None:
            self._client = self._new_client()
        return self._client

    def _new_client(self) -> storage.Client:
        if os.environ.get(settings.STORAGE_EMULATOR_HOST):
            # google-cloud-storage talks to the emulator with anonymous credentials by itself.
            return storage.Client(project=self.project)
        if self.service_account_json_path:
            return storage.Client(project=self.project, credentials=self._service_account_credentials())
        try:
            return storage.Client(project=self.project)
        except DefaultCredentialsError as error:
            raise PermissionError(_credentials_help(f"no application default credentials ({error})")) from None

    def _service_account_credentials(self) -> service_account.Credentials:
        path = Path(self.service_account_json_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"service-account JSON file {str(path)!r} does not exist: "
                f"check {settings.GCS_SERVICE_ACCOUNT_JSON_PATH}"
            )
        try:
            # With their scope: storage.Client adds its own to what it is given, gcsfs does not, and Google
            # refuses a token request without one (invalid_scope).
            return service_account.Credentials.from_service_account_file(str(path), scopes=[_READ_WRITE_SCOPE])
        except (ValueError, KeyError) as error:
            # The parser's message names missing fields, never the key material.
            raise ValueError(
                f"{str(path)!r} is not a valid service-account JSON key ({type(error).__name__}: {error}): "
                f"check {settings.GCS_SERVICE_ACCOUNT_JSON_PATH}"
            ) from None

    @contextmanager
    def _explained(self, action: str, key: str, purpose: str | None = None) -> Iterator[None]:
        """Turn Google API errors into errors that say what is wrong and what to do."""
        try:
            yield
        except NotFound:
            if action != "list":
                # One listing tells a missing object from a missing bucket with the object roles alone;
                # bucket.exists() would need storage.buckets.get.
                self.check_listable(key, f"tell whether {self.uri(key)} or its bucket is missing")
                raise FileNotFoundError(f"no object at {self.uri(key)}") from None
            raise FileNotFoundError(
                f"GCS bucket {self.bucket_name!r} does not exist or is not visible to these credentials: "
                f"create it or fix {settings.GCS_BUCKET_NAME}"
            ) from None
        except Forbidden as error:
            raise PermissionError(_permission_help(self.bucket_name, f"{purpose or action} {self.uri(key)}", action, error.message)) from None
        except (DefaultCredentialsError, RefreshError) as error:
            raise PermissionError(_credentials_help(f"credentials rejected ({type(error).__name__})")) from None


def cannot_heal(error: BaseException) -> bool:
    """Whether a bucket call would fail the same way if retried: a bad key or setting, missing credentials
    or permission, a missing or read-only folder; network errors and GCS's 429/5xx are not among them."""
    if isinstance(error, (ValueError, PermissionError, FileNotFoundError, IsADirectoryError, NotADirectoryError)):
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
        f"grant it {role} there (README, 'What a first real run needs'; `energy-assets check-deployment` lists "
        f"what each process needs). GCS said: {answer}"
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
