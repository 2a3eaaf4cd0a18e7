"""Feature-store resources: the interface, and the embedded local implementation."""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import pandas as pd
import pyarrow as pa
from dagster import ConfigurableResource

from energy_assets.cleaning import missing_columns
from energy_assets.schema import CONSUMPTION_SCHEMA, DATETIME, FEATURE_GROUP_NAME


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

    def data_source(self) -> dict[str, Any]:
        """Where reads come from, as a model's provenance records it."""
        return {"feature_group": self.feature_group_name, "feature_group_version": self.feature_group_version}


def canonical_consumption(rows: pd.DataFrame) -> pd.DataFrame:
    """The canonical columns of `rows` in canonical dtypes; `ValueError` naming a column that does not fit."""
    missing = missing_columns(rows)
    if missing:
        raise ValueError(f"feature rows lack canonical column(s) {missing}; got {list(rows.columns)}")
    arrays = [_canonical_column(rows[field.name], field) for field in CONSUMPTION_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=CONSUMPTION_SCHEMA).to_pandas()


def _canonical_column(values: pd.Series, field: pa.Field) -> pa.Array:
    try:
        if field.name == DATETIME:
            values = pd.to_datetime(values, utc=True)  # naive times are UTC, as in schema.to_utc_hour
        # Infer, then cast safely: overflow or a fractional part is an error, never a silently changed key.
        array = pa.array(values, from_pandas=True).cast(field.type)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise ValueError(f"feature column {field.name!r} does not cast to {field.type}: {error}") from error
    if array.null_count:
        raise ValueError(f"feature column {field.name!r} has {array.null_count} missing value(s)")
    return array
