"""Deterministic synthetic consumption shaped like ConsumptionDE35Hour: 2 price areas x 38 DE35 codes.

Each code behaves like a kind of consumer (households, industry, offices, ...) with its own
daily, weekly, Danish-holiday and seasonal pattern, read in Danish local time. Noise is a pure
function of (series, hour), so any window gives the same values for the same hour and
generating [a, c) equals concatenating [a, b) and [b, c).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import pandas as pd

from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    CONSUMPTION_DTYPES,
    DATETIME,
    TARGET,
    de35_series,
)
from energy_assets.sources.canonical import window_bounds
from energy_assets.timeline import DANISH_TIME_ZONE, is_danish_holiday

# East of the Great Belt is the smaller half of the load.
DK2_SHARE_OF_DK1 = 0.6


class ConsumerKind(IntEnum):
    """How a consumer type uses electricity over the day, week and year."""

    HOUSEHOLD = 0
    CONTINUOUS = 1
    INDUSTRY = 2
    RETAIL = 3
    OFFICE = 4
    LIGHTING = 5
    MIXED = 6


# Kind and DK1 mean level (kWh per hour) of each DE35 code, loosely after the real extract.
CONSUMER_TYPE_PROFILES: dict[int, tuple[ConsumerKind, float]] = {
    111: (ConsumerKind.HOUSEHOLD, 86_000), 112: (ConsumerKind.HOUSEHOLD, 900),
    119: (ConsumerKind.HOUSEHOLD, 30_000), 121: (ConsumerKind.HOUSEHOLD, 290_000),
    122: (ConsumerKind.HOUSEHOLD, 63_000), 123: (ConsumerKind.HOUSEHOLD, 29_000),
    130: (ConsumerKind.HOUSEHOLD, 32_000), 211: (ConsumerKind.CONTINUOUS, 120_000),
    212: (ConsumerKind.CONTINUOUS, 20_000), 215: (ConsumerKind.CONTINUOUS, 500),
    220: (ConsumerKind.CONTINUOUS, 16_000), 310: (ConsumerKind.INDUSTRY, 69_000),
    320: (ConsumerKind.INDUSTRY, 7_100), 330: (ConsumerKind.INDUSTRY, 12_000),
    340: (ConsumerKind.INDUSTRY, 10_000), 350: (ConsumerKind.INDUSTRY, 50_000),
    360: (ConsumerKind.INDUSTRY, 44_000), 370: (ConsumerKind.INDUSTRY, 13_000),
    381: (ConsumerKind.INDUSTRY, 9_100), 382: (ConsumerKind.INDUSTRY, 40_000),
    390: (ConsumerKind.INDUSTRY, 10_000), 410: (ConsumerKind.RETAIL, 19_000),
    421: (ConsumerKind.RETAIL, 89_000), 422: (ConsumerKind.RETAIL, 48_000),
    431: (ConsumerKind.RETAIL, 23_000), 432: (ConsumerKind.RETAIL, 39_000),
    433: (ConsumerKind.RETAIL, 34_000), 441: (ConsumerKind.CONTINUOUS, 122_000),
    442: (ConsumerKind.OFFICE, 26_000), 443: (ConsumerKind.OFFICE, 31_000),
    444: (ConsumerKind.OFFICE, 14_000), 445: (ConsumerKind.OFFICE, 22_000),
    446: (ConsumerKind.CONTINUOUS, 27_000), 447: (ConsumerKind.OFFICE, 20_000),
    450: (ConsumerKind.LIGHTING, 8_400), 461: (ConsumerKind.OFFICE, 3_500),
    462: (ConsumerKind.OFFICE, 2_900), 999: (ConsumerKind.MIXED, 1_000_000),
}

WORKDAY, SATURDAY, REST_DAY = 0, 1, 2  # a Sunday or a Danish holiday is a rest day


def _hours(points: dict[int, float]) -> np.ndarray:
    """A 24-hour profile through the given (hour, level) points, linear in between, wrapping at midnight."""
    hours = np.array(sorted(points))
    levels = np.array([points[h] for h in hours])
    return np.interp(np.arange(24), np.r_[hours - 24, hours, hours + 24], np.r_[levels, levels, levels])


# Relative level by (day type, local hour) for each kind; lighting follows darkness instead.
_DAILY_PROFILES: dict[ConsumerKind, np.ndarray] = {
    ConsumerKind.HOUSEHOLD: np.stack([
        _hours({3: 0.55, 7: 0.95, 9: 0.8, 13: 0.75, 18: 1.45, 21: 1.2, 23: 0.8}),
        _hours({3: 0.6, 9: 1.0, 12: 1.05, 15: 0.95, 18: 1.5, 21: 1.25, 23: 0.85}),
        _hours({3: 0.6, 9: 1.05, 12: 1.1, 15: 1.0, 18: 1.55, 21: 1.25, 23: 0.8}),
    ]),
    ConsumerKind.CONTINUOUS: np.stack([
        _hours({3: 0.95, 12: 1.06, 20: 1.0}),
        _hours({3: 0.95, 12: 1.02, 20: 0.98}),
        _hours({3: 0.95, 12: 1.0, 20: 0.97}),
    ]),
    ConsumerKind.INDUSTRY: np.stack([
        _hours({3: 0.7, 5: 0.75, 7: 1.15, 14: 1.2, 16: 1.05, 22: 0.9, 23: 0.75}),
        _hours({3: 0.6, 8: 0.7, 14: 0.68, 20: 0.6}),
        _hours({3: 0.45, 12: 0.45, 20: 0.45}),
    ]),
    ConsumerKind.RETAIL: np.stack([
        _hours({4: 0.4, 7: 0.6, 10: 1.15, 17: 1.25, 20: 0.9, 22: 0.5}),
        _hours({4: 0.4, 8: 0.55, 11: 1.1, 16: 1.0, 18: 0.6, 22: 0.45}),
        _hours({4: 0.38, 9: 0.45, 12: 0.7, 16: 0.65, 19: 0.45, 22: 0.4}),
    ]),
    ConsumerKind.OFFICE: np.stack([
        _hours({4: 0.35, 6: 0.45, 8: 1.25, 12: 1.35, 16: 1.15, 18: 0.6, 21: 0.4}),
        _hours({4: 0.35, 12: 0.45, 21: 0.35}),
        _hours({4: 0.33, 12: 0.38, 21: 0.33}),
    ]),
    ConsumerKind.LIGHTING: np.ones((3, 24)),
}
_DAILY_PROFILES[ConsumerKind.MIXED] = (
    0.5 * _DAILY_PROFILES[ConsumerKind.HOUSEHOLD]
    + 0.3 * _DAILY_PROFILES[ConsumerKind.OFFICE]
    + 0.2 * _DAILY_PROFILES[ConsumerKind.INDUSTRY]
)
_PROFILE_TABLE = np.stack([_DAILY_PROFILES[kind] for kind in ConsumerKind])  # kind, day type, hour

# Winter-over-summer swing of each kind (heating and lighting load), peaking mid-January.
_SEASONAL_AMPLITUDE = np.array([0.2, 0.05, 0.04, 0.1, 0.12, 0.0, 0.15])
# Standard deviations of the log noise: one draw per (series, local day), one per (series, hour).
_DAILY_NOISE = np.array([0.05, 0.03, 0.06, 0.05, 0.05, 0.03, 0.03])
_HOURLY_NOISE = np.array([0.03, 0.02, 0.04, 0.03, 0.03, 0.02, 0.015])

# Denmark's day length swings between about 7 h (December) and 17.5 h (June) around a 12:30 local noon.
_LIGHTS_ON, _LIGHTS_OFF_DAYTIME = 1.0, 0.05

_SPLITMIX_GAMMA = np.uint64(0x9E3779B97F4A7C15)
# Four independent streams (two uniforms each for the daily and the hourly draw); salts stay below 4.
_DAY_SALTS, _HOUR_SALTS = (np.uint64(0), np.uint64(1)), (np.uint64(2), np.uint64(3))


def synthetic_series() -> pd.DataFrame:
    """The 76 (area, consumer_type) series the synthetic source publishes every hour."""
    return de35_series()


def synthetic_consumption(start, end) -> pd.DataFrame:
    """Synthetic canonical rows for every whole hour h with start <= h < end, all 76 series."""
    start, end = window_bounds(start, end)
    stamps = pd.date_range(start.ceil("h"), end, freq="h", inclusive="left", unit="us")
    series = synthetic_series()
    codes = series[CONSUMER_TYPE].to_numpy()
    kinds = np.array([CONSUMER_TYPE_PROFILES[int(code)][0] for code in codes])
    levels = np.array([CONSUMER_TYPE_PROFILES[int(code)][1] for code in codes]) * np.where(
        series[AREA].to_numpy() == 2, DK2_SHARE_OF_DK1, 1.0
    )

    local = stamps.tz_convert(DANISH_TIME_ZONE)
    shape_by_kind = _PROFILE_TABLE[:, _day_types(local), local.hour.to_numpy()].T  # hour, kind
    day_of_year = local.dayofyear.to_numpy()
    shape_by_kind[:, ConsumerKind.LIGHTING] = _lighting(local.hour.to_numpy(), day_of_year)
    season = 1 + np.outer(np.cos(2 * np.pi * (day_of_year - 15) / 365.25), _SEASONAL_AMPLITUDE)

    series_keys = (series[AREA].to_numpy().astype(np.uint64) << np.uint64(32)) | codes.astype(np.uint64)
    hour_index = stamps.asi8 // 3_600_000_000
    local_day = (local.tz_localize(None).asi8 // 86_400_000_000).astype(np.int64)
    noise = (
        _normal(local_day, series_keys, _DAY_SALTS) * _DAILY_NOISE[kinds]
        + _normal(hour_index, series_keys, _HOUR_SALTS) * _HOURLY_NOISE[kinds]
    )
    values = (shape_by_kind * season)[:, kinds] * levels * np.exp(noise)

    frame = pd.DataFrame(
        {
            DATETIME: np.repeat(stamps, len(codes)),
            AREA: np.tile(series[AREA].to_numpy(), len(stamps)),
            CONSUMER_TYPE: np.tile(codes, len(stamps)),
            TARGET: values.ravel(),
        },
        columns=CONSUMPTION_COLUMNS,
    )
    return frame.astype(CONSUMPTION_DTYPES)


def _day_types(local: pd.DatetimeIndex) -> np.ndarray:
    """WORKDAY, SATURDAY or REST_DAY of each local hour, Danish public and customary holidays included."""
    dates = local.tz_localize(None).normalize()
    is_holiday = is_danish_holiday(dates)
    weekday = local.dayofweek.to_numpy()
    return np.where(is_holiday | (weekday == 6), REST_DAY, np.where(weekday == 5, SATURDAY, WORKDAY))


def _lighting(local_hour: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """Street lighting: on between dusk and dawn, whose times move with the season."""
    day_length = 12.25 + 5.25 * np.sin(2 * np.pi * (day_of_year - 80) / 365.25)
    middle_of_hour = local_hour + 0.5
    daylight = np.abs(middle_of_hour - 12.5) < day_length / 2
    return np.where(daylight, _LIGHTS_OFF_DAYTIME, _LIGHTS_ON)


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer: a well-mixed 64-bit hash of each value (uint64 arithmetic wraps)."""
    mixed = values + _SPLITMIX_GAMMA
    mixed = (mixed ^ (mixed >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    mixed = (mixed ^ (mixed >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return mixed ^ (mixed >> np.uint64(31))


def _uniform(counter: np.ndarray, series_keys: np.ndarray, salt: np.uint64) -> np.ndarray:
    """Uniform (0, 1] draws, one per (counter, series), depending on nothing else."""
    keyed = _splitmix64(series_keys * np.uint64(4) + salt)
    bits = _splitmix64(_splitmix64(counter.astype(np.int64).view(np.uint64))[:, None] ^ keyed[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) + 1.0) / 2.0**53


def _normal(counter: np.ndarray, series_keys: np.ndarray, salts: tuple[np.uint64, np.uint64]) -> np.ndarray:
    """Standard normal draws per (counter, series) by Box-Muller over two hashed uniforms."""
    first = _uniform(counter, series_keys, salts[0])
    second = _uniform(counter, series_keys, salts[1])
    return np.sqrt(-2.0 * np.log(first)) * np.cos(2.0 * np.pi * second)
