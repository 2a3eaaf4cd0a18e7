"""Forecasts as the `energy-assets` readers give them: a compact table for people, csv, json or parquet for programs."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from energy_assets.schema import (
    AREA,
    AREA_NAMES,
    CONSUMER_TYPE,
    DATETIME,
    FORECAST,
    HISTORY_HOURS_MISSING,
    HORIZON,
    INTERVAL_COVERAGES,
    ISSUED_AT,
    MODEL_NAME,
    MODEL_VERSION,
    interval_column,
)

TABLE = "table"
# The machine formats keep every stored column and value unrounded, as the bucket holds them.
MACHINE_FORMATS = ("csv", "json", "parquet")
FORMATS = (TABLE, *MACHINE_FORMATS)
HOUR_SHOWN = "%Y-%m-%d %H:%M"


def format_of(requested: str | None, output: Path | None) -> str:
    """The format to write: the one asked, else the output file's suffix, else the table; a mismatch is an error."""
    implied = output.suffix.lstrip(".") if output is not None else None
    if requested is None:
        return implied or TABLE
    if output is not None and requested != implied:
        raise ValueError(f"--format {requested} does not match --output {output} (a .{implied} file)")
    return requested


def emit(forecasts: pd.DataFrame, format_: str, output: Path | None) -> None:
    """Print the forecasts, or write them to `output` (its parent folders created), in `format_`."""
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        _write(forecasts, format_, output)
        print(f"wrote {len(forecasts)} rows to {output}", file=sys.stderr)
    elif format_ == "parquet":
        if sys.stdout.isatty():
            raise ValueError("--format parquet writes bytes: redirect them to a file, or give --output FILE.parquet")
        sys.stdout.flush()
        _write(forecasts, format_, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    elif format_ == TABLE:
        print(forecast_table(forecasts))
    else:
        _write(forecasts, format_, sys.stdout)


def _write(forecasts: pd.DataFrame, format_: str, target) -> None:
    if format_ == "parquet":
        forecasts.to_parquet(target, index=False)
    elif format_ == "csv":
        forecasts.to_csv(target, index=False)
    elif format_ == "json":
        forecasts.to_json(target, orient="records", date_format="iso", date_unit="s")
        if hasattr(target, "write"):
            target.write("\n")
    else:
        raise ValueError(f"a table is for reading: --output takes one of {', '.join(f'.{f}' for f in MACHINE_FORMATS)}")


def forecast_table(forecasts: pd.DataFrame, rows: int | None = None) -> str:
    """A header naming the issue hour(s) and model version(s), then one line per series and target hour:
    area by name, target hour, horizon, and the forecast with its intervals in whole kWh (the first
    `rows` lines, or all). Forecasts issued from a history with filled hours say so in the header and
    in a `filled h` column, which the table has only then."""
    issued = sorted(forecasts[ISSUED_AT].unique())
    versions = sorted(int(version) for version in forecasts[MODEL_VERSION].unique())
    series = forecasts[[AREA, CONSUMER_TYPE]].drop_duplicates()
    areas = ", ".join(AREA_NAMES.get(int(code), str(code)) for code in sorted(series[AREA].unique()))
    when = (
        f"issued at {pd.Timestamp(issued[0]):{HOUR_SHOWN}} UTC"
        if len(issued) == 1
        else f"issued at {len(issued)} hours, {pd.Timestamp(issued[0]):{HOUR_SHOWN}} ... {pd.Timestamp(issued[-1]):{HOUR_SHOWN}} UTC"
    )
    header = (
        f"energy_forecasts {when} by model {MODEL_NAME} version {', '.join(map(str, versions))}\n"
        f"{len(series)} series ({areas}) x {forecasts[HORIZON].nunique()} hours ahead, in kWh, rounded "
        f"(--format {', '.join(MACHINE_FORMATS)}: exact values)"
    )
    filled = _filled_hours(forecasts)
    any_filled = bool((filled > 0).any())
    if any_filled:
        flagged = forecasts.loc[filled > 0, [AREA, CONSUMER_TYPE]].drop_duplicates()
        header += (
            f"\n{len(flagged)} series forecast from a history with hours filled ('filled h': {HISTORY_HOURS_MISSING}, "
            "docs/forecaster.md)"
        )
    ordered = forecasts.sort_values([ISSUED_AT, AREA, CONSUMER_TYPE, HORIZON])
    shown = ordered if rows is None else ordered.head(rows)
    columns = {}
    if len(issued) > 1:
        columns["issued (UTC)"] = shown[ISSUED_AT].dt.strftime(HOUR_SHOWN)
    columns["area"] = shown[AREA].map(lambda code: AREA_NAMES.get(int(code), str(code)))
    columns["type"] = shown[CONSUMER_TYPE].astype(str)
    columns["target (UTC)"] = shown[DATETIME].dt.strftime(HOUR_SHOWN)
    columns["h"] = shown[HORIZON].astype(str)
    if any_filled:
        columns["filled h"] = [str(hours) if hours > 0 else "" for hours in filled[shown.index]]
    columns["forecast"] = shown[FORECAST].map(_kwh)
    for coverage in INTERVAL_COVERAGES:
        lower, upper = shown[interval_column("lower", coverage)], shown[interval_column("upper", coverage)]
        columns[f"{coverage:.0%} interval"] = [
            "-" if pd.isna(low) or pd.isna(high) else f"{_kwh(low)} - {_kwh(high)}" for low, high in zip(lower, upper)
        ]
    table = pd.DataFrame(columns).to_string(index=False)
    more = "" if rows is None or rows >= len(ordered) else f"\n... {len(ordered) - rows} more rows"
    return f"{header}\n{table}{more}"


def _filled_hours(forecasts: pd.DataFrame) -> pd.Series:
    """Each row's count of filled history hours (0 where none, or unknown in objects older than the column)."""
    if HISTORY_HOURS_MISSING not in forecasts:
        return pd.Series(0, index=forecasts.index)
    return forecasts[HISTORY_HOURS_MISSING].fillna(0).astype("int64")


def _kwh(value: float) -> str:
    return f"{value:,.0f}"
