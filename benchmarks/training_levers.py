"""What one retraining costs, lever by lever, side by side in alternating rounds of one run.

    python benchmarks/training_levers.py [--rounds 3]

The retraining of the 720-hour backfill (synthetic source, 76 series, the default 720-hour window):
- validation by a second fit on the rows before the 24-hour window (before) against validation by the
  model in effect, fitted up to the window's start (after: one fit per retraining);
- one LightGBM fit with 1 thread against 2 threads (the default before), and whether the models agree.
Rounds alternate the variants so machine load drifting during the run hits both alike.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import time

import numpy as np
import pandas as pd

from energy_assets.forecasting.panel import to_sktime
from energy_assets.forecasting.training import ForecasterConfig, train_forecaster
from energy_assets.sources.synthetic import synthetic_consumption

print = functools.partial(print, flush=True)
HOUR = pd.Timedelta(hours=1)
CUTOFF = pd.Timestamp("2023-03-01 00:00", tz="UTC")
WINDOW_HOURS = 720


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start")
    config = ForecasterConfig()
    history = synthetic_consumption(CUTOFF - (WINDOW_HOURS + 48) * HOUR, CUTOFF + HOUR)
    previous_rows = history[(history["datetime_utc"] <= CUTOFF - 24 * HOUR)
                            & (history["datetime_utc"] > CUTOFF - (WINDOW_HOURS + 24) * HOUR)]
    in_effect = config.forecaster().fit(to_sktime(previous_rows))

    variants = {
        "two fits (validation fit + final)": lambda: train_forecaster(history, CUTOFF, config),
        "one fit (validated by model in effect)": lambda: train_forecaster(history, CUTOFF, config, validated_by=in_effect),
    }
    rows = to_sktime(history[history["datetime_utc"] > CUTOFF - WINDOW_HOURS * HOUR])
    threads = {f"fit, {n} thread{'s' if n > 1 else ''}": n for n in (1, 2)}
    times: dict[str, list[float]] = {name: [] for name in [*variants, *threads]}
    results, boosters = {}, {}
    for _ in range(args.rounds):
        for name, action in variants.items():
            seconds, results[name] = timed(action)
            times[name].append(seconds)
        for name, n in threads.items():
            seconds, fitted = timed(lambda: config.forecaster(n_jobs=n).fit(rows))
            times[name].append(seconds)
            boosters[name] = fitted
    print(f"load average {os.getloadavg()[0]:.2f} at end; {args.rounds} alternating rounds, median seconds")
    for name, values in times.items():
        print(f"  {name:42} {statistics.median(values):7.2f} s   (min {min(values):.2f}, max {max(values):.2f})")
    two, one = (statistics.median(times[name]) for name in variants)
    print(f"  one fit / two fits: {one / two:.2f}")
    one_thread, two_threads = (statistics.median(times[name]) for name in threads)
    print(f"  1 thread / 2 threads: {one_thread / two_threads:.2f}")
    for name, result in results.items():
        metrics = result.validation_metrics
        print(f"  {name:42} validation MAPE model {metrics['model_mape']:.4f}, "
              f"snaive168 {metrics['snaive168_mape']:.4f}, snaive24 {metrics['snaive24_mape']:.4f}")
    grid = to_sktime(history)
    origins = pd.date_range(CUTOFF - 23 * HOUR, CUTOFF, freq="h")
    a, b = (f.predict_origins(grid, origins)["energy_consumption"].to_numpy() for f in boosters.values())
    print(f"  1-thread vs 2-thread model forecasts: max relative difference {np.nanmax(np.abs(a / b - 1)):.2e}")


if __name__ == "__main__":
    main()
