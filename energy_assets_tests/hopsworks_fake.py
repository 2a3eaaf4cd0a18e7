"""An on-disk fake of the Hopsworks 5.2 SDK surface the adapters call, keeping the SDK's semantics.

Every fake method checks its arguments against the real SDK method's signature, so an adapter
cannot call a parameter the SDK lacks. Semantics kept from hopsworks 5.2.1:
- `get_feature_group`, `get_feature_view`, `get_model` return None when absent (the SDK catches the
  404); without a version they warn and mean version 1.
- `get_or_create_feature_group` is lazy: nothing is stored until the first `insert`.
- `insert` is asynchronous unless `write_options={"wait_for_job": True}` or `wait=True`: rows land
  in a queued job and become readable only when jobs run (`FakeHopsworks.run_pending_jobs`).
  Jobs upsert on primary key + event time, the key of the SDK's merge.
- Features get the offline types the SDK derives (int8 -> int); later inserts must match them.
- `get_batch_data` reads start_time <= event time < end_time (documented in the SDK), returns
  timestamps tz-naive UTC in no particular order, and leaves out primary key and event time
  unless asked for.
- `create_feature_view` of an existing name and version fails like the backend does.
- `Model.save` numbers versions highest + 1, copies the files and refuses an existing version.
State lives under one folder, so fakes built on the same folder share one backend.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import hopsworks
import pandas as pd
import pyarrow as pa
import requests
from hopsworks.client.exceptions import FeatureStoreException, ProjectException, RestAPIError
from hopsworks_common import util as sdk_util
from hopsworks_common.core.type_systems import _convert_pandas_dtype_to_offline_type
from hsfs.feature_group import FeatureGroup, FeatureGroupBase
from hsfs.feature_store import FeatureStore
from hsfs.feature_view import FeatureView
from hsml.client.exceptions import ModelRegistryException
from hsml.model import Model
from hsml.model_registry import ModelRegistry
from hsml.python import signature as python_signature
from hopsworks_common.project import Project

from energy_assets.resources.hopsworks import HopsworksFeatureStore, HopsworksModelRegistry

FAKE_API_KEY = "fake-hopsworks-api-key-0123456789"
FAKE_PROJECT = "energy_assets_test"
FAKE_HOST = "hopsworks.test"

# Offline (Hive) types the fake can hand back, as pandas dtypes of a python-engine read.
OFFLINE_DTYPES = {"int": "int32", "bigint": "int64", "double": "float64", "float": "float32", "timestamp": "datetime64[us]"}


def mirrors(real: Callable) -> Callable[[Callable], Callable]:
    """Make a fake method accept exactly the arguments the real SDK function or method accepts."""
    signature = inspect.signature(real)
    real_is_method = next(iter(signature.parameters), None) == "self"

    def decorate(fake: Callable) -> Callable:
        @functools.wraps(fake)
        def checked(fake_self: Any, *args: Any, **kwargs: Any) -> Any:
            # TypeError for a parameter the SDK does not have.
            signature.bind(*((fake_self,) if real_is_method else ()), *args, **kwargs)
            return fake(fake_self, *args, **kwargs)

        return checked

    return decorate


def rest_api_error(status: int, message: str, path: str) -> RestAPIError:
    """The SDK's RestAPIError as the backend would cause it."""
    response = requests.Response()
    response.status_code = status
    response.reason = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}[status]
    response._content = json.dumps({"errorCode": 0, "errorMsg": message, "usrMsg": message}).encode()
    return RestAPIError(f"https://{FAKE_HOST}/hopsworks-api/api/{path}", response)


def _default_version(kind: str, name: str, version: int | None) -> int:
    if version is None:
        warnings.warn(f"No version provided for getting {kind} `{name}`, defaulting to `1`.", sdk_util.VersionWarning)
        return 1
    return version


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write_json(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(content, sort_keys=True))
    os.replace(temp, path)


class FakeHopsworks:
    """The backend: one project with a feature store and a model registry under `root`."""

    def __init__(self, root: Path, api_key: str = FAKE_API_KEY, project: str = FAKE_PROJECT):
        self.root = Path(root)
        self.api_key = api_key
        self.project_name = project
        self.logins: list[dict[str, Any]] = []

    @mirrors(hopsworks.login)
    def login(
        self,
        host: str | None = None,
        port: int = 443,
        project: str | None = None,
        api_key_value: str | None = None,
        **_: Any,
    ) -> FakeProject:
        """Log in like `hopsworks.login` with an API key; the fake never prompts."""
        if api_key_value is None or project is None:
            raise AssertionError("the fake login needs api_key_value and project: the real one would prompt")
        self.logins.append({"host": host, "port": port, "project": project})
        if api_key_value != self.api_key:
            raise rest_api_error(401, "Authentication failed", "auth/session")
        if project != self.project_name:
            raise ProjectException(f"Could not find project {project}")
        return FakeProject(self)

    def run_pending_jobs(self) -> None:
        """Finish every queued insert job, oldest first, as the cluster eventually would."""
        for group_dir in sorted(self.root.glob("feature_groups/*/*")):
            FakeFeatureGroup.load(self, group_dir).run_jobs()

    def feature_group_dir(self, name: str, version: int) -> Path:
        return self.root / "feature_groups" / name / str(version)

    def feature_view_path(self, name: str, version: int) -> Path:
        return self.root / "feature_views" / name / f"{version}.json"

    def model_dir(self, name: str, version: int) -> Path:
        return self.root / "models" / name / str(version)


class FakeProject:
    """A logged-in project."""

    def __init__(self, backend: FakeHopsworks):
        self._backend = backend
        self.name = backend.project_name

    @mirrors(Project.get_feature_store)
    def get_feature_store(self, name: str | None = None) -> FakeFeatureStore:
        return FakeFeatureStore(self._backend)

    @mirrors(Project.get_model_registry)
    def get_model_registry(self) -> FakeModelRegistry:
        return FakeModelRegistry(self._backend)


class FakeFeature:
    """One feature of a group's schema."""

    def __init__(self, name: str, type: str, description: str | None = None):
        self.name, self.type, self.description = name, type, description


class FakeQuery:
    """`select_all()` of one feature group."""

    def __init__(self, group: FakeFeatureGroup):
        self.group = group


class FakeFeatureStore:
    """The project's feature store."""

    def __init__(self, backend: FakeHopsworks):
        self._backend = backend

    @mirrors(FeatureStore.get_feature_group)
    def get_feature_group(self, name: str, version: int | None = None) -> FakeFeatureGroup | None:
        group_dir = self._backend.feature_group_dir(name, _default_version("feature group", name, version))
        return FakeFeatureGroup.load(self._backend, group_dir) if group_dir.exists() else None

    @mirrors(FeatureStore.get_or_create_feature_group)
    def get_or_create_feature_group(
        self,
        name: str,
        version: int,
        description: str | None = "",
        online_enabled: bool | None = False,
        primary_key: list[str] | None = None,
        statistics_config: Any = None,
        event_time: str | None = None,
        **_: Any,
    ) -> FakeFeatureGroup:
        existing = self.get_feature_group(name, version)
        if existing is not None:
            return existing  # the SDK does not update an existing group's metadata
        metadata = {
            "name": name,
            "version": version,
            "description": description,
            "online_enabled": online_enabled,
            "primary_key": list(primary_key or []),
            "event_time": event_time,
            "statistics_config": statistics_config,
            "features": [],
            "next_job": 1,
        }
        return FakeFeatureGroup(self._backend, metadata, saved=False)

    @mirrors(FeatureStore.get_feature_view)
    def get_feature_view(self, name: str, version: int | None = None) -> FakeFeatureView | None:
        path = self._backend.feature_view_path(name, _default_version("feature view", name, version))
        return FakeFeatureView(self._backend, _read_json(path)) if path.exists() else None

    @mirrors(FeatureStore.create_feature_view)
    def create_feature_view(
        self, name: str, query: FakeQuery, version: int | None = None, description: str | None = "", **_: Any
    ) -> FakeFeatureView:
        group = query.group
        if not group.saved:
            raise rest_api_error(400, f"Feature group {group.name} is not saved", "featureview")
        if version is None:
            existing = [int(path.stem) for path in self._backend.root.glob(f"feature_views/{name}/*.json")]
            version = max(existing, default=0) + 1
        path = self._backend.feature_view_path(name, version)
        if path.exists():
            raise rest_api_error(400, f"Feature view {name} version {version} already exists", "featureview")
        metadata = {"name": name, "version": version, "description": description, "group": [group.name, group.version]}
        _write_json(path, metadata)
        return FakeFeatureView(self._backend, metadata)


class FakeFeatureGroup:
    """A feature group: committed rows plus queued insert jobs."""

    def __init__(self, backend: FakeHopsworks, metadata: dict[str, Any], saved: bool):
        self._backend = backend
        self._metadata = metadata
        self.saved = saved
        self.name: str = metadata["name"]
        self.version: int = metadata["version"]
        self.primary_key: list[str] = metadata["primary_key"]
        self.event_time: str | None = metadata["event_time"]
        self.description: str | None = metadata["description"]
        self.features = [FakeFeature(**feature) for feature in metadata["features"]]

    @classmethod
    def load(cls, backend: FakeHopsworks, group_dir: Path) -> FakeFeatureGroup:
        return cls(backend, _read_json(group_dir / "metadata.json"), saved=True)

    @property
    def _dir(self) -> Path:
        return self._backend.feature_group_dir(self.name, self.version)

    @property
    def _data_path(self) -> Path:
        return self._dir / "data.parquet"

    @mirrors(FeatureGroupBase.select_all)
    def select_all(self, **_: Any) -> FakeQuery:
        return FakeQuery(self)

    @mirrors(FeatureGroupBase.get_feature)
    def get_feature(self, name: str) -> FakeFeature | None:
        return next((feature for feature in self.features if feature.name == name), None)

    @mirrors(FeatureGroupBase.update_feature_description)
    def update_feature_description(self, feature_name: str, description: str) -> FakeFeatureGroup:
        feature = self.get_feature(feature_name)
        if feature is None:
            raise KeyError(feature_name)
        feature.description = description
        self._save_metadata()
        return self

    @mirrors(FeatureGroup.insert)
    def insert(
        self,
        features: pd.DataFrame,
        overwrite: bool = False,
        operation: str = "upsert",
        write_options: dict[str, Any] | None = None,
        wait: bool = False,
        **_: Any,
    ) -> tuple[None, None]:
        dataframe = self._offline_frame(features)
        if not self.saved:
            self._create(dataframe)
        else:
            self._verify_schema(dataframe)
        job_id = self._metadata["next_job"]
        self._metadata["next_job"] = job_id + 1
        jobs = self._dir / "jobs"
        jobs.mkdir(exist_ok=True)
        dataframe.to_parquet(jobs / f"{job_id:08d}.parquet", index=False)
        (jobs / f"{job_id:08d}.json").write_text(json.dumps({"overwrite": overwrite, "operation": operation}))
        self._save_metadata()
        if (write_options or {}).get("wait_for_job", wait):
            self.run_jobs()
        return None, None  # (job, validation report): the adapter must not rely on either

    def run_jobs(self) -> None:
        """Apply queued jobs in order: upsert on primary key + event time (or overwrite)."""
        for job_path in sorted((self._dir / "jobs").glob("*.parquet")):
            options = json.loads(job_path.with_suffix(".json").read_text())
            rows = pd.read_parquet(job_path)
            if self._data_path.exists() and not options["overwrite"]:
                stored = pd.read_parquet(self._data_path)
                if options["operation"] == "upsert":
                    rows = pd.concat([stored, rows], ignore_index=True).drop_duplicates(self._merge_key, keep="last")
                else:
                    rows = pd.concat([stored, rows], ignore_index=True)
            temp = self._data_path.with_suffix(".tmp")
            rows.to_parquet(temp, index=False)
            os.replace(temp, self._data_path)
            job_path.with_suffix(".json").unlink()
            job_path.unlink()

    def read_committed(self) -> pd.DataFrame:
        """The rows a reader sees now, with offline dtypes."""
        if not self._data_path.exists():
            return pd.DataFrame({feature.name: pd.Series(dtype=OFFLINE_DTYPES[feature.type]) for feature in self.features})
        return pd.read_parquet(self._data_path)

    @property
    def _merge_key(self) -> list[str]:
        return [*self.primary_key, *([self.event_time] if self.event_time else [])]

    def _offline_frame(self, features: pd.DataFrame) -> pd.DataFrame:
        """Like the python engine: names lower-cased, times converted to tz-naive UTC, offline types."""
        if not isinstance(features, pd.DataFrame):
            raise TypeError("the fake takes pandas DataFrames only")
        frame = features.rename(columns=str.lower).reset_index(drop=True)
        types = self._offline_types(frame)
        for column, offline_type in types.items():
            if offline_type == "timestamp" and isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                frame[column] = frame[column].dt.tz_convert("UTC").dt.tz_localize(None)
        return frame.astype({column: OFFLINE_DTYPES[offline_type] for column, offline_type in types.items()})

    @staticmethod
    def _offline_types(frame: pd.DataFrame) -> dict[str, str]:
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        return {field.name: _convert_pandas_dtype_to_offline_type(field.type) for field in schema}

    def _create(self, frame: pd.DataFrame) -> None:
        missing = [key for key in self._merge_key if key not in frame.columns]
        if missing:
            raise FeatureStoreException(f"Provided primary key(s) or event time {missing} doesn't exist in feature dataframe")
        self._metadata["features"] = [
            {"name": name, "type": offline_type, "description": None} for name, offline_type in self._offline_types(frame).items()
        ]
        self.features = [FakeFeature(**feature) for feature in self._metadata["features"]]
        self.saved = True
        self._save_metadata()

    def _verify_schema(self, frame: pd.DataFrame) -> None:
        """The SDK's check: same feature names with the same offline types, nothing extra."""
        derived = self._offline_types(frame)
        errors = []
        for feature in self.features:
            if feature.name not in derived:
                errors.append(f"{feature.name} (type: '{feature.type}') is missing from input dataframe.")
            elif derived.pop(feature.name) != feature.type:
                errors.append(f"{feature.name} has the wrong type.")
        errors += [f"{name} (type: '{kind}') does not exist in feature group." for name, kind in derived.items()]
        if errors:
            raise FeatureStoreException(
                "Features are not compatible with Feature Group schema: " + "".join("\n - " + error for error in errors)
            )

    def _save_metadata(self) -> None:
        self._metadata["features"] = [vars(feature) for feature in self.features]
        _write_json(self._dir / "metadata.json", self._metadata)


class FakeFeatureView:
    """A feature view over `select_all()` of one feature group."""

    def __init__(self, backend: FakeHopsworks, metadata: dict[str, Any]):
        self._backend = backend
        self.name: str = metadata["name"]
        self.version: int = metadata["version"]
        self.description: str | None = metadata["description"]
        self._group = tuple(metadata["group"])

    @mirrors(FeatureView.get_root_fg)
    def get_root_fg(self) -> FakeFeatureGroup:
        return FakeFeatureGroup.load(self._backend, self._backend.feature_group_dir(*self._group))

    @mirrors(FeatureView.get_batch_data)
    def get_batch_data(
        self,
        start_time: Any = None,
        end_time: Any = None,
        primary_key: bool | None = None,
        event_time: bool | None = None,
        dataframe_type: str = "default",
        **_: Any,
    ) -> pd.DataFrame:
        if dataframe_type not in ("default", "pandas"):
            raise ValueError("the fake returns pandas frames only")
        group = self.get_root_fg()
        frame = group.read_committed()
        # The SDK turns each bound into epoch milliseconds, naive times taken as UTC.
        times = frame[group.event_time].astype("datetime64[ms]").astype("int64")
        start, end = sdk_util._convert_event_time_to_timestamp(start_time), sdk_util._convert_event_time_to_timestamp(end_time)
        in_window = pd.Series(True, index=frame.index)
        if start is not None:
            in_window &= times >= start
        if end is not None:
            in_window &= times < end
        frame = frame[in_window]
        dropped = [*([] if primary_key else group.primary_key), *([] if event_time else [group.event_time])]
        # No order is promised: shuffle so callers must sort.
        return frame.drop(columns=dropped).sample(frac=1, random_state=0).reset_index(drop=True)


class FakeModelRegistry:
    """The project's model registry."""

    def __init__(self, backend: FakeHopsworks):
        self._backend = backend
        self.python = FakePythonModels(backend)

    @mirrors(ModelRegistry.get_model)
    def get_model(self, name: str, version: int | None = None) -> FakeModel | None:
        directory = self._backend.model_dir(name, _default_version("model", name, version))
        return FakeModel.load(self._backend, directory) if (directory / "model.json").exists() else None

    @mirrors(ModelRegistry.get_models)
    def get_models(self, name: str) -> list[FakeModel]:
        directories = [path.parent for path in self._backend.root.glob(f"models/{name}/*/model.json")]
        # Newest first: the backend promises no order.
        return [FakeModel.load(self._backend, directory) for directory in sorted(directories, key=lambda d: -int(d.name))]


class FakePythonModels:
    """`model_registry.python`: generic python models."""

    def __init__(self, backend: FakeHopsworks):
        self._backend = backend

    @mirrors(python_signature.create_model)
    def create_model(
        self, name: str, version: int | None = None, metrics: dict | None = None, description: str | None = None, **_: Any
    ) -> FakeModel:
        return FakeModel(self._backend, name, version, metrics, description)


class FakeModel:
    """A model version: metadata plus its files under `Files/`."""

    def __init__(self, backend: FakeHopsworks, name: str, version: int | None, metrics: dict | None, description: str | None):
        self._backend = backend
        self.name, self.version = name, version
        self.training_metrics, self.description = metrics, description

    @classmethod
    def load(cls, backend: FakeHopsworks, directory: Path) -> FakeModel:
        metadata = _read_json(directory / "model.json")
        return cls(backend, metadata["name"], metadata["version"], metadata["training_metrics"], metadata["description"])

    @mirrors(Model.save)
    def save(self, model_path: str, **_: Any) -> FakeModel:
        sdk_util._validate_metrics(self.training_metrics)
        sdk_util._validate_model_name(self.name)
        source = Path(model_path) if os.path.isabs(model_path) else Path.cwd() / model_path
        if not source.exists():
            raise OSError(f"Could not find path {model_path} in the local filesystem or in Hopsworks File System")
        if self.version is None:
            existing = [int(path.parent.name) for path in self._backend.root.glob(f"models/{self.name}/*/model.json")]
            self.version = max(existing, default=0) + 1
        directory = self._backend.model_dir(self.name, self.version)
        if directory.exists():
            raise ModelRegistryException(
                f"Model with name {self.name} and version {self.version} already exists, please select another version."
            )
        staging = directory.with_name(f".{self.version}.staging")
        shutil.rmtree(staging, ignore_errors=True)
        (shutil.copytree if source.is_dir() else _copy_file_into)(source, staging / "Files")
        metadata = {
            "name": self.name,
            "version": self.version,
            "training_metrics": self.training_metrics,
            "description": self.description,
        }
        _write_json(staging / "model.json", metadata)
        os.rename(staging, directory)
        return self

    @mirrors(Model.download)
    def download(self, local_path: str | None = None) -> str:
        """Copy the files to `local_path` or the download cache and return that folder."""
        target = Path(local_path) if local_path else self._backend.root / "download_cache" / self.name / str(self.version)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self._backend.model_dir(self.name, self.version) / "Files", target)
        return str(target)


def _copy_file_into(source: Path, target_dir: Path) -> None:
    target_dir.mkdir(parents=True)
    shutil.copy2(source, target_dir / source.name)


def _backend(tmp_path: Path) -> FakeHopsworks:
    return FakeHopsworks(Path(tmp_path) / "hopsworks")


def _logged_in(resource: HopsworksFeatureStore | HopsworksModelRegistry, backend: FakeHopsworks):
    """`resource` after its own lazy login, made against the fake."""
    with mock.patch.object(hopsworks, "login", backend.login):
        resource._hopsworks_project()
    return resource


def hopsworks_feature_store(tmp_path: Path, feature_group_version: int = 1) -> HopsworksFeatureStore:
    """A HopsworksFeatureStore logged in to the fake backend kept under `tmp_path`."""
    store = HopsworksFeatureStore(
        api_key=FAKE_API_KEY, project=FAKE_PROJECT, host=FAKE_HOST, feature_group_version=feature_group_version
    )
    return _logged_in(store, _backend(tmp_path))


def hopsworks_model_registry(tmp_path: Path) -> HopsworksModelRegistry:
    """A HopsworksModelRegistry logged in to the fake backend kept under `tmp_path`."""
    return _logged_in(HopsworksModelRegistry(api_key=FAKE_API_KEY, project=FAKE_PROJECT, host=FAKE_HOST), _backend(tmp_path))


@contextmanager
def fake_hopsworks(tmp_path: Path) -> Iterator[FakeHopsworks]:
    """Patch `hopsworks.login` process-wide to log in to the fake backend under `tmp_path`.

    Configure resources with api_key=FAKE_API_KEY, project=FAKE_PROJECT (any host).
    """
    backend = _backend(tmp_path)
    with mock.patch.object(hopsworks, "login", backend.login):
        yield backend
