"""Where the time of a backfill goes: cProfile of one in-process run, grouped by what the work is.

    python benchmarks/profile_backfill.py                       # model + forecasts, 720 h
    python benchmarks/profile_backfill.py --only ingestion --hours 720
    python benchmarks/profile_backfill.py --stats /tmp/model.prof   # keep the raw profile too

Synthetic source, local resources, a fresh DAGSTER_HOME without dagster.yaml (Dagster's default
SQLite instance, as `dagster dev` and a fresh checkout get it), the steps in this process. For `model`,
the raw data and features the hours need are prepared first (untimed, an in-memory instance). Prints the
run's wall time and a table of inclusive seconds per group of functions (a function counts towards the
first group whose pattern its file and name match, outermost call only, so groups do not double count),
then the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ENERGY_ASSETS_PARTITIONS_START", "2022-12-01-00:00")
import pandas as pd  # noqa: E402
from dagster import AssetSelection, DagsterInstance  # noqa: E402

from energy_assets.app.demo import QUIET_RUN_CONFIG, materialize_range  # noqa: E402
from energy_assets.definitions import deployment_resources  # noqa: E402
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours  # noqa: E402
from energy_assets.timeline import HOUR  # noqa: E402

START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
RAW_AND_FEATURES = AssetSelection.assets("consumption_raw", "energy_consumption_features")
MODEL_AND_FORECASTS = AssetSelection.assets("forecasting_model", "energy_forecasts")
HISTORY_HOURS = min_training_hours(ForecasterConfig()) + 24
# (group, substring of "file:function"), first match wins; outermost matching call counted.
GROUPS = [
    ("LightGBM training (lgb.train)", "lightgbm/engine.py:train"),
    ("LightGBM predict (booster.predict)", "lightgbm/basic.py:predict"),
    ("feature rows (features.feature_rows)", "forecasting/features.py:feature_rows"),
    ("event log writes (Dagster storage)", "storage/event_log/"),
    ("run storage and instance (Dagster)", "storage/runs/"),
    ("model save / load (sktime zip, pickle)", "sktime/base/_serialize.py"),
    ("model save / load (sktime zip, pickle)", "sktime/base/_base.py:save"),
    ("feature store read / write", "resources/local_feature_store.py"),
    ("IO manager (parquet objects)", "resources/io_manager.py"),
    ("plots (matplotlib)", "forecasting/plots.py"),
    ("sktime data checks and conversions", "sktime/datatypes/"),
    ("sktime data checks and conversions", "sktime/forecasting/base/_base.py:_check_X_y"),
    ("long frame -> sktime (to_sktime)", "forecasting/panel.py:to_sktime"),
    ("sktime -> Panel (Panel.from_sktime)", "forecasting/panel.py:from_sktime"),
    ("seasonal baselines with intervals", "evaluation.py:seasonal_naive_with_intervals"),
    ("scores (evaluation._scores)", "evaluation.py:_scores"),
    ("training provenance (hash)", "provenance.py:training_provenance"),
    ("model registry (local)", "resources/local_model_registry.py"),
    ("feature layout transform / gaps", "forecasting/panel.py:gaps_filled"),
]


def prepared_home(selection: str, hours: int) -> Path:
    home = Path(tempfile.mkdtemp(prefix="energy_assets_profile_"))
    os.environ["ENERGY_ASSETS_HOME"] = str(home)
    if selection == "model":
        materialize_range(RAW_AND_FEATURES, START - HISTORY_HOURS * HOUR, START + (hours - 1) * HOUR,
                          DagsterInstance.ephemeral(), deployment_resources(), run_config=QUIET_RUN_CONFIG)
    (home / "dagster_home").mkdir()
    return home


def grouped(stats: pstats.Stats) -> dict[str, float]:
    """Inclusive seconds per group, outermost matching calls only (callers inside the group are left out)."""
    table: dict[str, float] = {}
    raw = stats.stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    labels = {}
    for (file, _, name) in raw:
        where = f"{file}:{name}"
        labels[(file, _, name)] = next((group for group, pattern in GROUPS if pattern in where), None)
    for func, (_, _, _, cumulative, callers) in raw.items():
        group = labels[func]
        if group is None:
            continue
        # Time reached from callers outside the group: each caller's share of this function's cumulative time.
        outside = sum(entry[3] for caller, entry in callers.items() if labels.get(caller) != group)
        table[group] = table.get(group, 0.0) + (outside if callers else cumulative)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["model", "ingestion"], default="model")
    parser.add_argument("--hours", type=int, default=720)
    parser.add_argument("--stats", help="also write the raw profile here")
    args = parser.parse_args()
    home = prepared_home(args.only, args.hours)
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    instance = DagsterInstance.get()  # no dagster.yaml: Dagster's default SQLite instance
    selection = MODEL_AND_FORECASTS if args.only == "model" else RAW_AND_FEATURES
    print(f"load average {os.getloadavg()[0]:.2f} at start; {args.only}, {args.hours} h from {START}")
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    materialize_range(selection, START, START + (args.hours - 1) * HOUR, instance, deployment_resources(),
                      run_config=QUIET_RUN_CONFIG)
    profiler.disable()
    wall = time.perf_counter() - started
    print(f"run: {wall:.1f} s under the profiler; load average {os.getloadavg()[0]:.2f} at end")
    stats = pstats.Stats(profiler)
    if args.stats:
        stats.dump_stats(args.stats)
    table = grouped(stats)
    print("\n| work | seconds | share of the run |\n|---|---|---|")
    for group, seconds in sorted(table.items(), key=lambda item: -item[1]):
        print(f"| {group} | {seconds:.1f} | {seconds / wall:.0%} |")
    print(f"| everything else (Dagster's run machinery, pandas, numpy glue) | {wall - sum(table.values()):.1f} | "
          f"{(wall - sum(table.values())) / wall:.0%} |")
    print("\nTop 25 functions by own time:")
    stats.sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
