"""Consumption rows from a snapshot file: the dataset's own `;` CSV download, a comma CSV, or parquet.

Either layout is accepted in every format: the dataset's columns (HourUTC, PriceArea,
ConsumerType_DE35, TotalCon; HourDK, when present, must be HourUTC in Danish time; other extra columns
are ignored) or the canonical ones (datetime_utc, area, consumer_type, energy_consumption).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from energy_assets.schema import CONSUMPTION_COLUMNS, DATETIME
from energy_assets.sources.canonical import (
    DE35_COLUMNS,
    HOUR_DK,
    RowOrigin,
    cut_to_window,
    from_canonical_columns,
    from_de35_columns,
    missing_columns,
    window_bounds,
)
from energy_assets.sources.errors import EmptySourceError, SourceConfigurationError, SourceFormatError

PARQUET_SUFFIXES = (".parquet", ".pq")


def read_snapshot(path: str | Path) -> pd.DataFrame:
    """Every row of a snapshot file as a canonical frame, in file order."""
    if not str(path).strip():
        raise SourceConfigurationError("no snapshot file given: the file source needs a path")
    path = Path(path)
    if path.is_dir():
        raise SourceConfigurationError(f"snapshot path {path} is a folder, not a file")
    if not path.is_file():
        raise SourceConfigurationError(f"snapshot file not found: {path}")
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            table, origin = _read_parquet(path), RowOrigin(str(path))
        else:
            # Line 1 is the header, so data row i sits on line i + 2.
            table, origin = _read_csv(path), RowOrigin(str(path), first_line=2)
    except OSError as unreadable:
        raise SourceConfigurationError(f"cannot read snapshot file {path}: {unreadable.strerror or unreadable}") from None
    columns = table.column_names
    if not missing_columns(columns, CONSUMPTION_COLUMNS):
        return from_canonical_columns(table.select(CONSUMPTION_COLUMNS).to_pandas(), origin)
    if not missing_columns(columns, DE35_COLUMNS):
        cross_check = [HOUR_DK] if HOUR_DK in columns else []
        return from_de35_columns(table.select(DE35_COLUMNS + cross_check).to_pandas(), origin)
    raise SourceFormatError(
        f"{path}: neither layout found: missing {missing_columns(columns, DE35_COLUMNS)} for the "
        f"dataset layout {DE35_COLUMNS}, or {missing_columns(columns, CONSUMPTION_COLUMNS)} for the "
        f"canonical layout {CONSUMPTION_COLUMNS}; found {columns}"
    )


def snapshot_hours(path: str | Path) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first and last UTC hour a snapshot file holds."""
    hours = _rows_of(path)[DATETIME]
    return hours.min(), hours.max()


def read_window(path: str | Path, start, end) -> pd.DataFrame:
    """The snapshot's rows with start <= datetime_utc < end, sorted; a window it does not cover is an error."""
    start, end = window_bounds(start, end)
    rows = cut_to_window(_rows_of(path), start, end)
    if rows.empty:
        raise EmptySourceError(f"snapshot {path} holds no rows for the window [{start}, {end})")
    return rows


def _rows_of(path: str | Path) -> pd.DataFrame:
    """Every row of the snapshot; a snapshot without any (a header only) is an error."""
    rows = read_snapshot(path)
    if rows.empty:
        raise EmptySourceError(f"snapshot {path} holds no rows at all, only its columns")
    return rows


def _read_parquet(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except PermissionError:
        raise
    except (pa.ArrowException, OSError) as error:
        raise SourceFormatError(f"{path}: not a readable parquet file: {error}") from error


def _read_csv(path: Path) -> pa.Table:
    with path.open("rb") as stream:
        header = stream.readline()
    if not header.strip():
        raise SourceFormatError(f"{path}: empty file, expected a header line")
    _refuse_cut_text(path)
    # The dataset's own download is `;`-separated; anything else is read as comma-separated.
    delimiter = ";" if b";" in header else ","
    try:
        # Every column as text: the canonical parsers then name the offending lines precisely.
        return pa_csv.read_csv(
            path,
            parse_options=pa_csv.ParseOptions(delimiter=delimiter),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in _header_names(header, delimiter)},
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid as error:
        raise SourceFormatError(f"{path}: malformed CSV{_first_ragged_line(path, delimiter)}: {error}") from error


def _refuse_cut_text(path: Path) -> None:
    """A text file whose last line has no line break was cut mid-value (`501535` read as `501`): refuse it."""
    with path.open("rb") as stream:
        stream.seek(-1, 2)
        if stream.read(1) == b"\n":
            return
        stream.seek(0)
        lines = sum(1 for _ in stream)
    raise SourceFormatError(
        f"{path}: truncated: line {lines}, the last, does not end with a line break "
        "(a complete download ends every line with one)"
    )


def _header_names(header: bytes, delimiter: str) -> list[str]:
    return [name.strip().strip('"') for name in header.decode("utf-8-sig").rstrip("\r\n").split(delimiter)]


def _first_ragged_line(path: Path, delimiter: str) -> str:
    """Where the first line with a wrong field count is (pyarrow's message quotes the row, not its line)."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        width = None
        for number, line in enumerate(lines, start=1):
            fields = line.rstrip("\r\n").count(delimiter) + 1
            if width is None:
                width = fields
            elif fields != width and line.strip():
                return f" at line {number} ({fields} fields, header has {width})"
    return ""
