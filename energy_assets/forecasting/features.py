"""Feature rows of the global model, computed with array slicing for many rows at once."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from energy_assets.forecasting.history_gaps import missing_reads
from energy_assets.timeline import DANISH_TIME_ZONE, is_danish_holiday

CALENDAR_COLUMNS = ["hour_of_day", "day_of_week", "holiday"]


@dataclass(frozen=True)
class FeatureLayout:
    """Which features the model sees and how the target is scaled."""

    lags: tuple[int, ...]
    windows: tuple[int, ...]
    holiday_lags: tuple[int, ...]  # lags whose holiday flag is a feature: was that lag a normal day?
    level_lags: tuple[int, ...]  # lags whose value relative to the predicted point's own reference is a feature
    scale_window: int  # hours of the trailing mean that scales each row; 0 = no scaling
    reference_lag: int  # > 0: scale by the value this many steps back instead (a seasonal baseline)
    log_target: bool
    key_levels: tuple[str, ...]

    @property
    def history(self) -> int:
        """Past time points one feature row reads."""
        season = self.reference_lag
        reach = [lag + season for lag in self.lags] + [w + season for w in self.windows]
        reach += [*self.holiday_lags, *self.level_lags, 1 if season else self.scale_window]
        return max(reach)

    @property
    def reads(self) -> tuple[int, ...]:
        """Steps back from a predicted point whose values its feature row reads, as `feature_rows` computes them
        (holiday lags read the calendar only): the hours whose absence `history_gaps` counts."""
        season = self.reference_lag
        back = {*self.lags, *self.level_lags}
        back.update(step for w in self.windows for step in range(1, w + 1))
        if season:
            back.update(lag + season for lag in self.lags)
            back.update(step + season for w in self.windows for step in range(1, w + 1))
            back.add(season)
        else:
            back.update(range(1, self.scale_window + 1))
        return tuple(sorted(back))

    @property
    def names(self) -> list[str]:
        """Column names of the feature matrix, in order."""
        return (
            [f"lag_{lag}" for lag in self.lags]
            + [f"level_lag_{lag}" for lag in self.level_lags]
            + [f"mean_{w}" for w in self.windows]
            + [f"std_{w}" for w in self.windows]
            + ["level"]
            + CALENDAR_COLUMNS
            + [f"holiday_lag_{lag}" for lag in self.holiday_lags]
            + [f"key_{level}" for level in self.key_levels]
        )

    @property
    def categorical(self) -> list[str]:
        """Feature names LightGBM treats as categories."""
        return [f"key_{level}" for level in self.key_levels]

    @property
    def scaled(self) -> bool:
        """Whether rows are scaled by a reference level."""
        return bool(self.scale_window or self.reference_lag)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Target values in model space (log1p when the layout says so)."""
        if self.log_target:
            if np.nanmin(values, initial=0.0) < 0:
                raise ValueError("log target transform needs non-negative values; got negative ones")
            return np.log1p(values)
        return values

    def inverse(self, values: np.ndarray) -> np.ndarray:
        """Model-space values back in target units."""
        return np.expm1(values) if self.log_target else values

    def scale(self, values: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Values relative to the row's level: log difference, or relative difference; 0 = the level."""
        if not self.scaled:
            return values
        if self.log_target:
            return values - level
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(level != 0, values / level - 1.0, np.nan)

    def spread(self, std: np.ndarray, level: np.ndarray) -> np.ndarray:
        """A window's standard deviation relative to the row's level (log space is already relative)."""
        if self.scaled and not self.log_target:
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.where(level != 0, std / level, np.nan)
        return std

    def unscale(self, values: np.ndarray, level: np.ndarray) -> np.ndarray:
        """Inverse of `scale`."""
        if not self.scaled:
            return values
        return values + level if self.log_target else (values + 1.0) * level


class WindowStatistics(Protocol):
    """Mean and standard deviation of trailing windows, NaN ignored."""

    def window(self, positions: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation over [p - width, p) for every row and position p."""


class RunningSums:
    """Prefix sums of values, squares and counts: any window is two lookups (for many positions)."""

    def __init__(self, z: np.ndarray):
        observed = ~np.isnan(z)
        filled = np.where(observed, z, 0.0)
        pad = ((0, 0), (1, 0))
        self.total = np.pad(np.cumsum(filled, axis=1), pad)
        self.squares = np.pad(np.cumsum(filled**2, axis=1), pad)
        self.count = np.pad(np.cumsum(observed, axis=1), pad)

    def window(self, positions: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        start = positions - width
        n = self.count[:, positions] - self.count[:, start]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (self.total[:, positions] - self.total[:, start]) / n
            mean_sq = (self.squares[:, positions] - self.squares[:, start]) / n
        mean[n == 0] = np.nan
        return mean, np.sqrt(np.maximum(mean_sq - mean**2, 0.0))


class TrailingWindows:
    """Windows read straight from the values: no extra arrays, cheap for one position at a time."""

    def __init__(self, z: np.ndarray):
        self.z = z  # read at call time, so values written in place are seen

    def window(self, positions: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        block = self.z[:, positions[:, None] + np.arange(-width, 0)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as intended
            return np.nanmean(block, axis=2), np.nanstd(block, axis=2)


def grid_calendar(grid: pd.Index, length: int) -> np.ndarray:
    """`calendar` of the grid's first `length` points (NaN when the grid holds no dates or periods)."""
    times = grid if isinstance(grid, (pd.DatetimeIndex, pd.PeriodIndex)) else None
    return calendar(times, length)


def calendar(times: pd.Index | None, length: int) -> np.ndarray:
    """(length, 3) local hour of day, day of week and public-holiday flag; NaN without datetimes."""
    if times is None:
        return np.full((length, len(CALENDAR_COLUMNS)), np.nan)
    stamps = pd.DatetimeIndex(times.to_timestamp() if isinstance(times, pd.PeriodIndex) else times)
    local = (stamps.tz_localize("UTC") if stamps.tz is None else stamps).tz_convert(DANISH_TIME_ZONE)
    holiday = is_danish_holiday(local.normalize().tz_localize(None))
    return np.column_stack([local.hour, local.dayofweek, holiday]).astype("float64")


def feature_rows(
    layout: FeatureLayout,
    z: np.ndarray,
    statistics: WindowStatistics,
    positions: np.ndarray,
    grid_calendar: np.ndarray,
    offsets: np.ndarray,
    key_codes: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Features to predict z[:, p] for every row and position p, and each row's level.

    `z` (rows, width) is model-space history, `positions` the predicted columns; column p of row i
    is time point offsets[i] + p of `grid_calendar` (time points, 3); `statistics` reads windows
    of `z`; `key_codes` (rows, levels).
    Returns X of shape (rows * len(positions), n_features), row-major, and level (rows, positions).
    """
    rows, n_pos = z.shape[0], len(positions)
    season = layout.reference_lag
    stats = [statistics.window(positions, w) for w in layout.windows]
    if season:
        # Every level-like feature is a deviation from the same hours one season earlier.
        level = z[:, positions - season]
        columns = [layout.scale(z[:, positions - lag], z[:, positions - lag - season]) for lag in layout.lags]
        columns += [layout.scale(z[:, positions - lag], level) for lag in layout.level_lags]
        past = [statistics.window(positions - season, w) for w in layout.windows]
        columns += [layout.scale(mean, before) for (mean, _), (before, _) in zip(stats, past)]
    else:
        if layout.scale_window:
            level, _ = statistics.window(positions, layout.scale_window)
        else:
            level = np.zeros((rows, n_pos))
        columns = [layout.scale(z[:, positions - lag], level) for lag in (*layout.lags, *layout.level_lags)]
        columns += [layout.scale(mean, level) for mean, _ in stats]
    columns += [layout.spread(std, level) for _, std in stats]
    columns.append(level)
    cells = offsets[:, None] + positions[None, :]
    columns += [grid_calendar[cells, c] for c in range(len(CALENDAR_COLUMNS))]
    columns += [grid_calendar[cells - lag, 2] for lag in layout.holiday_lags]
    columns += [np.broadcast_to(key_codes[:, [k]], (rows, n_pos)) for k in range(key_codes.shape[1])]
    return np.stack(columns, axis=-1).reshape(rows * n_pos, len(columns)), level


@dataclass(frozen=True)
class TrainingRows:
    """The rows a model learns from: features, scaled target and sample weight, every row with an observed
    target (and a weight above 0)."""

    X: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    names: list[str]

    def columns(self, names: list[str]) -> np.ndarray:
        """The feature matrix of a layout whose features are a subset of these, in its order."""
        index = [self.names.index(name) for name in names]
        return self.X[:, index]


def training_rows(
    layout: FeatureLayout,
    values: np.ndarray,
    model_space: np.ndarray,
    grid_calendar: np.ndarray,
    key_codes: np.ndarray,
    holiday_weight: float,
) -> TrainingRows:
    """One row per series and grid point that has `layout.history` points before it.

    `values` (series, points) are the raw targets (NaN: missing, never learned), `model_space` the same
    gap-filled and transformed (features read it); `grid_calendar` (points, 3). Target hours that are
    holidays, or whose reference (a holiday lag) was one, weigh `holiday_weight`. Rows whose features read
    a missing value (a fill) are left out (`history_gaps`).
    """
    history, width = layout.history, values.shape[1]
    positions = np.arange(history, width)
    offsets = np.zeros(len(values), dtype="int64")
    X, level = feature_rows(layout, model_space, RunningSums(model_space), positions, grid_calendar, offsets, key_codes)
    target = layout.scale(layout.transform(values)[:, positions], level).ravel()
    special = grid_calendar[positions, 2] > 0
    for lag in layout.holiday_lags:
        special |= grid_calendar[positions - lag, 2] > 0
    weight = np.tile(np.where(special, holiday_weight, 1.0), len(values))
    reads_observed = missing_reads(values, positions, layout.reads) == 0
    keep = np.isfinite(target) & (weight > 0) & reads_observed.ravel()
    if not keep.any():
        raise ValueError("no training row has an observed target and history")
    return TrainingRows(X[keep], target[keep], weight[keep], layout.names)
