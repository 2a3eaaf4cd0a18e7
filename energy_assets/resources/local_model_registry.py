"""The embedded model registry: a folder per model version holding its files and a metadata json."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from energy_assets.forecasting.provenance import check_metric_names
from energy_assets.storage.files import exclusive_lock, fsync_dir
from energy_assets.forecasting.retraining import RegisteredModel, first_registration
from energy_assets.resources.model_registry import ModelRegistry
from energy_assets.timeline import to_utc_hour

LOG = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"
FILES_DIR = "files"
VERSION_DIR = re.compile(r"v(\d+)")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class LocalModelRegistry(ModelRegistry):
    """Models as `<root_dir>/<name>/v<version>/{metadata.json, files/}`.

    A version is assembled in a temp folder and renamed into place under the model's lock, so it
    appears whole or not at all and concurrent registrations get distinct consecutive numbers.
    """

    root_dir: str

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
        """Store the files of `model_dir` as the next version of `name`, atomically."""
        source = Path(model_dir)
        if not source.is_dir():
            raise NotADirectoryError(f"model directory {source} of model {name!r} does not exist or is not a folder")
        check_metric_names(metrics)  # the same names as the Hopsworks registry, so both read back alike
        metadata = {
            "name": name,
            "data_cutoff": to_utc_hour(data_cutoff).isoformat(),
            "training_start": to_utc_hour(training_start).isoformat(),
            "feature_group_version": int(feature_group_version),
            "config": config,
            "metrics": {key: float(value) for key, value in metrics.items()},
            "extra": extra or {},
        }
        try:
            json.dumps(metadata)
        except (TypeError, ValueError) as error:
            raise ValueError(f"config, metrics and extra of model {name!r} must be JSON-serialisable: {error}") from error
        model_root = self._model_root(name)
        model_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=model_root, prefix=".staging-"))
        try:
            shutil.copytree(source, staging / FILES_DIR)
            _make_read_only(staging / FILES_DIR)
            with exclusive_lock(model_root / ".lock"):
                # Registration is idempotent: a run that trained for a cutoff another run already
                # registered (concurrent backfills of the same hour) gets that version back.
                training = {key: metadata[key] for key in ("data_cutoff", "training_start", "feature_group_version", "config")}
                training = {**training, "data_cutoff": to_utc_hour(data_cutoff), "training_start": to_utc_hour(training_start)}
                existing = first_registration(self.versions(name), **training)
                if existing is not None:
                    shutil.rmtree(staging, ignore_errors=True)
                    return existing
                version = max(self._version_numbers(name), default=0) + 1
                _write_json(staging / METADATA_FILE, {**metadata, "version": version})
                fsync_dir(staging)
                os.rename(staging, model_root / f"v{version}")
                fsync_dir(model_root)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return self.get(name, version)

    def get(self, name: str, version: int) -> RegisteredModel:
        """One version; `KeyError` naming the model and version when it does not exist."""
        folder = self._model_root(name) / f"v{version}"
        path = folder / METADATA_FILE
        if not folder.is_dir():
            raise KeyError(f"model {name!r} has no version {version} in {self.root_dir}")
        if not path.is_file():
            raise DamagedModelVersion(f"model {name!r} version {version} is damaged: {path} is missing")
        try:
            return _from_metadata(json.loads(path.read_text()))
        except (ValueError, KeyError, TypeError) as error:
            raise DamagedModelVersion(f"model {name!r} version {version} is damaged: {path}: {error}") from None

    def versions(self, name: str) -> list[RegisteredModel]:
        """Every readable version of `name`, oldest first (empty when none); a damaged one is logged and left out."""
        found = []
        for version in sorted(self._version_numbers(name)):
            try:
                found.append(self.get(name, version))
            except DamagedModelVersion as damaged:
                # One broken version must not block the forecasts of hours that use the others.
                LOG.warning("%s; left out of the registry's versions", damaged)
        return found

    def download(self, model: RegisteredModel) -> Path:
        """The stored (read-only) directory holding the files registered with `model`."""
        self.get(model.name, model.version)
        return self._model_root(model.name) / f"v{model.version}" / FILES_DIR

    def _model_root(self, name: str) -> Path:
        if not MODEL_NAME.fullmatch(name):
            raise ValueError(f"model name {name!r} must be letters, digits, '_', '.', '-' and not start with a symbol")
        return Path(self.root_dir) / name

    def _version_numbers(self, name: str) -> list[int]:
        root = self._model_root(name)
        if not root.is_dir():
            return []
        return [int(match[1]) for entry in root.iterdir() if (match := VERSION_DIR.fullmatch(entry.name))]


class DamagedModelVersion(ValueError):
    """A version folder whose metadata is missing or unreadable; the message names the file."""


def _from_metadata(metadata: dict[str, Any]) -> RegisteredModel:
    return RegisteredModel(
        name=metadata["name"],
        version=metadata["version"],
        data_cutoff=to_utc_hour(metadata["data_cutoff"]),
        training_start=to_utc_hour(metadata["training_start"]),
        feature_group_version=metadata["feature_group_version"],
        config=metadata["config"],
        metrics=metadata["metrics"],
        extra=metadata["extra"],
    )


def _write_json(path: Path, content: dict[str, Any]) -> None:
    with open(path, "w") as file:
        json.dump(content, file, indent=2, sort_keys=True)
        file.flush()
        os.fsync(file.fileno())


def _make_read_only(directory: Path) -> None:
    """Guard registered files against edits through the path `download` hands out."""
    for path in directory.rglob("*"):
        if path.is_file():
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
