"""Seconds per partition of issuing forecasts for ranges of 168 ... 8,760 hours, before and after slicing.

    python benchmarks/forecast_range_scaling.py [--hours 168 720 2160 8760] [--before-up-to 2160]

What `energy_forecasts` does in a single-run backfill: one model version per 24 origins (the
retraining cadence), each forecasting its origins from the history read for the whole range.
- after: `forecast_origins`, which slices the history to the hours its origins read;
- before: the same prediction from all history up to the version's last origin (what
  `forecast_origins` did until issue 16), so its cost grows with the range.
One fitted model stands in for every version (loading models is not what grows). Synthetic source,
76 series. The two run in alternating order for each range; the before side is skipped for ranges
above `--before-up-to` (it grows quadratically).
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import pandas as pd

from energy_assets import schema
from energy_assets.forecasting.panel import to_sktime
from energy_assets.forecasting.training import ForecasterConfig, forecast_origins
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import HOUR

print = functools.partial(print, flush=True)
START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
VERSION_HOURS = 24


def before(forecaster, history: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
    """Issue-15 behaviour: the series table rebuilt from all history up to the last origin."""
    y = to_sktime(history[history[schema.DATETIME] <= origins.max()])
    return forecaster.predict_origins(y, origins, 24)


def after(forecaster, history: pd.DataFrame, origins: pd.DatetimeIndex) -> pd.DataFrame:
    return forecast_origins(forecaster.model_, history, origins)


def per_partition(issue, forecaster, history: pd.DataFrame, hours: int) -> tuple[float, float]:
    """Wall and CPU seconds per issue hour for `hours` origins, one call per 24-origin model version."""
    origins = pd.date_range(START, periods=hours, freq="h")
    wall, cpu = time.perf_counter(), time.process_time()
    for first in range(0, hours, VERSION_HOURS):
        issue(forecaster, history, origins[first:first + VERSION_HOURS])
    return (time.perf_counter() - wall) / hours, (time.process_time() - cpu) / hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, nargs="+", default=[168, 720, 2160, 8760])
    parser.add_argument("--before-up-to", type=int, default=2160)
    args = parser.parse_args()
    config = ForecasterConfig()
    lookback = config.forecaster().forecast_reach
    history = synthetic_consumption(START - 720 * HOUR, START + max(args.hours) * HOUR)
    forecaster = config.forecaster().fit(to_sktime(history[history[schema.DATETIME] < START]))
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; 76 series, "
          f"one model version per {VERSION_HOURS} origins; ms per partition (issue hour)")
    # CPU time is this process's own work: on a shared machine it drifts far less than wall time.
    print(f"{'hours':>7} {'before wall':>12} {'after wall':>11} {'before CPU':>11} {'after CPU':>10} "
          f"{'before/after CPU':>17} {'after CPU vs 168 h':>19}")
    first_after = None
    for n, hours in enumerate(args.hours):
        # What the asset reads for the range: the lookback before its first origin, up to its last.
        times = history[schema.DATETIME]
        read = history[(times >= START - lookback * HOUR) & (times < START + hours * HOUR)]
        sides = [("after", after), ("before", before)] if n % 2 else [("before", before), ("after", after)]
        seconds = {}
        for name, issue in sides:
            if name == "before" and hours > args.before_up_to:
                continue
            seconds[name] = per_partition(issue, forecaster, read, hours)
        first_after = first_after or seconds["after"][1]
        (bw, bc), (aw, ac) = seconds.get("before", (float("nan"), float("nan"))), seconds["after"]
        print(f"{hours:>7} {bw * 1000:>10.1f}ms {aw * 1000:>9.1f}ms {bc * 1000:>9.1f}ms {ac * 1000:>8.1f}ms "
              f"{bc / ac:>16.2f}x {ac / first_after:>18.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
