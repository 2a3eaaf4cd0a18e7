"""How many real rows each candidate plausibility factor refuses, and which injected faults it catches.

The rule (energy_assets/quality/plausibility.py) judges each value against its series' median over
the 28 days before the run's hours plus those hours. Replayed on the real extract's hours before its
held-out last 7 days (the data that chose the default factor), the run shapes it meets:
  first backfill   one run over every hour, no history (judged by the batch's own values)
  daily            one run a day, history = the days before, up to 28
  hourly           one run an hour from the second hour on, history = the hours before, up to 28 days
then, as a check only, the held-out window (hourly runs with everything before as history) and a
year of the synthetic source (daily runs). Faults are injected one at a time into every series at
one hour of the selection window, judged in an hourly run with its history.
Run: PYTHONPATH=. python benchmarks/plausibility_thresholds.py [--factors 10 20 30 50] [--real <extract>]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from energy_assets.quality.plausibility import REFERENCE_DAYS, TIMES_MEDIAN, Plausibility
from energy_assets.schema import DATETIME, SERIES_KEY, TARGET
from energy_assets.sources.files import read_snapshot
from energy_assets.sources.synthetic import synthetic_consumption

# The real extract beside the repository, as the tests find it.
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "raw" / "ConsumptionDE35Hour_2022-12-21_2023-01-14.parquet"
HELD_OUT_DAYS = 7
REFERENCE = pd.Timedelta(days=REFERENCE_DAYS)
FAULTS = {"1e300": lambda v: 1e300, "zero": lambda v: 0.0, "x1000": lambda v: v * 1000, "x100": lambda v: v * 100,
          "x10": lambda v: v * 10, "/1000": lambda v: v / 1000}


def runs(rows: pd.DataFrame, starts: pd.DatetimeIndex, length: pd.Timedelta, first_history: pd.Timestamp):
    """(batch, history) of runs over [start, start + length), history from the 28 days before (not before first_history)."""
    for start in starts:
        batch = rows[(rows[DATETIME] >= start) & (rows[DATETIME] < start + length)]
        history = rows[(rows[DATETIME] >= max(start - REFERENCE, first_history)) & (rows[DATETIME] < start)]
        yield batch, history


def distances(rows: pd.DataFrame, run_list) -> np.ndarray:
    """For every judged row, how many times (either way) its series' reference median it is (1 + kWh)."""
    widest = Plausibility(factor=1.0 + 1e-12)  # refuses every row that is not exactly at its median
    found = [widest.implausible_rows(batch, history)[TIMES_MEDIAN].to_numpy() for batch, history in run_list]
    times = np.concatenate(found) if found else np.array([])
    return np.maximum(times, 1 / times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", type=float, nargs="+", default=[5, 10, 15, 20, 30, 50])
    parser.add_argument("--real", type=Path, default=REAL, help="the real extract (parquet or CSV)")
    args = parser.parse_args()
    started = time.perf_counter()
    real = read_snapshot(args.real)
    held_out_start = real[DATETIME].max().floor("D") - pd.Timedelta(days=HELD_OUT_DAYS - 1)
    selection = real[real[DATETIME] < held_out_start]
    first, hour, day = selection[DATETIME].min(), pd.Timedelta(hours=1), pd.Timedelta(days=1)
    hours = pd.date_range(first, held_out_start - hour, freq="h")
    scenarios = {
        "selection: first backfill": distances(selection, runs(selection, hours[:1], held_out_start - first, first)),
        "selection: daily": distances(selection, runs(selection, pd.date_range(first, held_out_start - hour, freq="D"), day, first)),
        "selection: hourly": distances(selection, runs(selection, hours[1:], hour, first)),
        "held out (check): hourly": distances(
            real, runs(real, pd.date_range(held_out_start, real[DATETIME].max(), freq="h"), hour, first)
        ),
    }
    year = synthetic_consumption(pd.Timestamp("2022-01-01", tz="UTC"), pd.Timestamp("2023-01-01", tz="UTC"))
    year_days = pd.date_range("2022-01-01", "2022-12-31", freq="D", tz="UTC")
    scenarios["synthetic 2022 (check): daily"] = distances(year, runs(year, year_days, day, year_days[0]))
    print(f"{'scenario':34s} {'rows':>7s} {'largest x':>10s}  refused at factor " + " ".join(f"{f:>6g}" for f in args.factors))
    for name, times in scenarios.items():
        refused = " ".join(f"{int((times > f).sum()):>6d}" for f in args.factors)
        print(f"{name:34s} {times.size:7d} {times.max():10.2f}  {'':17s} {refused}")
    print()
    injected_at = held_out_start - 3 * day + 12 * hour
    batch = selection[selection[DATETIME] == injected_at]
    history = selection[(selection[DATETIME] >= injected_at - REFERENCE) & (selection[DATETIME] < injected_at)]
    print(f"faults injected into each of the {len(batch)} series at {injected_at:%Y-%m-%d %H:%M} (hourly run), caught at factor")
    for fault, change in FAULTS.items():
        caught = []
        for factor in args.factors:
            rule = Plausibility(factor=factor)
            count = 0
            for position in range(len(batch)):
                faulty = batch.copy()
                faulty.iloc[position, faulty.columns.get_loc(TARGET)] = change(faulty.iloc[position][TARGET])
                count += len(rule.implausible_rows(faulty, history)) > 0
            caught.append(f"{count:>3d}/{len(batch)}")
        print(f"  {fault:8s} " + " ".join(caught))
    print(f"({time.perf_counter() - started:.0f} s; series {len(real[SERIES_KEY].drop_duplicates())})")


if __name__ == "__main__":
    main()
