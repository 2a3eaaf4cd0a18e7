"""Feature-store resources: the interface, and the embedded local implementation."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import pandas as pd
from dagster import ConfigurableResource

from energy_assets.schema import CONSUMPTION_SCHEMA, FEATURE_GROUP_NAME, conform_frame


class FeatureStore(ConfigurableResource):
    """One versioned feature group of hourly consumption rows keyed by (area, consumer_type, datetime_utc)."""

    feature_group_name: str = FEATURE_GROUP_NAME
    feature_group_version: int = 1

    @abstractmethod
    def insert(self, rows: pd.DataFrame) -> None:
        """Upsert canonical rows: a row replaces the stored row with the same series and hour."""

    @abstractmethod
    def read(
        self,
        start_time: pd.Timestamp,
        end_time: pd.Timestamp,
        series: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Canonical rows with start_time <= datetime_utc < end_time, optionally only the given
        (area, consumer_type) series, sorted by area, consumer_type, datetime_utc."""

    @abstractmethod
    def maintain(self) -> dict[str, Any]:
        """Compact the group's stored files; what was done, as metadata for the UI."""

    def data_source(self, start_time: pd.Timestamp, end_time: pd.Timestamp) -> dict[str, Any]:
        """Where a training's read of start_time <= datetime_utc < end_time comes from, as its model's provenance records it."""
        return {"feature_group": self.feature_group_name, "feature_group_version": self.feature_group_version}


def canonical_consumption(rows: pd.DataFrame) -> pd.DataFrame:
    """The canonical columns of `rows` in canonical dtypes; `ValueError` naming a column that does not fit."""
    return conform_frame(rows, CONSUMPTION_SCHEMA, "feature rows")
