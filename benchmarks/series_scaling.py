"""Fit, 24-hour predict and multi-origin predict for 76, 760 and 7,600 series, with peak memory.

    python benchmarks/series_scaling.py [--series 76 760 7600] [--origins 720]

Series: the synthetic source's 76, repeated with new consumer types and their own noise. Each size
runs in a fresh process, so its peak resident memory (ru_maxrss) is its own:
- fit on the default 720-hour window, default config;
- predict 24 h for every series (sktime `predict`);
- multi-origin predict: `GlobalModel.forecast` from `--origins` consecutive issue hours, 24 h each, in
  batches of at most PREDICTION_BATCH_ROWS (series, origin) rows; the unbatched working array
  (series x origins x (history + horizon) float64) is printed beside it for comparison.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd

from energy_assets.timeline import HOUR

print = functools.partial(print, flush=True)
START = pd.Timestamp("2023-03-01 00:00", tz="UTC")
WINDOW_HOURS = 720


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def many_series(copies: int, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The synthetic panel `copies` times over, each copy with new consumer types and its own noise."""
    from energy_assets import schema
    from energy_assets.sources.synthetic import synthetic_consumption

    base = synthetic_consumption(start, end)
    rng = np.random.default_rng(0)
    frames = []
    for copy in range(copies):
        frame = base.copy()
        frame[schema.CONSUMER_TYPE] = frame[schema.CONSUMER_TYPE] + 1000 * copy
        frame[schema.TARGET] = frame[schema.TARGET] * rng.lognormal(0.0, 0.03, len(frame))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True).astype(base.dtypes.to_dict())


def measure(copies: int, n_origins: int) -> dict:
    """Runs inside a worker process."""
    from energy_assets.forecasting.recursion import PREDICTION_BATCH_ROWS
    from energy_assets.forecasting.panel import Panel, to_sktime
    from energy_assets.forecasting.training import ForecasterConfig

    forecaster = ForecasterConfig().forecaster()
    lookback = forecaster.forecast_reach
    rows = many_series(copies, START - (WINDOW_HOURS + n_origins + lookback) * HOUR, START)
    y = to_sktime(rows)
    times = y.index.get_level_values(-1)
    training = y[times > START - WINDOW_HOURS * HOUR]
    data_mb = peak_mb()
    started = time.perf_counter()
    forecaster.fit(training)
    fit_s = time.perf_counter() - started
    fit_peak = peak_mb()
    started = time.perf_counter()
    forecaster.predict(fh=np.arange(1, 25))
    predict_s = time.perf_counter() - started
    # Origins: the n_origins hours before the fit's window, as in a backfill issued from history.
    panel = Panel.from_sktime(y[times < START - WINDOW_HOURS * HOUR + HOUR])
    origins = np.arange(len(panel.grid) - n_origins, len(panel.grid))
    started = time.perf_counter()
    values = forecaster.model_.forecast(panel, origins, 24)
    origins_s = time.perf_counter() - started
    n_series = len(panel.keys)
    return {
        "series": n_series,
        "training_rows": len(training),
        "fit_s": fit_s,
        "predict_s": predict_s,
        "origins_s": origins_s,
        "data_mb": data_mb,
        "fit_peak_mb": fit_peak,
        "peak_mb": peak_mb(),
        "result_mb": values.nbytes / 2**20,
        "unbatched_mb": n_series * n_origins * (lookback + 24) * 8 / 2**20,
        "batch_mb": min(PREDICTION_BATCH_ROWS, n_series * n_origins) * (lookback + 24) * 8 / 2**20,
        "finite": bool(np.isfinite(values).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, nargs="+", default=[76, 760, 7600])
    parser.add_argument("--origins", type=int, default=720)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; default config, "
          f"{WINDOW_HOURS}-hour training window, {args.origins} origins x 24 h")
    header = (f"{'series':>7} {'rows':>10} {'fit':>8} {'fit peak':>9} {'24h pred':>9} {'origins':>9} "
              f"{'peak':>8} {'result':>8} {'batch':>7} {'unbatched':>10}")
    print(header)
    for n in args.series:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", str(n // 76), str(args.origins)],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['series']:>7} {r['training_rows']:>10,} {r['fit_s']:>7.1f}s {r['fit_peak_mb']:>7.0f}MB "
              f"{r['predict_s']:>8.2f}s {r['origins_s']:>8.1f}s {r['peak_mb']:>6.0f}MB {r['result_mb']:>6.0f}MB "
              f"{r['batch_mb']:>5.0f}MB {r['unbatched_mb']:>8.0f}MB" + ("" if r["finite"] else "  (non-finite forecasts!)"))
    print(f"load average {os.getloadavg()[0]:.2f} at end; peak = resident peak of the size's process "
          "(data, fit, predictions); result = the (series, origins, 24) float64 forecasts themselves")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        print(json.dumps(measure(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
