"""Turning a source's columns into the canonical consumption frame, and cutting it to a window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from energy_assets.timeline import DANISH_TIME_ZONE, to_utc_hour
from energy_assets.schema import (
    AREA,
    AREA_CODES,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    CONSUMPTION_DTYPES,
    DATETIME,
    TARGET,
)
from energy_assets.sources.errors import SourceFormatError

# Column names of the Energi Data Service dataset ConsumptionDE35Hour (API and its CSV download).
HOUR_UTC = "HourUTC"
# Optional beside HourUTC: the same hour as Danish wall-clock time; where present, the two must agree.
HOUR_DK = "HourDK"
PRICE_AREA = "PriceArea"
DE35_CODE = "ConsumerType_DE35"
TOTAL_CON = "TotalCon"
DE35_COLUMNS = [HOUR_UTC, PRICE_AREA, DE35_CODE, TOTAL_CON]

# How many offending values an error message quotes.
_QUOTED_VALUES = 5


@dataclass(frozen=True)
class RowOrigin:
    """Where parsed rows come from, so an error can point at the offending line or record."""

    where: str
    first_line: int | None = None

    def locate(self, positions: np.ndarray) -> str:
        """The first offending rows, as file lines when known, else as 0-based record numbers."""
        shown = positions[:_QUOTED_VALUES]
        if self.first_line is None:
            return "records " + ", ".join(str(p) for p in shown)
        return "lines " + ", ".join(str(p + self.first_line) for p in shown)


def window_bounds(start, end) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The half-open window [start, end) as UTC timestamps; an empty or reversed window is an error."""
    start_utc, end_utc = to_utc_hour(start), to_utc_hour(end)
    if start_utc >= end_utc:
        raise ValueError(f"empty window: start {start_utc} is not before end {end_utc}")
    return start_utc, end_utc


def missing_columns(present, required) -> list[str]:
    """The required columns that are not present, in the required order."""
    present = set(present)
    return [column for column in required if column not in present]


def require_columns(present, required, origin: RowOrigin) -> None:
    """Raise naming the missing columns unless every required column is present."""
    missing = missing_columns(present, required)
    if missing:
        raise SourceFormatError(
            f"{origin.where}: missing column(s) {missing}; expected {list(required)}, found {list(present)}"
        )


def _reject(bad: np.ndarray, values: pd.Series, column: str, problem: str, origin: RowOrigin) -> None:
    positions = np.flatnonzero(bad)
    if positions.size:
        examples = [values.iloc[p] for p in positions[:_QUOTED_VALUES]]
        raise SourceFormatError(
            f"{origin.where}: {positions.size} {problem} in column {column!r} at "
            f"{origin.locate(positions)}: {examples!r}"
        )


def _reject_nulls(values: pd.Series, column: str, origin: RowOrigin) -> None:
    _reject(values.isna().to_numpy(), values, column, "empty value(s)", origin)


def parse_hours(values: pd.Series, column: str, origin: RowOrigin) -> pd.Series:
    """ISO 8601 hours as datetime64[us, UTC], each value on its own terms (`utc_times`); an empty or
    unparseable value is an error naming the rows."""
    _reject_nulls(values, column, origin)
    parsed = utc_times(values)
    _reject(parsed.isna().to_numpy(), values, column, "unparseable timestamp(s)", origin)
    return parsed.astype(CONSUMPTION_DTYPES[DATETIME])


def utc_times(values: pd.Series) -> pd.Series:
    """Times as UTC, each value on its own terms: one with an offset in that offset, one without in UTC
    (a vectorized ISO 8601 parse reads every value after the first offset in it); NaT where a value is
    empty or not ISO 8601."""
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = pd.DatetimeIndex(values)
        return pd.Series(stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC"), index=values.index)
    instants, walls = _parse_iso_times(values)
    return instants.fillna(walls.dt.tz_localize("UTC"))


def _parse_iso_times(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Per value, parsed on its own terms: (the UTC instant of a value with an offset, NaT otherwise;
    the wall time of a value without one, NaT otherwise); both NaT for a value that is not ISO 8601."""
    codes, uniques = pd.factorize(values)
    parsed = [_iso_time(value) for value in uniques]
    # One NaT more at the end, for the empty values that factorize codes as -1.
    instants = pd.DatetimeIndex([p if p is not None and p.tzinfo is not None else pd.NaT for p in parsed] + [pd.NaT], tz="UTC")
    walls = pd.DatetimeIndex([p if p is not None and p.tzinfo is None else pd.NaT for p in parsed] + [pd.NaT])
    return (
        pd.Series(instants.take(codes), index=values.index),
        pd.Series(walls.take(codes), index=values.index),
    )


def _iso_time(value) -> pd.Timestamp | None:
    """One ISO 8601 time: in UTC when it has an offset, naive wall time when it has none, None when it is not ISO 8601."""
    if isinstance(value, (datetime, np.datetime64)):
        stamp = pd.Timestamp(value)
    elif isinstance(value, str):
        try:
            stamp = pd.Timestamp(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    else:
        return None
    return stamp if stamp.tzinfo is None else stamp.tz_convert("UTC")


def check_danish_hours(frame: pd.DataFrame, hours: pd.Series, origin: RowOrigin) -> None:
    """Refuse rows whose HourDK is not their HourUTC (parsed as `hours`) in Danish time, with that date's offset.

    A local value without an offset is compared as wall-clock time; one with an offset as an instant.
    """
    local_values = frame[HOUR_DK]
    _reject_nulls(local_values, HOUR_DK, origin)
    instants, walls = _parse_iso_times(local_values)
    _reject((instants.isna() & walls.isna()).to_numpy(), local_values, HOUR_DK, "unparseable timestamp(s)", origin)
    utc = pd.Series(pd.DatetimeIndex(hours).tz_convert("UTC"), index=local_values.index)
    danish_walls = utc.dt.tz_convert(DANISH_TIME_ZONE).dt.tz_localize(None)
    disagree = np.where(instants.notna(), instants != utc, walls != danish_walls)
    positions = np.flatnonzero(disagree)
    if positions.size:
        examples = [
            f"{HOUR_UTC} {frame[HOUR_UTC].iloc[p]!r} (read as {utc.iloc[p]:%Y-%m-%d %H:%M} UTC, "
            f"{danish_walls.iloc[p]:%Y-%m-%d %H:%M} in Denmark) vs {HOUR_DK} {local_values.iloc[p]!r}"
            for p in positions[:_QUOTED_VALUES]
        ]
        raise SourceFormatError(
            f"{origin.where}: {positions.size} row(s) whose {HOUR_UTC} and {HOUR_DK} disagree ({HOUR_DK} must be "
            f"{HOUR_UTC} in Danish time, {DANISH_TIME_ZONE}) at {origin.locate(positions)}: {'; '.join(examples)}"
        )


def _as_floats(values: pd.Series) -> pd.Series:
    """Floats, NaN where a value is empty or not a number."""
    try:
        # The fast path: clean text converts in one vectorized call.
        return pd.Series(np.asarray(values, dtype="float64"), index=values.index)
    except (TypeError, ValueError):
        return pd.to_numeric(values, errors="coerce").astype("float64")


def parse_integers(values: pd.Series, column: str, dtype: str, origin: RowOrigin) -> pd.Series:
    """Whole numbers of the given dtype; anything else (a boolean too) is an error naming the rows."""
    _reject_nulls(values, column, origin)
    _reject(_is_boolean(values), values, column, "boolean value(s) where a number belongs", origin)
    numbers = _as_floats(values)
    info = np.iinfo(dtype)
    bad = numbers.isna() | (numbers % 1 != 0) | (numbers < info.min) | (numbers > info.max)
    _reject(bad.to_numpy(), values, column, f"value(s) that are not {dtype} integers", origin)
    return numbers.astype(dtype)


def _is_boolean(values: pd.Series) -> np.ndarray:
    """Per value: a boolean, which numpy would silently read as 1.0 or 0.0."""
    if pd.api.types.is_bool_dtype(values):
        return values.notna().to_numpy()
    if values.dtype == object:
        return np.fromiter((isinstance(value, (bool, np.bool_)) for value in values), dtype=bool, count=len(values))
    return np.zeros(len(values), dtype=bool)


def parse_numbers(values: pd.Series, column: str, origin: RowOrigin) -> pd.Series:
    """Finite floats; an empty value stays NaN (validation judges it); a boolean, a non-number or an
    infinity (`inf`, or `1e400`, which overflows to it) is an error naming the rows."""
    _reject(_is_boolean(values), values, column, "boolean value(s) where a number belongs", origin)
    numbers = _as_floats(values)
    _reject((numbers.isna() & values.notna()).to_numpy(), values, column, "non-numeric value(s)", origin)
    _reject(np.isinf(numbers.to_numpy()), values, column, "infinite value(s)", origin)
    return numbers


def map_known(values: pd.Series, mapping: dict, column: str, dtype: str, origin: RowOrigin) -> pd.Series:
    """Values looked up in a mapping; values it lacks are an error that names them and where they are."""
    mapped = values.map(mapping)
    unknown = mapped.isna().to_numpy()
    if unknown.any():
        names = sorted(set(values[unknown].astype(str)))
        known = sorted(mapping)
        raise SourceFormatError(
            f"{origin.where}: unknown {column} value(s) {names[:_QUOTED_VALUES]} at "
            f"{origin.locate(np.flatnonzero(unknown))}; known: {known[:10]}{' ...' if len(known) > 10 else ''}"
        )
    return mapped.astype(dtype)


def parse_area_names(values: pd.Series, column: str, origin: RowOrigin) -> pd.Series:
    """Price-area names (DK, DK1, DK2) as int8 area codes; an unknown name is an error."""
    _reject_nulls(values, column, origin)
    return map_known(values.astype(str).str.strip(), AREA_CODES, column, CONSUMPTION_DTYPES[AREA], origin)


def parse_areas(values: pd.Series, column: str, origin: RowOrigin) -> pd.Series:
    """Areas given either as names (DK1) or as codes (1)."""
    if pd.api.types.is_numeric_dtype(values) or values.dropna().astype(str).str.isdigit().all():
        return parse_integers(values, column, CONSUMPTION_DTYPES[AREA], origin)
    return parse_area_names(values, column, origin)


def canonical_frame(hours: pd.Series, areas: pd.Series, consumer_types: pd.Series, energy: pd.Series) -> pd.DataFrame:
    """Assemble parsed columns into a frame with the canonical column order and dtypes."""
    frame = pd.DataFrame(
        {
            DATETIME: hours.array,
            AREA: areas.array,
            CONSUMER_TYPE: consumer_types.array,
            TARGET: energy.array,
        },
        columns=CONSUMPTION_COLUMNS,
    )
    return frame.astype(CONSUMPTION_DTYPES)


def _from_columns(frame: pd.DataFrame, names: list[str], parse_area, origin: RowOrigin) -> pd.DataFrame:
    """Canonical rows from the four columns named (hour, area, consumer type, consumption)."""
    require_columns(frame.columns, names, origin)
    hour, area, code, value = names
    return canonical_frame(
        parse_hours(frame[hour], hour, origin),
        parse_area(frame[area], area, origin),
        parse_integers(frame[code], code, CONSUMPTION_DTYPES[CONSUMER_TYPE], origin),
        parse_numbers(frame[value], value, origin),
    )


def from_de35_columns(frame: pd.DataFrame, origin: RowOrigin) -> pd.DataFrame:
    """Canonical rows from the ConsumptionDE35Hour columns (HourUTC, PriceArea, ConsumerType_DE35, TotalCon),
    each HourUTC checked against HourDK where that column is present."""
    rows = _from_columns(frame, DE35_COLUMNS, parse_area_names, origin)
    if HOUR_DK in frame.columns:
        check_danish_hours(frame, rows[DATETIME], origin)
    return rows


def from_canonical_columns(frame: pd.DataFrame, origin: RowOrigin) -> pd.DataFrame:
    """Canonical rows from columns already named canonically, whatever their stored types."""
    return _from_columns(frame, CONSUMPTION_COLUMNS, parse_areas, origin)


def cut_to_window(frame: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Rows with start <= datetime_utc < end, sorted by datetime_utc, area, consumer_type (duplicates kept)."""
    inside = frame[(frame[DATETIME] >= start) & (frame[DATETIME] < end)]
    return inside.sort_values([DATETIME, AREA, CONSUMER_TYPE], kind="stable").reset_index(drop=True)
