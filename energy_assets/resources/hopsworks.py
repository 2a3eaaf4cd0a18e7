"""Hopsworks adapters: the consumption feature group and the model registry of one Hopsworks project."""

from __future__ import annotations

import atexit
import hashlib
import importlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableResource
from hopsworks_common.core.type_systems import _convert_pandas_dtype_to_offline_type
from pydantic import Field, PrivateAttr

from energy_assets import settings
from energy_assets.forecasting.provenance import (
    FactsWithFiles,
    check_metric_names,
    decode_description,
    encode_description,
)
from energy_assets.resources.feature_store import FeatureStore, canonical_consumption
from energy_assets.forecasting.retraining import RegisteredModel, first_registration
from energy_assets.resources.model_registry import ModelRegistry
from energy_assets.storage.files import process_runs
from energy_assets.timeline import to_utc_hour
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    CONSUMPTION_SCHEMA,
    DATETIME,
    SERIES_KEY,
    TARGET,
    empty_consumption_frame,
)

LOG = logging.getLogger(__name__)
API_KEY_VARIABLE = settings.FS_API_KEY
PROJECT_VARIABLE = settings.FS_PROJECT_NAME
HOST_VARIABLE = settings.FS_HOST
SAAS_HOST = "eu-west.cloud.hopsworks.ai"  # hopsworks.login's own default host in 5.2

SORT_KEY = [*SERIES_KEY, DATETIME]
FEATURE_GROUP_DESCRIPTION = (
    "Hourly electricity consumption of Denmark per price area and DE35 consumer type "
    "(Energi Data Service ConsumptionDE35Hour), cleaned and checked."
)
FEATURE_DESCRIPTIONS = {
    DATETIME: "Observation hour, UTC (source HourUTC); the event time.",
    AREA: "Price area: 1 = DK1 (west of the Great Belt), 2 = DK2 (east), 0 = DK (all).",
    CONSUMER_TYPE: "DE35 consumer-type (industry) code of Danish Energy, e.g. 111, 212, 999.",
    TARGET: "Total consumption in the hour, kWh, >= 0.",
}
FEATURE_VIEW_DESCRIPTION = "Every consumption feature, read by training and forecasting."
# Written explicitly: the SDK's default has changed between releases (HUDI before, DELTA in 5.x).
TIME_TRAVEL_FORMAT = "DELTA"
# No statistics per insert: with statistics on, the backend starts a statistics job over the group for every
# commit, one Hopsworks job an hour for 76 rows that the blocking asset checks have already validated.
STATISTICS_CONFIG = {"enabled": False}
# The offline (Hive) type Hopsworks gives each canonical column, derived as the SDK derives it.
OFFLINE_TYPES = {field.name: _convert_pandas_dtype_to_offline_type(field.type) for field in CONSUMPTION_SCHEMA}
# Model files go under MODEL_FILES_DIR of a version; the facts too large for its description beside them.
MODEL_FILES_DIR = "model"
FACTS_FILE = "energy_assets_facts.json"
# Each process's folder for its client certificates and downloaded model files: <prefix><pid>_<random>.
SESSION_FOLDER_PREFIX = "energy_assets_hopsworks_"


def _imported_keeping_root_logging(name: str):
    """Import `name`, undoing any change it makes to the root logger.

    The Hopsworks SDK calls `logging.basicConfig(level=INFO)` on import: in every process that loads the
    code location (the CLI, `dg dev`'s code server, each run), every library's INFO would then reach
    stderr (alembic's migration lines on a fresh instance, Dagster's own log lines a second time).
    """
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    module = importlib.import_module(name)
    root.setLevel(level)
    root.handlers[:] = handlers
    return module


# Called as `hopsworks.login`/`logout` at use time, so tests can patch the SDK.
hopsworks = _imported_keeping_root_logging("hopsworks")


class HopsworksLoginError(RuntimeError):
    """Hopsworks settings are missing, or the login failed (message free of the API key)."""


class FeatureGroupMismatchError(RuntimeError):
    """The configured feature group exists but is not one this project writes (e.g. the course's group)."""


class ModelRegistrationError(RuntimeError):
    """Hopsworks accepted a model's files but never confirmed the version."""


def login(api_key: str, project: str, host: str, port: int, hostname_verification: bool, cert_folder: Path) -> Any:
    """The Hopsworks project, logged in without ever prompting, its client certificates in `cert_folder`;
    the API key never appears in errors."""
    missing = [
        variable
        for variable, value in ((API_KEY_VARIABLE, api_key), (PROJECT_VARIABLE, project), (HOST_VARIABLE, host))
        if not value.strip()
    ]
    if missing:
        # hopsworks.login would prompt for a missing key or project and hang an unattended run.
        raise HopsworksLoginError(
            f"Hopsworks login impossible: {', '.join(missing)} empty; set it in the environment or .env (see .env.default)"
        )
    overrides = sdk_environment_overrides(port, hostname_verification)
    for override in overrides:
        LOG.warning("Hopsworks login: %s", override)
    try:
        logged_in = hopsworks.login(
            host=host,
            port=port,
            project=project,
            api_key_value=api_key,
            hostname_verification=hostname_verification,
            cert_folder=str(cert_folder),
            engine="python",
        )
    except Exception as error:
        failure = error
    else:
        if logged_in.name != project:  # inside a Hopsworks cluster the SDK ignores the project asked for
            hopsworks.logout()
            raise HopsworksLoginError(
                f"Hopsworks login gave project {logged_in.name!r}, not {PROJECT_VARIABLE}={project!r}: " + "; ".join(overrides)
            )
        return logged_in
    if overrides:
        failure = RuntimeError(f"{failure} ({'; '.join(overrides)})")
    if api_key in str(failure):
        # Raised outside the except block so the original, key-bearing exception is not chained.
        redacted = str(failure).replace(api_key, f"<{API_KEY_VARIABLE}>")
        raise HopsworksLoginError(f"Hopsworks login to project {project!r} at {host} failed: {redacted}")
    raise HopsworksLoginError(f"Hopsworks login to project {project!r} at {host} failed: {failure}") from failure


def sdk_environment_overrides(port: int, hostname_verification: bool) -> list[str]:
    """The environment variables with which `hopsworks.login` (5.2) replaces what the project passes it.

    Every other HOPSWORKS_* variable only fills an argument left unset, and the project sets them all.
    """
    overrides = []
    if "REST_ENDPOINT" in os.environ:
        overrides.append(
            f"REST_ENDPOINT is set (a process inside a Hopsworks cluster): the SDK connects to that cluster's project "
            f"as its job user, whatever {HOST_VARIABLE}, {API_KEY_VARIABLE} and {PROJECT_VARIABLE} say"
        )
    if port == 443 and os.environ.get("HOPSWORKS_PORT", "443").strip() != "443":
        overrides.append(f"HOPSWORKS_PORT={os.environ['HOPSWORKS_PORT']} replaces port 443")
    verification = os.environ.get("HOPSWORKS_HOSTNAME_VERIFICATION")
    if verification is not None and (verification.lower() in ("true", "1", "y", "yes")) != hostname_verification:
        overrides.append(f"HOPSWORKS_HOSTNAME_VERIFICATION={verification} replaces hostname_verification={hostname_verification}")
    if os.environ.get("HOPSWORKS_TRUST_STORE_PATH"):
        overrides.append(f"HOPSWORKS_TRUST_STORE_PATH={os.environ['HOPSWORKS_TRUST_STORE_PATH']} replaces the trust store")
    return overrides


class _SharedConnection:
    """The process's one Hopsworks session, with a folder of its own.

    `hopsworks.login` first logs out, closing every other connection of the process and deleting
    its client certificates: resources must share one login instead of each making their own.
    The SDK keeps those certificates in one folder per host, project and user (`/tmp/<host>/<project>/<user>`)
    unless told otherwise, so one process's logout at exit deleted the files every other step process,
    run and sensor-launched run on the machine was still using for its delta-rs writes and Arrow Flight
    reads. Each process therefore keeps them, and the model files it downloads, in a folder of its own
    (`energy_assets_hopsworks_<pid>_*` in the temp folder), removed when it exits; a folder left by a
    process that was killed is removed by the next process that logs in.
    """

    def __init__(self) -> None:
        self.settings: tuple | None = None
        self.project: Any = None
        self._folder: tuple[int, Path] | None = None  # (owning process id, folder)
        self._lock = threading.RLock()

    def get(self, api_key: str, project: str, host: str, port: int, hostname_verification: bool) -> Any:
        """The logged-in project for these settings, logging in (and out of any other) only when needed."""
        settings = (host, port, project, hashlib.sha256(api_key.encode()).hexdigest(), hostname_verification)
        with self._lock:
            if self.project is None or self.settings != settings:
                self.logout()
                certificates = self.folder() / "certificates"
                certificates.mkdir(mode=0o700, exist_ok=True)
                self.project = login(api_key, project, host, port, hostname_verification, certificates)
                self.settings = settings
            return self.project

    def folder(self) -> Path:
        """This process's folder for client certificates and downloaded model files, created on first use."""
        with self._lock:
            if self._folder is None or self._folder[0] != os.getpid():
                remove_abandoned_session_folders()
                folder = Path(tempfile.mkdtemp(prefix=f"{SESSION_FOLDER_PREFIX}{os.getpid()}_"))
                if self._folder is None:
                    atexit.register(self.close)
                self._folder = (os.getpid(), folder)
            return self._folder[1]

    def logout(self) -> None:
        """Close the session, if any; the next use logs in again."""
        with self._lock:
            if self.project is None:
                return
            self.project, self.settings = None, None
            hopsworks.logout()

    def close(self) -> None:
        """Log out and remove this process's folder (at exit); a forked child leaves its parent's alone."""
        with self._lock:
            if self._folder is None or self._folder[0] != os.getpid():
                return
            self.logout()
            shutil.rmtree(self._folder[1], ignore_errors=True)
            self._folder = None


def remove_abandoned_session_folders() -> list[Path]:
    """Remove the session folders of processes that no longer run (killed before their exit hook); return them."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{SESSION_FOLDER_PREFIX}*_*"):
        owner = folder.name[len(SESSION_FOLDER_PREFIX) :].split("_", 1)[0]
        if folder.is_dir() and owner.isdigit() and not process_runs(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


CONNECTION = _SharedConnection()


class HopsworksProject(ConfigurableResource):
    """Settings of one Hopsworks project; uses the process's shared session, logging in on first use.

    No logout on resource teardown: a custom teardown would forbid `process_config_and_initialize`,
    and the session outlives a step anyway (each step process logs out at exit).
    """

    api_key: str = Field(repr=False, description=f"Hopsworks API key (env {API_KEY_VARIABLE}); never logged.")
    project: str = Field(description=f"Hopsworks project name (env {PROJECT_VARIABLE}).")
    host: str = Field(default=SAAS_HOST, description=f"Hopsworks host (env {HOST_VARIABLE}).")
    port: int = 443
    hostname_verification: bool = Field(default=True, description="Verify the TLS certificate of the host.")

    _session: Any = PrivateAttr(default=None)

    def project_handle(self) -> Any:
        """The SDK's project, logged in through the process's shared session (the pre-flight check uses it)."""
        return self._hopsworks_project()

    def _hopsworks_project(self) -> Any:
        project = CONNECTION.get(self.api_key, self.project, self.host, self.port, self.hostname_verification)
        if project is not self._session:
            # Handles obtained through a closed session fail on use: drop them with it.
            self._forget_handles()
            self._session = project
        return project

    def _forget_handles(self) -> None:
        """Drop objects obtained through the previous session."""


class HopsworksFeatureStore(FeatureStore, HopsworksProject):
    """The consumption feature group of a Hopsworks project, read through one reused feature view."""

    feature_view_name: str = "energy_consumption_denmark_view"
    feature_view_version: int | None = Field(
        default=None, description="Version of the feature view; defaults to the feature group version."
    )

    record_training_datasets: bool = Field(
        default=False,
        description=f"Materialize each training's window as a training dataset version of the view and record it "
        f"(env {settings.TRAINING_DATASETS}); costs a Hopsworks job per retraining.",
    )

    _feature_store: Any = PrivateAttr(default=None)
    _feature_view: Any = PrivateAttr(default=None)
    _group_checked: bool = PrivateAttr(default=False)

    def insert(self, rows: pd.DataFrame) -> None:
        """Upsert canonical rows: a row replaces the stored row with the same series and hour."""
        frame = canonical_consumption(rows).drop_duplicates(SORT_KEY, keep="last")
        if frame.empty:
            return
        group = self._store().get_or_create_feature_group(
            name=self.feature_group_name,
            version=self.feature_group_version,
            description=FEATURE_GROUP_DESCRIPTION,
            primary_key=SERIES_KEY,
            event_time=DATETIME,
            online_enabled=False,
            statistics_config=STATISTICS_CONFIG,
            time_travel_format=TIME_TRAVEL_FORMAT,
        )
        if group.id is not None:  # an existing group: get_or_create never updates it
            self._check_group(group)
        # With the python engine an insert into a DELTA group is a delta-rs MERGE on primary key + event
        # time, committed before insert() returns (no Hopsworks job, nothing to wait for): a read right
        # after sees these rows. Each adds a commit and a small file: feature_group_compaction compacts them.
        group.insert(frame)
        for name, description in FEATURE_DESCRIPTIONS.items():
            if group.get_feature(name).description != description:
                group.update_feature_description(name, description)

    def read(
        self,
        start_time: pd.Timestamp,
        end_time: pd.Timestamp,
        series: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Canonical rows with start_time <= datetime_utc < end_time, optionally only the given
        (area, consumer_type) series, sorted by area, consumer_type, datetime_utc."""
        start, end = to_utc_hour(start_time), to_utc_hour(end_time)
        view = self._view()
        if view is None or end <= start:
            return empty_consumption_frame()
        # get_batch_data reads start_time <= event time < end_time (SDK docs) and, unless asked,
        # leaves out the primary key and event time columns.
        batch = view.get_batch_data(
            start_time=start.to_pydatetime(),
            end_time=end.to_pydatetime(),
            primary_key=True,
            event_time=True,
            dataframe_type="pandas",
        )
        frame = canonical_consumption(batch)
        if series is not None:
            frame = frame.merge(_series_keys(series), on=SERIES_KEY)
        return frame[CONSUMPTION_COLUMNS].sort_values(SORT_KEY).reset_index(drop=True)

    def data_source(self, start_time: pd.Timestamp, end_time: pd.Timestamp) -> dict[str, Any]:
        """The feature view a training reads, and with `record_training_datasets` the training dataset
        version that keeps start_time <= datetime_utc < end_time as read now (later upserts change a window read)."""
        source = {
            "feature_view": self.feature_view_name,
            "feature_view_version": self.feature_view_version or self.feature_group_version,
        }
        view = self._view()
        if self.record_training_datasets and view is not None:
            version, _job = view.create_training_data(
                start_time=to_utc_hour(start_time).to_pydatetime(),
                end_time=to_utc_hour(end_time).to_pydatetime(),
                description=f"energy_assets training window {to_utc_hour(start_time).isoformat()} .. {to_utc_hour(end_time).isoformat()}",
                data_format="parquet",
                write_options={"wait_for_job": True},
            )
            source["training_dataset_version"] = int(version)
        return source

    def training_dataset(self, version: int) -> pd.DataFrame:
        """The canonical rows of a training dataset version recorded by `data_source`."""
        view = self._view()
        if view is None:
            raise KeyError(f"feature group {self.feature_group_name!r} v{self.feature_group_version} does not exist yet")
        features, _labels = view.get_training_data(
            training_dataset_version=int(version), primary_key=True, event_time=True, dataframe_type="pandas"
        )
        return canonical_consumption(features).sort_values(SORT_KEY).reset_index(drop=True)

    def maintain(self) -> dict[str, Any]:
        """Compact the group's Delta table (`optimize()`: delta-rs rewrites the small files of the hourly
        inserts into larger ones), then delete the files no version of the table's retention period
        (7 days by default) references (`delta_vacuum()`); the compaction's figures."""
        group = self._store().get_feature_group(self.feature_group_name, version=self.feature_group_version)
        if group is None:
            return {"compaction": "none: the feature group does not exist yet"}
        self._check_group(group)
        metrics = group.optimize() or {}
        group.delta_vacuum()
        considered, removed, added = (int(metrics.get(key, 0)) for key in ("totalConsideredFiles", "numFilesRemoved", "numFilesAdded"))
        return {
            "data_files_before": considered,
            "data_files_after": considered - removed + added,
            "files_rewritten": removed,
            "files_written": added,
            "vacuum": "deleted the files no version within the table's retention (7 days by default) references",
        }

    def _forget_handles(self) -> None:
        self._feature_store, self._feature_view = None, None

    def _store(self) -> Any:
        self._hopsworks_project()
        if self._feature_store is None:
            self._feature_store = self._session.get_feature_store()
        return self._feature_store

    def _check_group(self, group: Any) -> None:
        """`FeatureGroupMismatchError` naming each difference between an existing group and what this project writes."""
        if self._group_checked:
            return
        differences = group_differences(group)
        if not differences and group.statistics_config.enabled:
            # Created by an earlier release, with statistics on: a statistics job for every hourly insert.
            LOG.warning("feature group %r v%s: turning off statistics per insert", group.name, group.version)
            group.statistics_config = STATISTICS_CONFIG
            group.update_statistics_config()
        if differences:
            taken = [existing.version for existing in self._store().get_feature_groups(self.feature_group_name)]
            raise FeatureGroupMismatchError(
                f"feature group {self.feature_group_name!r} version {self.feature_group_version} exists in Hopsworks "
                f"project {self.project!r} but is not one energy_assets writes (the course's group?): "
                + "; ".join(differences)
                + f". Nothing was written. Set {settings.FEATURE_GROUP_VERSION}={max(taken, default=0) + 1} "
                "to use a new version of the group (see docs/production.md, 'Moving to a new feature group version')."
            )
        self._group_checked = True

    def _view(self) -> Any:
        """The feature view over the group, created once (free tiers limit feature views); None before any insert."""
        store = self._store()
        if self._feature_view is None:
            group = store.get_feature_group(self.feature_group_name, version=self.feature_group_version)
            if group is None:
                return None
            self._check_group(group)
            version = self.feature_view_version or self.feature_group_version
            view = store.get_feature_view(self.feature_view_name, version=version)
            if view is None:
                view = store.create_feature_view(
                    name=self.feature_view_name,
                    version=version,
                    query=group.select_all(),
                    description=FEATURE_VIEW_DESCRIPTION,
                )
            root = view.get_root_fg()
            if (root.name, root.version) != (self.feature_group_name, self.feature_group_version):
                raise ValueError(
                    f"feature view {self.feature_view_name!r} v{version} reads feature group {root.name!r} "
                    f"v{root.version}, not {self.feature_group_name!r} v{self.feature_group_version}; "
                    "set feature_view_version to a view of this group"
                )
            self._feature_view = view
        return self._feature_view


def group_differences(group: Any) -> list[str]:
    """How an existing feature group differs from the one this project creates (empty when it does not)."""
    differences = []
    types = {feature.name: feature.type for feature in group.columns}
    if types != OFFLINE_TYPES:
        differences.append(f"features {types} instead of {OFFLINE_TYPES}")
    if sorted(group.primary_key or []) != sorted(SERIES_KEY):
        differences.append(f"primary key {group.primary_key} instead of {SERIES_KEY}")
    if group.event_time != DATETIME:
        differences.append(f"event time {group.event_time!r} instead of {DATETIME!r}")
    if (group.time_travel_format or "").upper() != TIME_TRAVEL_FORMAT:
        differences.append(f"time travel format {group.time_travel_format!r} instead of {TIME_TRAVEL_FORMAT!r}")
    suite = group.expectation_suite
    if suite is not None:
        differences.append(
            f"a Great Expectations suite {getattr(suite, 'expectation_suite_name', '')!r} is attached "
            f"(ingestion policy {getattr(suite, 'validation_ingestion_policy', '?')}), which energy_assets does not manage"
        )
    return differences


class HopsworksModelRegistry(ModelRegistry, HopsworksProject):
    """The model registry of a Hopsworks project.

    Each version's description holds the facts that choose the model in effect (compact JSON,
    within the backend's 1000 characters); larger facts go to a JSON file beside the model files.
    """

    registration_wait_seconds: float = Field(
        default=60.0, description="How long to look for a saved version the SDK did not confirm."
    )
    model_name_suffix: str = Field(
        default="", description="Appended to every model name in Hopsworks (the live tests use a throw-away one)."
    )

    _model_registry: Any = PrivateAttr(default=None)

    def register(
        self,
        name: str,
        model_dir: str | Path,
        *,
        data_cutoff: pd.Timestamp,
        training_start: pd.Timestamp,
        feature_group_version: int,
        config: dict[str, Any],
        metrics: dict[str, float],
        extra: dict[str, Any] | None = None,
    ) -> RegisteredModel:
        """Store the files of `model_dir` as the next version of `name` (numbered by Hopsworks)."""
        source = Path(model_dir).resolve()
        if not source.is_dir():
            raise NotADirectoryError(f"model directory {source} of model {name!r} does not exist or is not a folder")
        check_metric_names(metrics)
        facts = {
            "data_cutoff": to_utc_hour(data_cutoff).isoformat(),
            "training_start": to_utc_hour(training_start).isoformat(),
            "feature_group_version": int(feature_group_version),
            "config": config,
        }
        training = {
            "data_cutoff": to_utc_hour(data_cutoff), "training_start": to_utc_hour(training_start),
            "feature_group_version": feature_group_version, "config": config,
        }
        already = first_registration(self.versions(name), **training)
        if already is not None:
            return already
        try:
            description, moved = encode_description(facts, extra or {})
        except ValueError as error:
            raise ValueError(f"model {name!r}: {error}") from error
        model = self._registry().python.create_model(
            name=name + self.model_name_suffix,
            metrics={key: float(value) for key, value in metrics.items()},
            description=description,
        )
        with tempfile.TemporaryDirectory() as staging:
            shutil.copytree(source, Path(staging) / MODEL_FILES_DIR)
            (Path(staging) / FACTS_FILE).write_text(json.dumps(moved, sort_keys=True))
            saved = _saved_or_none(model, staging)
        if saved is None:
            saved = self._confirmed(name + self.model_name_suffix, model.version)
        registered = self._registered_model(saved)
        # Hopsworks numbers versions as they are saved, so two runs training for the same cutoff both get
        # one; the later of them steps back, so the cutoff keeps exactly one version.
        first = first_registration(self.versions(name), **training)
        if first is not None and first.version != registered.version:
            self._model(name, registered.version).delete()
            return first
        return registered

    def get(self, name: str, version: int) -> RegisteredModel:
        """One version; `KeyError` naming the model and version when it does not exist."""
        return self._registered_model(self._model(name, version))

    def versions(self, name: str) -> list[RegisteredModel]:
        """Every readable version of `name`, oldest first (empty when none); an unreadable one is logged and left out."""
        found = []
        for model in self._registry().get_models(name + self.model_name_suffix):
            try:
                found.append(self._registered_model(model))
            except ValueError as unreadable:
                # One foreign or broken version must not block the forecasts of hours that use the others.
                LOG.warning("%s; left out of the registry's versions", unreadable)
        return sorted(found, key=lambda model: model.version)

    def download(self, model: RegisteredModel) -> Path:
        """A local directory holding the files registered with `model` (the SDK's download cache)."""
        return self._downloaded(model.name, model.version) / MODEL_FILES_DIR

    def _forget_handles(self) -> None:
        self._model_registry = None

    def _registry(self) -> Any:
        self._hopsworks_project()
        if self._model_registry is None:
            self._model_registry = self._session.get_model_registry()
        return self._model_registry

    def _model(self, name: str, version: int) -> Any:
        # Always an explicit version: get_model(name) without one silently means version 1.
        model = self._registry().get_model(name + self.model_name_suffix, version=int(version))
        if model is None:
            raise KeyError(f"model {name!r} has no version {version} in Hopsworks project {self.project!r}")
        return model

    def _downloaded(self, name: str, version: int) -> Path:
        """The files of one version, downloaded once per process into the process's own folder (the SDK's
        shared cache under /tmp is written by every process of the machine at once). The backend's model id
        names the folder, as in the SDK's cache: a version deleted and registered again is downloaded again."""
        model = self._model(name, version)
        target = CONNECTION.folder() / "models" / self.project / model.name / str(int(version)) / str(model.id)
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
            model.download(local_path=str(staging))
            try:
                staging.rename(target)
            except OSError:  # another thread of the process downloaded it first
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def _confirmed(self, name: str, version: int | None) -> Any:
        """The saved version, looked up until `registration_wait_seconds` pass."""
        deadline = time.monotonic() + self.registration_wait_seconds
        while version is not None:
            model = self._registry().get_model(name, version=int(version))
            if model is not None:
                return model
            if time.monotonic() >= deadline:
                break
            time.sleep(min(5.0, max(self.registration_wait_seconds / 10, 0.1)))
        raise ModelRegistrationError(
            f"Hopsworks did not confirm model {name!r} version {version} within {self.registration_wait_seconds:g} s "
            "of uploading its files; check the project's Models page, delete a half-registered version, and rerun"
        )

    def _registered_model(self, model: Any) -> RegisteredModel:
        try:
            facts, kept, in_files = decode_description(model.description or "")
            name = model.name.removesuffix(self.model_name_suffix)
            return RegisteredModel(
                name=name,
                version=int(model.version),
                data_cutoff=to_utc_hour(facts["data_cutoff"]),
                training_start=to_utc_hour(facts["training_start"]),
                feature_group_version=int(facts["feature_group_version"]),
                config=facts["config"],
                metrics={key: float(value) for key, value in (model.training_metrics or {}).items()},
                extra=FactsWithFiles(kept, in_files, lambda: self._facts_in_files(name, int(model.version))),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"model {model.name!r} version {model.version} was not registered by this release of energy_assets: "
                f"its description lacks the training facts ({error}); delete or rename it in Hopsworks"
            ) from error

    def _facts_in_files(self, name: str, version: int) -> Mapping[str, Any]:
        return json.loads((self._downloaded(name, version) / FACTS_FILE).read_text())


def _saved_or_none(model: Any, files: str) -> Any:
    """`model.save(files)`, or None when the SDK stopped waiting for the registration it had sent.

    hsml 5.2 then fails on its own answer: `_poll_model_available` returns None after `await_registration`
    seconds and `_save` calls `None.get_url()`, raising AttributeError after the files were uploaded and the
    version registered (outside the step that would remove them); `model.version` names that version.
    """
    try:
        return model.save(files, keep_original_files=True)
    except AttributeError as error:
        if "'NoneType' object has no attribute 'get_url'" not in str(error):
            raise
        LOG.warning("Hopsworks had not confirmed model %r version %s when the SDK stopped waiting; looking it up", model.name, model.version)
        return None


def _series_keys(series: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in SERIES_KEY if column not in series.columns]
    if missing:
        raise ValueError(f"series lack column(s) {missing}; got {list(series.columns)}")
    return series[SERIES_KEY].drop_duplicates().astype({AREA: "int8", CONSUMER_TYPE: "int32"})
