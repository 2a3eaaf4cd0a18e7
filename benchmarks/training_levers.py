"""What one retraining costs, lever by lever, side by side in alternating rounds of one run.

    python benchmarks/training_levers.py [--rounds 3]

The retraining of the 720-hour backfill (synthetic source, 76 series, the default 720-hour window and
48 calibration hours), `train_forecaster` as the model asset calls it:
- the first retraining of a run, which fits its calibration model and its model (two fits of each
  member), against a later one, whose calibration fit is the model trained 48 hours before on the same
  points (handed to it, as the retraining policy does: one fit of each member);
- one fit of the default two members against one fit of the model without the combination;
- LightGBM on 1 thread, on 2, and on the cores free at each call (`n_jobs=-1`, the pipeline's), and
  whether the models agree.
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

from energy_assets.forecasting.training import ForecasterConfig, train_forecaster
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.timeline import HOUR

print = functools.partial(print, flush=True)
CUTOFF = pd.Timestamp("2023-03-01 00:00", tz="UTC")


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def trees_of(forecaster) -> tuple[str, ...]:
    """Each member's trees as text: the model text ends with the parameters, num_threads among them."""
    return tuple(member.booster.model_to_string().split("end of trees")[0] for member in forecaster.model_.members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start")
    config = ForecasterConfig()
    history = synthetic_consumption(CUTOFF - (config.read_hours + 48) * HOUR, CUTOFF + HOUR)
    earlier = CUTOFF - config.calibration_hours * HOUR

    def first_retraining():
        return train_forecaster(history, CUTOFF, config)

    def later_retraining():
        before = train_forecaster(history, earlier, config)  # the retraining 48 hours before, untimed
        return timed(lambda: train_forecaster(history, CUTOFF, config, earlier=[before.model]))

    def on_threads(n_jobs: int, **params):
        return config.forecaster(n_jobs=n_jobs).set_params(calibration_hours=0, **params).fit(rows)

    rows = history[history["datetime_utc"] > CUTOFF - config.training_window * HOUR]
    rows = rows[rows["datetime_utc"] <= CUTOFF].set_index(["area", "consumer_type", "datetime_utc"])[["energy_consumption"]]
    threads = {"fit, 1 thread": 1, "fit, 2 threads": 2, "fit, free cores (n_jobs=-1)": -1}
    one_model = "fit, one model (no combination), free cores"
    names = ["first retraining of a run (two fits)", "later retraining (calibration fit kept)", *threads, one_model]
    times: dict[str, list[float]] = {name: [] for name in names}
    models = {}
    for _ in range(args.rounds):
        seconds, first = timed(first_retraining)
        times[names[0]].append(seconds)
        seconds, later = later_retraining()
        times[names[1]].append(seconds)
        for name, n in threads.items():
            seconds, models[name] = timed(lambda: on_threads(n))
            times[name].append(seconds)
        times[one_model].append(timed(lambda: on_threads(-1, combine_without_level_lags=False))[0])
    print(f"load average {os.getloadavg()[0]:.2f} at end; {args.rounds} alternating rounds, median seconds")
    for name, values in times.items():
        print(f"  {name:42} {statistics.median(values):7.2f} s   (min {min(values):.2f}, max {max(values):.2f})")
    print(f"  later / first retraining: {statistics.median(times[names[1]]) / statistics.median(times[names[0]]):.2f}")
    one, two = (statistics.median(times[name]) for name in list(threads)[:2])
    print(f"  2 threads / 1 thread: {two / one:.2f}")
    print(f"  two members / one model (a fit on free cores): "
          f"{statistics.median(times[list(threads)[2]]) / statistics.median(times[one_model]):.2f}")
    same = [m.booster.model_to_string() for m in first.model.members] == [m.booster.model_to_string() for m in later.model.members]
    print(f"  first and later retraining give the same model: {same}; validation MAPE "
          f"{first.validation_metrics['model_mape']:.4f} / {later.validation_metrics['model_mape']:.4f}")
    trees = {trees_of(model) for model in models.values()}
    print(f"  1, 2 and free-core threads give the same trees: {len(trees) == 1}")
    y = rows.sort_index()
    origins = pd.date_range(CUTOFF - 23 * HOUR, CUTOFF, freq="h")
    a, b = (models[name].predict_origins(y, origins)["energy_consumption"].to_numpy() for name in list(threads)[:2])
    print(f"  1-thread vs 2-thread forecasts: max relative difference {np.nanmax(np.abs(a / b - 1)):.2e}")


if __name__ == "__main__":
    main()
