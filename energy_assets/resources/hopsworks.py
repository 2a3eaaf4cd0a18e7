"""Hopsworks adapters: the consumption feature group and the model registry of one Hopsworks project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hopsworks  # called as `hopsworks.login` at use time, so tests can patch the SDK's login
import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from energy_assets.resources.feature_store import FeatureStore, canonical_consumption
from energy_assets.resources.model_registry import ModelRegistry, RegisteredModel
from energy_assets.timeline import to_utc_hour
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    DATETIME,
    SERIES_KEY,
    TARGET,
    empty_consumption_frame,
)

API_KEY_VARIABLE = "FS_API_KEY"
PROJECT_VARIABLE = "FS_PROJECT_NAME"
HOST_VARIABLE = "FS_HOST"
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


class HopsworksLoginError(RuntimeError):
    """Hopsworks settings are missing, or the login failed (message free of the API key)."""


def login(api_key: str, project: str, host: str, port: int, hostname_verification: bool) -> Any:
    """The Hopsworks project, logged in without ever prompting; the API key never appears in errors."""
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
    try:
        return hopsworks.login(
            host=host,
            port=port,
            project=project,
            api_key_value=api_key,
            hostname_verification=hostname_verification,
            engine="python",
        )
    except Exception as error:
        failure = error
    if api_key in str(failure):
        # Raised outside the except block so the original, key-bearing exception is not chained.
        redacted = str(failure).replace(api_key, f"<{API_KEY_VARIABLE}>")
        raise HopsworksLoginError(f"Hopsworks login to project {project!r} at {host} failed: {redacted}")
    raise HopsworksLoginError(f"Hopsworks login to project {project!r} at {host} failed: {failure}") from failure


class HopsworksProject(ConfigurableResource):
    """Settings of one Hopsworks project; logs in on first use and keeps the session."""

    api_key: str = Field(repr=False, description=f"Hopsworks API key (env {API_KEY_VARIABLE}); never logged.")
    project: str = Field(description=f"Hopsworks project name (env {PROJECT_VARIABLE}).")
    host: str = Field(default=SAAS_HOST, description=f"Hopsworks host (env {HOST_VARIABLE}).")
    port: int = 443
    hostname_verification: bool = Field(default=True, description="Verify the TLS certificate of the host.")

    _project: Any = PrivateAttr(default=None)

    def _hopsworks_project(self) -> Any:
        if self._project is None:
            self._project = login(self.api_key, self.project, self.host, self.port, self.hostname_verification)
        return self._project


class HopsworksFeatureStore(FeatureStore, HopsworksProject):
    """The consumption feature group of a Hopsworks project, read through one reused feature view."""

    feature_view_name: str = "energy_consumption_denmark_view"
    feature_view_version: int | None = Field(
        default=None, description="Version of the feature view; defaults to the feature group version."
    )

    _feature_store: Any = PrivateAttr(default=None)
    _feature_view: Any = PrivateAttr(default=None)

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
            statistics_config={"enabled": True},
        )
        # Inserts are asynchronous by default: wait, so a read right after sees these rows.
        group.insert(frame, write_options={"wait_for_job": True})
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

    def _store(self) -> Any:
        if self._feature_store is None:
            self._feature_store = self._hopsworks_project().get_feature_store()
        return self._feature_store

    def _view(self) -> Any:
        """The feature view over the group, created once (free tiers limit feature views); None before any insert."""
        if self._feature_view is None:
            store = self._store()
            version = self.feature_view_version or self.feature_group_version
            view = store.get_feature_view(self.feature_view_name, version=version)
            if view is None:
                group = store.get_feature_group(self.feature_group_name, version=self.feature_group_version)
                if group is None:
                    return None
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


class HopsworksModelRegistry(ModelRegistry, HopsworksProject):
    """The model registry of a Hopsworks project; training facts live in each version's description (JSON)."""

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
        facts = {
            "data_cutoff": to_utc_hour(data_cutoff).isoformat(),
            "training_start": to_utc_hour(training_start).isoformat(),
            "feature_group_version": int(feature_group_version),
            "config": config,
            "extra": extra or {},
        }
        try:
            description = json.dumps(facts, sort_keys=True)
        except (TypeError, ValueError) as error:
            raise ValueError(f"config and extra of model {name!r} must be JSON-serialisable: {error}") from error
        model = self._registry().python.create_model(
            name=name,
            metrics={key: float(value) for key, value in metrics.items()},
            description=description,
        )
        # keep_original_files: never let the registry move the caller's files.
        return _registered_model(model.save(str(source), keep_original_files=True))

    def get(self, name: str, version: int) -> RegisteredModel:
        """One version; `KeyError` naming the model and version when it does not exist."""
        return _registered_model(self._model(name, version))

    def versions(self, name: str) -> list[RegisteredModel]:
        """Every registered version of `name`, oldest first (empty when none)."""
        models = self._registry().get_models(name)
        return sorted((_registered_model(model) for model in models), key=lambda model: model.version)

    def download(self, model: RegisteredModel) -> Path:
        """A local directory holding the files registered with `model` (the SDK's download cache)."""
        return Path(self._model(model.name, model.version).download())

    def _registry(self) -> Any:
        if self._model_registry is None:
            self._model_registry = self._hopsworks_project().get_model_registry()
        return self._model_registry

    def _model(self, name: str, version: int) -> Any:
        # Always an explicit version: get_model(name) without one silently means version 1.
        model = self._registry().get_model(name, version=int(version))
        if model is None:
            raise KeyError(f"model {name!r} has no version {version} in Hopsworks project {self.project!r}")
        return model


def _registered_model(model: Any) -> RegisteredModel:
    try:
        facts = json.loads(model.description or "")
        return RegisteredModel(
            name=model.name,
            version=int(model.version),
            data_cutoff=to_utc_hour(facts["data_cutoff"]),
            training_start=to_utc_hour(facts["training_start"]),
            feature_group_version=int(facts["feature_group_version"]),
            config=facts["config"],
            metrics={key: float(value) for key, value in (model.training_metrics or {}).items()},
            extra=facts["extra"],
        )
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(
            f"model {model.name!r} version {model.version} was not registered by energy_assets: its description "
            f"lacks the training facts ({error}); delete or rename it in Hopsworks"
        ) from error


def _series_keys(series: pd.DataFrame) -> pd.DataFrame:
    missing = [column for column in SERIES_KEY if column not in series.columns]
    if missing:
        raise ValueError(f"series lack column(s) {missing}; got {list(series.columns)}")
    return series[SERIES_KEY].drop_duplicates().astype({AREA: "int8", CONSUMER_TYPE: "int32"})
