"""How fast the local feature store reads a 30-day training window of all 76 series, and writes."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.schema import CONSUMPTION_COLUMNS, DATETIME, TARGET, de35_series

START = pd.Timestamp("2023-01-01", tz="UTC")
TRAINING_DAYS = 30
STORED_DAYS = 180
REPEATS = 7


def synthetic_rows(start: pd.Timestamp, hours: int) -> pd.DataFrame:
    """Every DE35 series for `hours` hours from `start`, with random consumption."""
    rows = de35_series().merge(pd.DataFrame({DATETIME: pd.date_range(start, periods=hours, freq="h")}), how="cross")
    rows[TARGET] = np.random.default_rng(0).gamma(2.0, 500.0, len(rows))
    return rows[CONSUMPTION_COLUMNS]


def median_seconds(action: Callable[[], object], repeats: int = REPEATS) -> float:
    """Median wall time of `action` over `repeats` runs."""
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        action()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        small = LocalFeatureStore(root_dir=str(Path(root) / "small"))
        large = LocalFeatureStore(root_dir=str(Path(root) / "large"))
        training_rows = synthetic_rows(START, TRAINING_DAYS * 24)

        began = time.perf_counter()
        small.insert(training_rows)
        bulk_seconds = time.perf_counter() - began
        large.insert(synthetic_rows(START, STORED_DAYS * 24))
        hours = [synthetic_rows(START + pd.Timedelta(days=STORED_DAYS, hours=h), 1) for h in range(48)]
        hourly_seconds = median_seconds(lambda: large.insert(hours.pop()), repeats=48)

        window = (START, START + pd.Timedelta(days=TRAINING_DAYS))
        assert len(small.read(*window)) == len(training_rows)
        read_small = median_seconds(lambda: small.read(*window))
        read_large = median_seconds(lambda: large.read(*window))
        read_some = median_seconds(lambda: large.read(*window, series=de35_series().head(10)))
        full_scan = median_seconds(lambda: pd.read_parquet(Path(root) / "large"), repeats=3)

    print(f"read 30 days x 76 series ({len(training_rows)} rows), store of 30 days:  {read_small * 1000:7.1f} ms")
    print(f"read 30 days x 76 series, store of {STORED_DAYS} days:                   {read_large * 1000:7.1f} ms"
          f"  ratio to 30-day store {read_large / read_small:.2f}")
    print(f"read 30 days x 10 series, store of {STORED_DAYS} days:                   {read_some * 1000:7.1f} ms"
          f"  ratio to all series {read_some / read_large:.2f}")
    print(f"pandas full scan of the {STORED_DAYS}-day store (no pruning):           {full_scan * 1000:7.1f} ms"
          f"  ratio to window read {full_scan / read_large:.2f}")
    print(f"bulk insert 30 days x 76 series: {bulk_seconds * 1000:.0f} ms ({len(training_rows) / bulk_seconds:,.0f} rows/s)")
    print(f"hourly insert of 76 rows into an existing day: {hourly_seconds * 1000:.1f} ms median")


if __name__ == "__main__":
    main()
