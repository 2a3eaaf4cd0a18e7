"""Turning source rows into canonical, strictly typed consumption rows."""

from __future__ import annotations

import pandas as pd

from energy_assets.sources.canonical import utc_times
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    CONSUMPTION_DTYPES,
    DATETIME,
    SERIES_KEY,
    TARGET,
)


class CleaningError(ValueError):
    """Rows that cannot be turned into canonical consumption rows."""


def missing_columns(frame: pd.DataFrame) -> list[str]:
    """Canonical columns that `frame` lacks."""
    return [column for column in CONSUMPTION_COLUMNS if column not in frame.columns]


def coerce_consumption(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical columns with values parsed where possible; what does not parse becomes null."""
    absent = missing_columns(frame)
    if absent:
        raise CleaningError(f"consumption rows lack the columns {absent}; got {list(frame.columns)}")
    return pd.DataFrame(
        {
            DATETIME: utc_times(frame[DATETIME]),
            AREA: pd.to_numeric(frame[AREA], errors="coerce"),
            CONSUMER_TYPE: pd.to_numeric(frame[CONSUMER_TYPE], errors="coerce"),
            TARGET: pd.to_numeric(frame[TARGET], errors="coerce").astype("float64"),
        },
        index=frame.index,
    )


def unparseable_values(frame: pd.DataFrame, coerced: pd.DataFrame) -> pd.DataFrame:
    """Per cell of `frame`: a value is present but is not a whole UTC hour, an integer code or a number."""
    unparseable = coerced.isna() & frame[coerced.columns].notna()
    unparseable[DATETIME] |= coerced[DATETIME].notna() & (coerced[DATETIME].dt.floor("h") != coerced[DATETIME])
    for column in (AREA, CONSUMER_TYPE):
        unparseable[column] |= coerced[column].notna() & (coerced[column] % 1 != 0)
    return unparseable


def clean_consumption(frame: pd.DataFrame) -> pd.DataFrame:
    """Canonical dtypes and order; raises `CleaningError` naming the rows that cannot be typed."""
    coerced = coerce_consumption(frame)
    unusable = coerced.isna().any(axis=1) | unparseable_values(frame, coerced).any(axis=1)
    if unusable.any():
        raise CleaningError(
            f"{int(unusable.sum())} rows have missing, unparseable or non-hourly values, "
            f"first ones:\n{frame.loc[unusable].head(10).to_string()}"
        )
    return (
        coerced.astype(CONSUMPTION_DTYPES)
        .sort_values([DATETIME, *SERIES_KEY], kind="stable")
        .reset_index(drop=True)[CONSUMPTION_COLUMNS]
    )
