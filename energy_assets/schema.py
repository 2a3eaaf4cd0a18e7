"""The one definition of every table the project stores: columns, types and meaning.

Arrow schemas are written here once; pandas dtypes, feature descriptions and the casts every layer
applies are derived from them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

DATETIME = "datetime_utc"
AREA = "area"
CONSUMER_TYPE = "consumer_type"
TARGET = "energy_consumption"
SERIES_KEY = [AREA, CONSUMER_TYPE]

ISSUED_AT = "issued_at"
HORIZON = "horizon"
FORECAST = "energy_consumption_forecast"
MODEL_VERSION = "model_version"
MODEL_TRAINING_SHA256 = "model_training_sha256"
HISTORY_HOURS_MISSING = "history_hours_missing"

# Price areas as the source names them; 0 is the whole country.
AREA_CODES: dict[str, int] = {"DK": 0, "DK1": 1, "DK2": 2}
AREA_NAMES: dict[int, str] = {code: name for name, code in AREA_CODES.items()}

# The DE35 consumer-type codes of ConsumptionDE35Hour (Danish Energy industry codes).
DE35_CONSUMER_TYPES: tuple[int, ...] = (
    111, 112, 119, 121, 122, 123, 130, 211, 212, 215, 220, 310, 320, 330, 340, 350, 360, 370,
    381, 382, 390, 410, 421, 422, 431, 432, 433, 441, 442, 443, 444, 445, 446, 447, 450, 461,
    462, 999,
)
DE35_AREAS: tuple[int, ...] = (1, 2)

FORECAST_HORIZON_HOURS = 24
# Nominal coverages of the prediction intervals stored beside every forecast.
INTERVAL_COVERAGES: tuple[float, ...] = (0.8, 0.95)
FEATURE_GROUP_NAME = "energy_consumption_denmark"
MODEL_NAME = "energy_consumption_forecaster"

UTC_HOUR = pa.timestamp("us", tz="UTC")


def interval_column(side: str, coverage: float, name: str = TARGET) -> str:
    """Name of the `side` ("lower" or "upper") bound of the `coverage` interval of column `name`."""
    if side not in ("lower", "upper"):
        raise ValueError(f"an interval bound is 'lower' or 'upper', got {side!r}")
    return f"{name}_{side}_{round(coverage * 100):d}"


INTERVAL_COLUMNS = [interval_column(side, c) for c in INTERVAL_COVERAGES for side in ("lower", "upper")]


def _field(name: str, type_: pa.DataType, description: str) -> pa.Field:
    return pa.field(name, type_, nullable=False, metadata={"description": description})


_DATETIME = _field(DATETIME, UTC_HOUR, "Observation hour, UTC (source HourUTC); the event time.")
_AREA = _field(AREA, pa.int8(), "Price area: 1 = DK1 (west of the Great Belt), 2 = DK2 (east), 0 = DK (all).")
_CONSUMER_TYPE = _field(CONSUMER_TYPE, pa.int32(), "DE35 consumer-type (industry) code of Danish Energy, e.g. 111.")

CONSUMPTION_SCHEMA = pa.schema(
    [_DATETIME, _AREA, _CONSUMER_TYPE, _field(TARGET, pa.float64(), "Total consumption in the hour, kWh, >= 0.")]
)
FORECAST_SCHEMA = pa.schema(
    [
        _AREA,
        _CONSUMER_TYPE,
        _field(ISSUED_AT, UTC_HOUR, "Issue hour H, UTC: the forecast used data up to and including H."),
        _field(DATETIME, UTC_HOUR, "Target hour, UTC."),
        _field(HORIZON, pa.int16(), f"Hours from issue to target, 1 ... {FORECAST_HORIZON_HOURS}."),
        _field(FORECAST, pa.float64(), "Forecast consumption in the target hour, kWh."),
        _field(MODEL_VERSION, pa.int32(), "Registry version of the model that issued the forecast."),
        _field(
            MODEL_TRAINING_SHA256,
            pa.string(),
            "SHA-256 (hex) of what the issuing model was trained on: data cutoff, training start, feature group version, "
            "configuration and training rows. Names one model even where a registry reused a version number (a reset "
            "local registry, a deleted Hopsworks version); null in objects written before it.",
        ).with_nullable(True),
        *[
            _field(
                interval_column(side, coverage),
                pa.float64(),
                f"{side.capitalize()} bound of the {coverage:.0%} split-conformal prediction interval, kWh; "
                "null for a model without calibrated intervals or an object written before intervals.",
            ).with_nullable(True)
            for coverage in INTERVAL_COVERAGES
            for side in ("lower", "upper")
        ],
        _field(
            HISTORY_HOURS_MISSING,
            pa.int16(),
            "Hours of its series' history that the forecast read and the feature group lacks, each read as the last "
            "observed hour before it: 0 for none, at most forecasting.history_gaps.MAX_FILLED_HOURS (a forecast reading "
            "more is not issued); null in objects written before the count existed.",
        ).with_nullable(True),
    ]
)
# Hive partition columns of every partitioned asset in the bucket: the UTC date and hour of the partition key
# (for energy_forecasts and forecast_accuracy the issue hour, for consumption_raw the observation hour).
PARTITION_DATE = "utc_date"
PARTITION_HOUR = "utc_hour"
PARTITION_SCHEMA = pa.schema(
    [
        _field(PARTITION_DATE, pa.date32(), "UTC date of the partition's hour (hive partition column)."),
        _field(PARTITION_HOUR, pa.int32(), "UTC hour of day of the partition, 0 ... 23 (hive partition column)."),
    ]
)
# The raw layer keeps what the source published, empty values included, so that the blocking checks
# can name the rows that hold them; only the feature group requires every value.
RAW_CONSUMPTION_SCHEMA = pa.schema([field.with_nullable(True) for field in CONSUMPTION_SCHEMA])
CONSUMPTION_COLUMNS = CONSUMPTION_SCHEMA.names
FORECAST_COLUMNS = FORECAST_SCHEMA.names
# What issuing adds to a forecaster's output: which model issued it.
MODEL_COLUMNS = [MODEL_VERSION, MODEL_TRAINING_SHA256]
# Forecast columns that objects written by earlier releases lack: every reader adds them as nulls of their type
# (`with_later_columns`), never as a value (a null count is unknown, not 0).
LATER_FORECAST_COLUMNS = [MODEL_TRAINING_SHA256, *INTERVAL_COLUMNS, HISTORY_HOURS_MISSING]
# The schemas of the tables kept in the bucket: raw consumption as published, and forecasts.
CANONICAL_SCHEMAS: tuple[pa.Schema, ...] = (RAW_CONSUMPTION_SCHEMA, FORECAST_SCHEMA)


def pandas_dtypes(schema: pa.Schema) -> dict[str, str]:
    """Column -> the pandas dtype an arrow column of the schema reads back as."""
    return {name: str(dtype) for name, dtype in schema.empty_table().to_pandas().dtypes.items()}


def descriptions(schema: pa.Schema) -> dict[str, str]:
    """Column -> its description."""
    return {field.name: field.metadata[b"description"].decode() for field in schema}


CONSUMPTION_DTYPES = pandas_dtypes(CONSUMPTION_SCHEMA)
FORECAST_DTYPES = pandas_dtypes(FORECAST_SCHEMA)
SERIES_DTYPES = {column: CONSUMPTION_DTYPES[column] for column in SERIES_KEY}


def conform(frame: pd.DataFrame, schema: pa.Schema, what: str) -> pa.Table:
    """The schema's columns of `frame` as an arrow table of exactly that schema.

    Values are inferred, then cast safely: overflow, a fractional part, a boolean or a null in a
    non-nullable field is a `ValueError` naming `what` and the column, never a silently changed
    value. Naive times are taken as UTC.
    """
    missing = [name for name in schema.names if name not in frame.columns]
    if missing:
        raise ValueError(f"{what} lack column(s) {missing}; got {list(frame.columns)}")
    return pa.Table.from_arrays([_conform_column(frame[field.name], field, what) for field in schema], schema=schema)


def _conform_column(values: pd.Series, field: pa.Field, what: str) -> pa.Array:
    try:
        if pa.types.is_timestamp(field.type):
            values = pd.to_datetime(values, utc=True)
        array = pa.array(values, from_pandas=True)
        if pa.types.is_boolean(array.type):
            raise TypeError("booleans are not numbers")
        array = array.cast(field.type)
    except (pa.ArrowException, TypeError, ValueError) as error:
        raise ValueError(f"{what}: column {field.name!r} does not cast to {field.type}: {error}") from None
    if array.null_count and not field.nullable:
        rows = np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[:5].tolist()
        raise ValueError(f"{what}: column {field.name!r} has {array.null_count} missing value(s), at rows {rows}")
    return array


def schema_mismatch(actual: pa.Schema, expected: pa.Schema, optional: Sequence[str] = ()) -> str | None:
    """What makes `actual` differ from `expected` in column names, order or types (metadata and nullability
    aside), or None when they agree; columns in `optional` may be absent (`with_absent_columns` adds them)."""
    expected = pa.schema([field for field in expected if field.name in actual.names or field.name not in optional])
    found = [(field.name, field.type) for field in actual]
    wanted = [(field.name, field.type) for field in expected]
    if found == wanted:
        return None
    if [name for name, _ in found] != expected.names:
        return f"has columns {actual.names}, not {expected.names}"
    differing = [f"{name} is {type_} not {dict(wanted)[name]}" for name, type_ in found if dict(wanted)[name] != type_]
    return "has column types that differ: " + "; ".join(differing)


def with_absent_columns(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """`table` in `schema`, nullable columns it lacks added as nulls (objects written before those columns existed)."""
    columns = [
        table[field.name] if field.name in table.column_names else pa.nulls(len(table), field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def with_later_columns(table: pa.Table) -> pa.Table:
    """A stored table as today's schema has it: a forecast object of an earlier release, which lacks some of
    `LATER_FORECAST_COLUMNS`, in `FORECAST_SCHEMA` with those as nulls; any other table as it is. Every reader
    of stored objects applies this one rule."""
    if schema_mismatch(table.schema, FORECAST_SCHEMA, optional=LATER_FORECAST_COLUMNS) is None:
        return with_absent_columns(table, FORECAST_SCHEMA)
    return table


def conform_frame(frame: pd.DataFrame, schema: pa.Schema, what: str) -> pd.DataFrame:
    """`conform` as a pandas frame in the schema's column order and dtypes."""
    return conform(frame, schema, what).to_pandas()


def empty_frame(schema: pa.Schema) -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return schema.empty_table().to_pandas()


def series_frame(pairs: Sequence[tuple[int, int]]) -> pd.DataFrame:
    """(area, consumer_type) pairs as a frame in the canonical dtypes."""
    return pd.DataFrame(list(pairs), columns=SERIES_KEY).astype(SERIES_DTYPES)


def de35_series() -> pd.DataFrame:
    """The 76 (area, consumer_type) series that ConsumptionDE35Hour publishes every hour."""
    return series_frame([(area, code) for area in DE35_AREAS for code in DE35_CONSUMER_TYPES])


def empty_consumption_frame() -> pd.DataFrame:
    """A zero-row frame with the canonical consumption columns and dtypes."""
    return empty_frame(CONSUMPTION_SCHEMA)
