"""The hours of its history that a forecast or a training row reads and its series lacks, and the rule for them.

The model's features read the history forward-filled (`Panel.gaps_filled`): a missing hour reads as the
last observed one before it. That fill is never silent:

- A training row whose features read a missing hour is left out of the fit (`features.training_rows`;
  `training_gaps` says how many per series, and the registered model records them).
- A forecast issued at H for a series reads the hours `forecast_reads` gives, H included. When the series
  lacks more than `MAX_FILLED_HOURS` of them, or the oldest of them (whose fill would come from before the
  hours the forecast reads, so its value would depend on how much history a run happened to read), the
  forecast is refused: that series gets no rows for H, the others are forecast as usual, and the forecasts
  asset's check lists it. When it lacks 1 to `MAX_FILLED_HOURS`, it is forecast from the filled history and
  every row it stores carries that count in `history_hours_missing` (0 for a forecast that read no filled
  hour). The threshold is measured on the real extract (docs/forecaster.md, "Gaps in a series' history").
- Calibration and validation score only the forecasts the rule issues.
- An issue hour that no series has, or a history with none of the hours a forecast reads, is not a gap but
  features never materialized: `training.forecasts_and_gaps` raises `InsufficientHistoryError` naming them.

The interval scale (`calibration.seasonal_scale`) reads the raw values and leaves missing ones out of its
mean; it fills nothing, so its hours are not counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_assets import schema
from energy_assets.forecasting.panel import Panel
from energy_assets.timeline import HOUR, hour_key

# Missing hours a forecast may read and still be issued (flagged); more and it is refused. Chosen with
# `benchmarks/history_gaps.py` on the real extract before its held-out week (docs/forecaster.md, "Gaps in a series' history").
MAX_FILLED_HOURS = 4
REFUSED = "refused"


def forecast_reads(row_reads: Sequence[int], horizon: int) -> np.ndarray:
    """Hours back from an issue hour (0: the issue hour) whose observed values a recursive forecast of
    `horizon` steps reads, given the steps back one feature row reads (`FeatureLayout.reads`): step s reads
    back k from its own point, an observed value when k >= s; the rest are the recursion's own forecasts."""
    back = np.asarray(row_reads, dtype="int64")[None, :] - np.arange(1, horizon + 1)[:, None]
    return np.unique(back[back >= 0])


def missing_reads(values: np.ndarray, positions: np.ndarray, back: Sequence[int]) -> np.ndarray:
    """(series, positions) count of the points `back` steps before each position that are NaN in
    (series, points) `values`; points before the first count as missing."""
    positions = np.asarray(positions, dtype="int64")
    prefix = np.pad(np.cumsum(np.isnan(values), axis=1), ((0, 0), (1, 0)))
    counts = np.zeros((len(values), len(positions)), dtype="int64")
    # `back` is a few runs of consecutive steps: each run is two lookups of the running count per position.
    for low, high in _runs(back):
        first, last = positions - high, positions - low  # oldest and newest point the run reads
        before = np.clip(-first, 0, high - low + 1)
        counts += prefix[:, np.clip(last + 1, 0, None)] - prefix[:, np.clip(first, 0, None)] + before
    return counts


def issue_rule(values: np.ndarray, positions: np.ndarray, back: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(series, positions) missing hours read by forecasts issued at grid `positions` of (series, points)
    `values` that read the steps `back` (`forecast_reads`), and where the rule refuses them: more than
    `MAX_FILLED_HOURS` missing, or the oldest step read missing."""
    counts = missing_reads(values, positions, back)
    oldest = np.asarray(positions, dtype="int64") - int(np.max(back))
    oldest_missing = (oldest < 0)[None, :] | np.isnan(values[:, np.clip(oldest, 0, None)])
    return counts, (counts > MAX_FILLED_HOURS) | oldest_missing


def training_gaps(panel: Panel, first_target: int, back: Sequence[int]) -> pd.DataFrame:
    """Per series with any: how many training rows (observed targets from grid position `first_target` on)
    read a missing value through their features, and the missing hours they read (`hour_ranges` text)."""
    positions = np.arange(first_target, len(panel.grid))
    reading = (missing_reads(panel.values, positions, back) > 0) & ~np.isnan(panel.values[:, positions])
    series, at = np.nonzero(reading)
    read = _missing_read(panel, series, positions[at], back)
    table = _key_frame(panel.keys, panel.key_names)
    table["rows_left_out"] = reading.sum(axis=1).astype("int64")
    table["missing_hours"] = [hour_ranges(panel.grid[row]) for row in read]
    return table[table["rows_left_out"] > 0].reset_index(drop=True)


@dataclass(frozen=True)
class HistoryGaps:
    """Every (series, issue hour) whose forecast reads a missing hour, and the missing hours read."""

    issues: pd.DataFrame  # key columns, issued_at, history_hours_missing, refused
    hours: pd.DataFrame  # key columns, datetime_utc: one row per missing hour such a forecast reads

    @classmethod
    def of(cls, panel: Panel, origins: pd.Index, back: Sequence[int]) -> HistoryGaps:
        """The gaps of forecasts issued at `origins` (hours of `panel.grid`) that read the steps `back`."""
        positions = panel.position(origins)
        counts, refused = issue_rule(panel.values, positions, back)
        series, at = np.nonzero((counts > 0) | refused)
        issues = _key_frame(panel.keys[series], panel.key_names)
        issues[schema.ISSUED_AT] = origins[at]
        issues[schema.HISTORY_HOURS_MISSING] = counts[series, at]
        issues[REFUSED] = refused[series, at]
        series_read, hour_read = np.nonzero(_missing_read(panel, series, positions[at], back))
        hours = _key_frame(panel.keys[series_read], panel.key_names)
        hours[schema.DATETIME] = panel.grid[hour_read]
        return cls(issues, hours)

    @classmethod
    def concat(cls, parts: Sequence[HistoryGaps]) -> HistoryGaps:
        """The gaps of several groups of issue hours (e.g. one per model version) as one."""
        return cls(
            pd.concat([part.issues for part in parts], ignore_index=True),
            pd.concat([part.hours for part in parts], ignore_index=True).drop_duplicates(ignore_index=True),
        )

    @property
    def refused(self) -> pd.DataFrame:
        """The (series, issue hour) forecasts not issued."""
        return self.issues[self.issues[REFUSED]]

    @property
    def flagged(self) -> pd.DataFrame:
        """The (series, issue hour) forecasts issued from a filled history."""
        return self.issues[~self.issues[REFUSED]]

    def by_series(self) -> pd.DataFrame:
        """One row per series with a gap: the missing hours its forecasts read, and the issue hours whose
        forecasts were refused and flagged (each as `hour_ranges` text, with counts)."""
        keys = [c for c in self.issues.columns if c not in (schema.ISSUED_AT, schema.HISTORY_HOURS_MISSING, REFUSED)]
        columns = [*keys, "missing_hours", "hours_missing", "issue_hours_refused", REFUSED, "issue_hours_flagged", "flagged"]
        rows = []
        for key, issues in self.issues.groupby(keys, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            hours = self.hours[(self.hours[keys] == key).all(axis=1)][schema.DATETIME]
            refused_at = issues.loc[issues[REFUSED], schema.ISSUED_AT]
            flagged_at = issues.loc[~issues[REFUSED], schema.ISSUED_AT]
            rows.append(
                [*key, hour_ranges(hours), len(hours), hour_ranges(refused_at), len(refused_at),
                 hour_ranges(flagged_at), len(flagged_at)]
            )
        return pd.DataFrame(rows, columns=columns)


def hour_ranges(hours: Iterable[pd.Timestamp]) -> str:
    """Hours as runs of consecutive hours: '2023-01-05 00:00 .. 2023-01-05 23:00 (24 h), 2023-01-07 03:00'."""
    return ", ".join(
        f"{first:%Y-%m-%d %H:%M}" if count == 1 else f"{first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} ({count} h)"
        for first, last, count in _hour_runs(hours)
    )


def partition_ranges(hours: Iterable[pd.Timestamp]) -> str:
    """Hours as hourly partition keys, runs of consecutive hours as Dagster's key ranges:
    '2023-01-05-00:00...2023-01-05-23:00, 2023-01-07-03:00'."""
    return ", ".join(
        hour_key(first) if count == 1 else f"{hour_key(first)}...{hour_key(last)}"
        for first, last, count in _hour_runs(hours)
    )


def _hour_runs(hours: Iterable[pd.Timestamp]) -> list[tuple[pd.Timestamp, pd.Timestamp, int]]:
    """(first, last, count) of each run of consecutive hours, oldest first."""
    hours = pd.DatetimeIndex(sorted(set(hours)))
    if hours.empty:
        return []
    steps = (hours - hours[0]) // HOUR
    return [(hours[0] + first * HOUR, hours[0] + last * HOUR, last - first + 1) for first, last in _runs(steps)]


def _missing_read(panel: Panel, series: np.ndarray, positions: np.ndarray, back: Sequence[int]) -> np.ndarray:
    """(series, points) where a missing value is read by the row of `series[i]` at grid position `positions[i]`."""
    points = positions[:, None] - np.asarray(back, dtype="int64")[None, :]
    inside = points >= 0
    read = np.zeros(panel.values.shape, dtype=bool)
    read[np.repeat(series, points.shape[1])[inside.ravel()], points[inside]] = True
    return read & np.isnan(panel.values)


def _key_frame(keys: pd.Index, names: Sequence[str]) -> pd.DataFrame:
    """The series keys as columns, one per key level."""
    return pd.DataFrame({name: keys.get_level_values(i) for i, name in enumerate(names)})


def _runs(back: Sequence[int]) -> list[tuple[int, int]]:
    """(first, last) of each run of consecutive values of `back`."""
    steps = np.unique(np.asarray(back, dtype="int64"))
    if steps.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(steps) != 1) + 1
    return [(int(run[0]), int(run[-1])) for run in np.split(steps, breaks)]
