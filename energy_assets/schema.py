"""Canonical schema of consumption rows and forecasts, shared by every layer."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

DATETIME = "datetime_utc"
AREA = "area"
CONSUMER_TYPE = "consumer_type"
TARGET = "energy_consumption"
SERIES_KEY = [AREA, CONSUMER_TYPE]
CONSUMPTION_COLUMNS = [DATETIME, AREA, CONSUMER_TYPE, TARGET]

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

CONSUMPTION_SCHEMA = pa.schema(
    [
        pa.field(DATETIME, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(AREA, pa.int8(), nullable=False),
        pa.field(CONSUMER_TYPE, pa.int32(), nullable=False),
        pa.field(TARGET, pa.float64(), nullable=False),
    ]
)
CONSUMPTION_DTYPES: dict[str, str] = {
    DATETIME: "datetime64[us, UTC]",
    AREA: "int8",
    CONSUMER_TYPE: "int32",
    TARGET: "float64",
}

ISSUED_AT = "issued_at"
HORIZON = "horizon"
FORECAST = "energy_consumption_forecast"
MODEL_VERSION = "model_version"
FORECAST_COLUMNS = [AREA, CONSUMER_TYPE, ISSUED_AT, DATETIME, HORIZON, FORECAST, MODEL_VERSION]
FORECAST_SCHEMA = pa.schema(
    [
        pa.field(AREA, pa.int8(), nullable=False),
        pa.field(CONSUMER_TYPE, pa.int32(), nullable=False),
        pa.field(ISSUED_AT, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(DATETIME, pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field(HORIZON, pa.int16(), nullable=False),
        pa.field(FORECAST, pa.float64(), nullable=False),
        pa.field(MODEL_VERSION, pa.int32(), nullable=False),
    ]
)

FORECAST_HORIZON_HOURS = 24

FEATURE_GROUP_NAME = "energy_consumption_denmark"
MODEL_NAME = "energy_consumption_forecaster"


def de35_series() -> pd.DataFrame:
    """The 76 (area, consumer_type) series that ConsumptionDE35Hour publishes every hour."""
    return pd.DataFrame(
        [(area, code) for area in DE35_AREAS for code in DE35_CONSUMER_TYPES], columns=SERIES_KEY
    ).astype({AREA: "int8", CONSUMER_TYPE: "int32"})


def empty_consumption_frame() -> pd.DataFrame:
    """A zero-row frame with the canonical columns and dtypes."""
    return CONSUMPTION_SCHEMA.empty_table().to_pandas()


def to_utc_hour(value) -> pd.Timestamp:
    """A timestamp as a tz-aware UTC pandas Timestamp; naive values are taken as UTC."""
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
