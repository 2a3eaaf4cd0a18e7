"""What a hole in a series' history costs its forecasts, by how many of the hours they read are missing.

Chooses `history_gaps.MAX_FILLED_HOURS` (the most missing hours a forecast may read and still be issued,
flagged) on the real extract before its held-out last 7 days. One model is fitted on the clean rows up to
`--cutoff`; its forecasts from every `--origin-every` hours after it (targets before the held-out window)
are made from the clean history, and again with a hole of each of HOLE_HOURS hours punched into every
series at once (a series' forecast reads only its own values, so this is every series' own hole at the
same time), the hole slid by `--stride` hours over every position the forecasts read. Each (series,
issue hour) whose forecast read a missing hour (`history_gaps.missing_reads`) is scored against the
clean actuals: MAPE over its 24 horizons and the coverage of its 80 % and 95 % intervals (calibrated on
forecasts without holes), beside the same forecast from the clean history and seasonal naive 168's,
per count of missing hours read.

Run: PYTHONPATH=. python benchmarks/history_gaps.py [--stride 4] [--origin-every 2] [--data PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from energy_assets import schema
from energy_assets.forecasting.baselines import seasonal_naive_panel
from energy_assets.forecasting.history_gaps import missing_reads
from energy_assets.forecasting.panel import Panel, to_sktime
from energy_assets.forecasting.training import ForecasterConfig
from energy_assets.sources.files import read_snapshot
from energy_assets.timeline import HOUR

EXTRACT = "shared/data/raw/ConsumptionDE35Hour_2022-12-21_2023-01-14.parquet"
HORIZON = 24
HELD_OUT_DAYS = 7
HOLE_HOURS = (1, 2, 3, 4, 6, 12, 24)
COUNT_BANDS = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 6), (7, 12), (13, 24)]


def default_data() -> Path:
    here = Path(__file__).resolve().parents[1]
    for root in (here.parent, Path("/work")):
        if (root / EXTRACT).exists():
            return root / EXTRACT
    return here.parent / EXTRACT


def pair_mape(forecast: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Mean absolute percentage error over the horizons (last axis)."""
    return np.nanmean(np.abs(forecast - actual) / np.abs(actual), axis=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data())
    parser.add_argument("--stride", type=int, default=4, help="hours between hole positions")
    parser.add_argument("--origin-every", type=int, default=2, help="hours between issue hours")
    parser.add_argument("--cutoff", default="2023-01-01 23:00")
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"real extract not found at {args.data}")
    rows = read_snapshot(args.data)
    last_hour = rows[schema.DATETIME].max()
    held_out = last_hour - (HELD_OUT_DAYS * 24 - 1) * HOUR
    cutoff = pd.Timestamp(args.cutoff, tz="UTC")
    origins = pd.date_range(cutoff + HOUR, held_out - (HORIZON + 1) * HOUR, freq=args.origin_every * HOUR)
    rows = rows[rows[schema.DATETIME] < held_out]  # nothing of the held-out window is read
    print(f"extract {args.data.name}: held-out window from {held_out:%Y-%m-%d %H:%M} left out")
    print(f"model fitted on rows <= {cutoff:%Y-%m-%d %H:%M}; {len(origins)} issue hours "
          f"{origins[0]:%Y-%m-%d %H:%M} .. {origins[-1]:%Y-%m-%d %H:%M}, 24 h ahead, targets before the window")

    config = ForecasterConfig()
    started = time.perf_counter()
    model = config.forecaster(n_jobs=1).fit(to_sktime(rows[rows[schema.DATETIME] <= cutoff]))
    print(f"fit: {time.perf_counter() - started:.1f} s")
    reads = model.model_.forecast_reads(HORIZON)
    y = to_sktime(rows)
    panel = Panel.from_sktime(y)
    positions = panel.position(origins)
    actual = panel.values[:, positions[:, None] + np.arange(1, HORIZON + 1)]  # (series, origins, horizon)
    clean = scores(model.predict_origins(y, origins, HORIZON), actual)
    snaive = pair_mape(seasonal_naive_panel(panel, positions, HORIZON, 168), actual)
    print(f"clean: model MAPE {clean['mape'].mean():.4f}, seasonal naive 168 {snaive.mean():.4f}, 80 % interval "
          f"covers {clean['cover80'].mean():.3f}, 95 % {clean['cover95'].mean():.3f} "
          f"({panel.values.shape[0]} series x {len(origins)} issue hours)")

    records = []
    started = time.perf_counter()
    times = y.index.get_level_values(-1)
    first_hole = origins[0] - int(reads.max()) * HOUR
    for length in HOLE_HOURS:
        for start in pd.date_range(first_hole - (length - 1) * HOUR, origins[-1], freq=args.stride * HOUR):
            hole = (times >= start) & (times < start + length * HOUR)
            holed = panel.values.copy()
            holed[:, (panel.grid >= start) & (panel.grid < start + length * HOUR)] = np.nan
            counts = missing_reads(holed, positions, reads)[0]  # every series has the same hole
            hit = np.flatnonzero(counts > 0)
            if hit.size == 0:
                continue
            filled = scores(model.predict_origins(y.where(~hole[:, None]), origins[hit], HORIZON), actual[:, hit])
            # Whether a missing hour read lies within the last day before the issue hour, or only in the reference week.
            last_day = missing_reads(holed, positions[hit], reads[reads < 24])[0] > 0
            for i, at in enumerate(hit):
                records.append(
                    pd.DataFrame(
                        {
                            "hole_hours": length,
                            "missing_read": counts[at],
                            "last_day": last_day[i],
                            **{f"{name}_filled": filled[name][:, i] for name in filled},
                            **{f"{name}_clean": clean[name][:, at] for name in clean},
                            "snaive168": snaive[:, at],
                        }
                    )
                )
    table = pd.concat(records, ignore_index=True)
    seconds = time.perf_counter() - started
    print(f"{len(table)} (series, issue hour) pairs whose forecast read a missing hour, {seconds:.0f} s")

    def summary(group: pd.DataFrame) -> pd.Series:
        return pd.Series(
            {
                "pairs": len(group),
                "mape_filled": group["mape_filled"].mean(),
                "mape_clean": group["mape_clean"].mean(),
                "ratio": group["mape_filled"].mean() / group["mape_clean"].mean(),
                "doubled": (group["mape_filled"] > 2 * group["mape_clean"]).mean(),
                "cover80_filled": group["cover80_filled"].mean(),
                "cover80_clean": group["cover80_clean"].mean(),
                "cover95_filled": group["cover95_filled"].mean(),
                "cover95_clean": group["cover95_clean"].mean(),
                "max_filled": group["mape_filled"].max(),
                "max_clean": group["mape_clean"].max(),
                "snaive168": group["snaive168"].mean(),
            }
        )

    edges = [low - 0.5 for low, _ in COUNT_BANDS] + [COUNT_BANDS[-1][1] + 0.5]
    band = pd.cut(table["missing_read"], edges, labels=[f"{a}" if a == b else f"{a}-{b}" for a, b in COUNT_BANDS])
    pd.set_option("display.width", 250)
    fmt = {"float_format": lambda v: f"{v:.4f}"}
    print("\nby missing hours read (doubled: share of pairs whose MAPE at least doubled; coverNN: share of targets")
    print("inside the NN % interval, which is calibrated on forecasts without holes)")
    print(table.groupby(band, observed=True).apply(summary, include_groups=False).to_string(**fmt))
    print("\nby missing hours read and where: within the last day before the issue hour (True) or only in the")
    print("reference week")
    print(table.groupby([band, "last_day"], observed=True).apply(summary, include_groups=False).to_string(**fmt))
    print("\nby hole length (every pair it touched)")
    print(table.groupby("hole_hours").apply(summary, include_groups=False).to_string(**fmt))


def scores(frame: pd.DataFrame, actual: np.ndarray) -> dict[str, np.ndarray]:
    """(series, origins) MAPE and 80 % / 95 % interval coverage of `predict_origins` rows against (series, origins,
    horizon) actuals; its rows are ordered by series, origin, step."""
    shape = actual.shape
    point = frame[schema.TARGET].to_numpy().reshape(shape)
    result = {"mape": pair_mape(point, actual)}
    for coverage in schema.INTERVAL_COVERAGES:
        lower, upper = (
            frame[schema.interval_column(side, coverage)].to_numpy().reshape(shape) for side in ("lower", "upper")
        )
        result[f"cover{round(coverage * 100)}"] = ((actual >= lower) & (actual <= upper)).mean(axis=-1)
    return result


if __name__ == "__main__":
    main()
