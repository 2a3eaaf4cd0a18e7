"""Fit time, 24-hour predict time and peak memory: GlobalLGBMForecaster against the course pipeline.

Data: the synthetic source's 76 series x 30 days of hourly rows (the real extract's shape).
Each model runs in its own subprocess, one after the other, so peak memory (ru_maxrss) is its own.
Run: PYTHONPATH=. python benchmarks/forecaster_speed.py
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import timeit
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

START = pd.Timestamp("2023-03-01", tz="UTC")
DAYS = 30
HORIZON = 24
BACKFILL_ORIGINS = 720


def seconds(action: Callable[[], object], repeats: int) -> float:
    """Median wall time of `action` over `repeats` runs."""
    return statistics.median(timeit.repeat(action, number=1, repeat=repeats))


def peak_mb() -> float:
    """This process's peak resident memory so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(model: str) -> dict:
    """Fit and predict one model on the benchmark data; runs inside a worker process."""
    warnings.simplefilter("ignore")
    from energy_assets import schema
    from energy_assets.forecasting.baselines import course_exogenous, course_pipeline
    from energy_assets.forecasting.panel import to_sktime
    from energy_assets.forecasting.training import ForecasterConfig
    from energy_assets.sources.synthetic import synthetic_consumption

    # The backfill needs a week and a day of history before its first origin.
    rows = synthetic_consumption(START - pd.Timedelta(days=8), START + pd.Timedelta(days=DAYS))
    y_backfill = to_sktime(rows)
    y = to_sktime(rows[rows[schema.DATETIME] >= START])
    fh = np.arange(1, HORIZON + 1)
    baseline = peak_mb()
    if model == "ours":
        forecaster = ForecasterConfig().forecaster()
        fit = seconds(lambda: forecaster.fit(y), repeats=3)
        predict = seconds(lambda: forecaster.predict(fh=fh), repeats=5)
        peak = peak_mb()
        last = y.index.get_level_values(-1).max()
        origins = pd.date_range(last - pd.Timedelta(hours=BACKFILL_ORIGINS - 1), last, freq="h")
        backfill = seconds(lambda: forecaster.predict_origins(y_backfill, origins, HORIZON), repeats=1)
    else:
        X = course_exogenous(y.index)
        future = pd.date_range(y.index.get_level_values(-1).max(), periods=HORIZON + 1, freq="h")[1:]
        keys = y.index.droplevel(-1).unique()
        X_future = course_exogenous(
            pd.MultiIndex.from_tuples([(*k, t) for k in keys for t in future], names=y.index.names)
        )
        forecaster = course_pipeline()
        fit = seconds(lambda: forecaster.fit(y, X=X), repeats=1)
        predict = seconds(lambda: forecaster.predict(fh=fh, X=X_future), repeats=1)
        peak = peak_mb()
        backfill = predict * BACKFILL_ORIGINS  # one predict per origin: estimated, not run
    return {
        "fit_s": fit,
        "predict_s": predict,
        "backfill_s": backfill,
        "peak_mb": peak,
        "data_mb": baseline,
        "backfill_peak_mb": peak_mb(),
    }


def run_worker(model: str) -> dict:
    """`measure(model)` in a fresh Python process."""
    done = subprocess.run(
        [sys.executable, __file__, "--worker", model], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    print(f"76 series x {DAYS} days hourly (synthetic source), horizon {HORIZON} h, LightGBM on 1 thread (the default)")
    ours, course = run_worker("ours"), run_worker("course")
    rows = [
        ("fit", "fit_s", "s"),
        (f"predict {HORIZON} h, all series", "predict_s", "s"),
        (f"backfill {BACKFILL_ORIGINS} origins", "backfill_s", "s"),
        ("peak RSS, fit + predict", "peak_mb", "MB"),
        ("  of which above data loaded", None, "MB"),
    ]
    print(f"{'':34} {'GlobalLGBM':>12} {'course':>12} {'course/ours':>12}")
    for label, key, unit in rows:
        a = ours[key] if key else ours["peak_mb"] - ours["data_mb"]
        b = course[key] if key else course["peak_mb"] - course["data_mb"]
        print(f"{label:34} {a:10.3f} {unit:<2}{b:10.3f} {unit:<2}{b / a:11.1f}x")
    print(f"course backfill is estimated as {BACKFILL_ORIGINS} x its single predict (not run).")
    print(f"our peak RSS after the {BACKFILL_ORIGINS}-origin backfill: {ours['backfill_peak_mb']:.0f} MB")
    speedup = course["predict_s"] / ours["predict_s"]
    print(f"goal: predict >= 50x faster -> {speedup:.0f}x: {'met' if speedup >= 50 else 'NOT met'}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(measure(sys.argv[2])))
    else:
        main()
