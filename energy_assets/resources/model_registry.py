"""Model-registry resources: the interface, and the embedded local implementation."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableResource

from energy_assets.forecasting.retraining import RegisteredModel, model_in_effect


class ModelRegistry(ConfigurableResource):
    """Models by name, versions numbered by the registry, each with its files and training facts."""

    @abstractmethod
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

    @abstractmethod
    def get(self, name: str, version: int) -> RegisteredModel:
        """One version; `KeyError` naming the model and version when it does not exist."""

    @abstractmethod
    def versions(self, name: str) -> list[RegisteredModel]:
        """Every registered version of `name`, oldest first (empty when none)."""

    @abstractmethod
    def download(self, model: RegisteredModel) -> Path:
        """A local directory holding the files registered with `model`."""

    def latest(self, name: str, at_or_before: pd.Timestamp | None = None) -> RegisteredModel | None:
        """The version with the newest data cutoff <= `at_or_before` (ties: highest version)."""
        return model_in_effect(self.versions(name), at_or_before)

