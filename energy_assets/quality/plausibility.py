"""Plausibility: a value far from its own series' recent level is refused before the upsert.

Each (area, consumer_type) series is judged against its own reference: its values in the
`REFERENCE_DAYS` days before the window (read once per run from the feature group) and its values in
the window itself, so that a first backfill, with no history yet, is judged against the batch's own
values. A value is implausible when 1 + value (kWh) lies more than `factor` times above or below
1 + the median of the reference (compared in log(1 + kWh): a factor either way, and a zero is as far
below a level of 1,000 kWh as 1,000,000 kWh is above it).

- The median holds as long as most of a series' reference is sound: one 1e300, a run of zeros or a
  unit error in a batch does not move it.
- What zero means: a real zero in a series whose level is near zero, so a zero passes in a series
  whose reference median is below `factor` - 1 kWh (29 kWh by default) and in a series that is zero
  throughout; in a series whose recent level is far above that, a zero is a missing value published
  as 0 and is refused like any other implausible value.
- The default factor, 30, was chosen on the real extract's hours before its held-out last 7 days
  (benchmarks/plausibility_thresholds.py): the largest genuine distance from a series' median there
  is a factor of 16.5 (street lighting, 450, which swings x22 within a day, and the Christmas
  holidays), so 30 refuses none of its rows while still refusing absurd values, zeros in series
  above 29 kWh, unit errors (x1000) and decimal shifts of x100. A x10 decimal shift is not caught.
- A genuine level change is stored by naming its series in `accepted` for the runs that hold it
  (the asset's run config `accept_level_change`), until the new level fills half of the reference
  (about two weeks of hours).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from energy_assets.schema import AREA, CONSUMER_TYPE, DATETIME, SERIES_KEY, TARGET

# How far back the reference reaches: four weekly cycles, longer than the Christmas holidays.
REFERENCE_DAYS = 28
DEFAULT_FACTOR = 30.0
REFERENCE_MEDIAN = "reference_median_kwh"
REFERENCE_VALUES = "reference_values"
TIMES_MEDIAN = "times_reference_median"


def series_name(area: int, consumer_type: int) -> str:
    """How a series is named in messages and in the accepted list, e.g. 1/111."""
    return f"{area}/{consumer_type}"


def parse_series_names(names: Iterable[str]) -> frozenset[tuple[int, int]]:
    """Series named as `area/consumer_type` (e.g. 1/111); `ValueError` naming an entry that is not one."""
    series = set()
    for name in names:
        parts = str(name).split("/")
        try:
            area, consumer_type = (int(part) for part in parts)
        except ValueError:
            raise ValueError(f"{name!r} is not a series named as area/consumer_type, e.g. '1/111'") from None
        series.add((area, consumer_type))
    return frozenset(series)


@dataclass(frozen=True)
class Plausibility:
    """How far from its series' reference median a value may lie, and the series exempt from the rule."""

    factor: float = DEFAULT_FACTOR
    accepted: frozenset[tuple[int, int]] = field(default_factory=frozenset)

    def __post_init__(self):
        if not np.isfinite(self.factor) or self.factor <= 1:
            raise ValueError(f"the plausibility factor must be a finite number above 1, got {self.factor}")

    def implausible_rows(self, rows: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
        """The rows whose consumption is implausible for their series, with the reference's median (kWh),
        how many values it has, and how many times its median the value is (1 + kWh each).

        `rows` and `history` hold canonical columns (typed or not); only finite, non-negative values with
        a series and an hour are judged or referred to: the other rules name the rest.
        """
        judged = _usable(rows)
        reference = judged if history is None or history.empty else pd.concat([_usable(history), judged])
        if judged.empty:
            return rows.iloc[0:0].assign(**{REFERENCE_MEDIAN: [], REFERENCE_VALUES: [], TIMES_MEDIAN: []})
        logs = np.log1p(reference[TARGET])
        by_series = logs.groupby([reference[AREA], reference[CONSUMER_TYPE]])
        levels = pd.DataFrame({"median_log": by_series.median(), REFERENCE_VALUES: by_series.size()})
        levels.index.names = SERIES_KEY
        keyed = judged.join(levels, on=SERIES_KEY)
        distance = np.log1p(keyed[TARGET]) - keyed["median_log"]
        exempt = pd.MultiIndex.from_frame(keyed[SERIES_KEY]).isin(list(self.accepted)) if self.accepted else False
        implausible = (distance.abs() > np.log(self.factor)) & ~exempt
        found = keyed.loc[implausible]
        return rows.loc[found.index].assign(
            **{
                REFERENCE_MEDIAN: np.expm1(found["median_log"]),
                REFERENCE_VALUES: found[REFERENCE_VALUES],
                TIMES_MEDIAN: np.exp(distance[implausible]),
            }
        )


def _usable(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with an hour, a whole-number series and a finite consumption >= 0, the series as int64."""
    values = pd.to_numeric(frame[TARGET], errors="coerce")
    areas = pd.to_numeric(frame[AREA], errors="coerce")
    codes = pd.to_numeric(frame[CONSUMER_TYPE], errors="coerce")
    usable = frame[DATETIME].notna() & np.isfinite(values) & (values >= 0) & areas.notna() & codes.notna()
    usable &= (areas % 1 == 0) & (codes % 1 == 0)
    return pd.DataFrame(
        {AREA: areas[usable].astype("int64"), CONSUMER_TYPE: codes[usable].astype("int64"), TARGET: values[usable]},
        index=frame.index[usable],
    )
