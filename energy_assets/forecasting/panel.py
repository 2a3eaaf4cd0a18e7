"""Many time series as one (series x time) array on a regular time grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from energy_assets import schema
from energy_assets.timeline import HOUR


class InsufficientHistoryError(ValueError):
    """Too few past hours to train or to forecast; says how many are needed and how many exist."""

    def __init__(self, needed: int, available: int, purpose: str, missing_hours: pd.DatetimeIndex | None = None):
        self.needed = needed
        self.available = available
        self.missing_hours = missing_hours  # the hours it needs that no series has, when known
        super().__init__(f"{purpose} needs {needed} hours of history; only {available} available")


@dataclass(frozen=True)
class Panel:
    """Values of every series on one regular grid; NaN where a series has no observation."""

    keys: pd.Index  # one entry per series (a MultiIndex for hierarchical data)
    grid: pd.Index  # regular time points, oldest first
    values: np.ndarray  # float64, shape (len(keys), len(grid))
    name: str  # the target column's name

    @classmethod
    def from_sktime(cls, y: pd.DataFrame | pd.Series) -> Panel:
        """A panel from sktime data: a single series, or a (key levels..., time) MultiIndex frame."""
        frame = y.to_frame() if isinstance(y, pd.Series) else y
        if frame.shape[1] != 1:
            raise ValueError(f"expected one target column, got {list(frame.columns)}")
        name = frame.columns[0]
        column = frame.iloc[:, 0].astype("float64")
        if isinstance(frame.index, pd.MultiIndex):
            wide = column.unstack(level=-1)
        else:
            wide = column.to_frame().T.set_axis(pd.Index([name]), axis=0)
        grid = regular_grid(wide.columns)
        wide = wide.reindex(columns=grid)
        return cls(keys=wide.index, grid=grid, values=wide.to_numpy(dtype="float64"), name=name)

    @classmethod
    def from_long(cls, frame: pd.DataFrame) -> Panel:
        """A panel of the canonical long frame (datetime_utc, area, consumer_type, energy_consumption)."""
        missing = [c for c in schema.CONSUMPTION_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"consumption frame lacks columns {missing}")
        if frame.empty:
            raise ValueError("consumption frame has no rows")
        wide = frame.pivot(index=[schema.AREA, schema.CONSUMER_TYPE], columns=schema.DATETIME, values=schema.TARGET)
        grid = regular_grid(wide.columns)
        values = wide.reindex(columns=grid).to_numpy(dtype="float64")
        return cls(keys=wide.index, grid=grid, values=values, name=schema.TARGET)

    def until(self, end: int) -> Panel:
        """The panel's points before grid position `end`, for the series with an observation among them."""
        values = self.values[:, :end]
        observed = ~np.isnan(values).all(axis=1)
        return Panel(keys=self.keys[observed], grid=self.grid[:end], values=values[observed], name=self.name)

    def gaps_filled(self) -> np.ndarray:
        """Values with each gap holding the last observation before it (causal: no look-ahead)."""
        return pd.DataFrame(self.values).ffill(axis=1).to_numpy()

    def position(self, times: pd.Index) -> np.ndarray:
        """Grid positions of `times`; ValueError naming those not on the grid."""
        positions = self.grid.get_indexer(times)
        if (positions < 0).any():
            outside = list(times[positions < 0][:5])
            raise ValueError(
                f"{int((positions < 0).sum())} times are not hours of the history grid "
                f"{self.grid[0]} .. {self.grid[-1]}, e.g. {outside}"
            )
        return positions

    @property
    def key_names(self) -> tuple[str, ...]:
        """Names of the key levels; unnamed levels become level_<i>."""
        return tuple(
            str(name) if name is not None else f"level_{i}" for i, name in enumerate(self.keys.names)
        )

    def origin_frame(self, origins: pd.Index, values: np.ndarray, time_name: str) -> pd.DataFrame:
        """Long frame of (series, origins, horizon) `values` issued at grid times `origins`.

        One row per series, origin and step: key columns, issued_at, `time_name`, horizon, value.
        """
        n_series, n_origins, horizon = values.shape
        steps = np.arange(1, horizon + 1)
        targets = extend_grid(self.grid, horizon)[(self.position(origins)[:, None] + steps).ravel()]
        keys = self.keys.repeat(n_origins * horizon)
        frame = pd.DataFrame({name: keys.get_level_values(i) for i, name in enumerate(self.key_names)})
        # Tiling positions, not times: numpy would turn time zone-aware times into objects, one at a time.
        frame[schema.ISSUED_AT] = origins[np.tile(np.arange(n_origins).repeat(horizon), n_series)]
        frame[time_name] = targets[np.tile(np.arange(len(targets)), n_series)]
        frame[schema.HORIZON] = np.tile(steps, n_series * n_origins).astype("int16")
        frame[self.name] = values.ravel()
        return frame


def to_sktime(frame: pd.DataFrame) -> pd.DataFrame:
    """The canonical long frame as sktime hierarchical data: (area, consumer_type, datetime_utc) index."""
    return (
        frame.set_index([schema.AREA, schema.CONSUMER_TYPE, schema.DATETIME])[[schema.TARGET]]
        .sort_index()
    )


def regular_grid(times: pd.Index) -> pd.Index:
    """Every time point from the first to the last of `times`, at their smallest spacing."""
    times = times.sort_values()
    if isinstance(times, pd.PeriodIndex):
        return pd.period_range(times[0], times[-1], freq=times.freq)
    if len(times) < 2:
        return times
    step = np.diff(times.to_numpy()).min()
    if isinstance(times, pd.DatetimeIndex):
        return pd.date_range(times[0], times[-1], freq=pd.Timedelta(step), name=times.name)
    return pd.Index(np.arange(times[0], times[-1] + step, step), name=times.name)


def extend_grid(grid: pd.Index, steps: int) -> pd.Index:
    """`grid` followed by its next `steps` time points."""
    if isinstance(grid, pd.PeriodIndex):
        return grid.append(pd.period_range(grid[-1] + 1, periods=steps, freq=grid.freq))
    step = grid[1] - grid[0] if len(grid) > 1 else 1
    if isinstance(grid, pd.DatetimeIndex):
        step = step if len(grid) > 1 else HOUR
        return grid.append(pd.date_range(grid[-1] + step, periods=steps, freq=step))
    return pd.Index(np.concatenate([grid.to_numpy(), grid[-1] + step * np.arange(1, steps + 1)]))
