"""Backfill speed: one single-run backfill against per-partition runs, side by side in one run.

    python benchmarks/backfill.py                 # both sections
    python benchmarks/backfill.py --only ingestion

Section `ingestion` (the asset-graph issue): 720 hourly partitions of consumption_raw +
energy_consumption_features in one run, against 24 of those partitions run one run each.
Section `graph` (the forecasts issue): 720 partitions of all four assets in one run (the model
retrains on its 24-hour cadence, about 30 times), against 24 consecutive per-partition runs of the
whole graph (one retraining among them, the ratio of the full backfill), extrapolated to 720.

Each side runs two ways:
- `dagster asset materialize` in a fresh process per run: what a backfill costs when Dagster launches
  a run per partition (code location load included) or one run for the range;
- in-process `materialize`: no process start, a lower bound on the per-partition cost.
Synthetic source, local embedded resources, each side in its own temporary state directory.
"""

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from dagster import AssetSelection, DagsterInstance

# The benchmarks backfill hours of early 2023; partitions are built when the definitions are imported,
# and the subprocesses they start inherit this.
os.environ.setdefault("ENERGY_ASSETS_PARTITIONS_START", "2022-12-01-00:00")
from energy_assets.app.demo import QUIET_RUN_CONFIG, materialize_range
from energy_assets.timeline import HOUR, hour_key
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.definitions import deployment_resources

print = functools.partial(print, flush=True)  # progress shows while the runs go on
START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
BACKFILL_HOURS = 720
SAMPLE_HOURS = 24
DAGSTER = str(Path(sys.executable).with_name("dagster"))
REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_AND_FEATURES = "consumption_raw,energy_consumption_features"
WHOLE_GRAPH = "consumption_raw,energy_consumption_features,forecasting_model,energy_forecasts"


def key(stamp: pd.Timestamp) -> str:
    return hour_key(stamp)


def cli_run(selection: str, first: pd.Timestamp, last: pd.Timestamp, home: Path) -> float:
    """Seconds for `dagster asset materialize` over first ... last in a new process."""
    partitions = ["--partition", key(first)] if first == last else ["--partition-range", f"{key(first)}...{key(last)}"]
    started = time.perf_counter()
    subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "energy_assets.definitions", "--select", selection, *partitions],
        cwd=REPO_ROOT,
        env={**os.environ, "ENERGY_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def in_process_run(selection: str, first: pd.Timestamp, last: pd.Timestamp, home: Path) -> float:
    """Seconds for in-process `materialize` over first ... last."""
    os.environ["ENERGY_ASSETS_HOME"] = str(home)
    assets = AssetSelection.assets(*selection.split(","))
    started = time.perf_counter()
    materialize_range(assets, first, last, DagsterInstance.ephemeral(), deployment_resources(), run_config=QUIET_RUN_CONFIG)
    return time.perf_counter() - started


def prepared_home(history_hours: int) -> Path:
    """A new state directory holding raw data and features for the hours before START."""
    home = Path(tempfile.mkdtemp(prefix="energy_assets_bench_"))
    (home / "dagster_home").mkdir()
    if history_hours:
        in_process_run(RAW_AND_FEATURES, START - history_hours * HOUR, START - HOUR, home)
    return home


def compare(name: str, selection: str, history_hours: int, run) -> tuple[float, float]:
    last = START + (BACKFILL_HOURS - 1) * HOUR
    single_home = prepared_home(history_hours)
    single = run(selection, START, last, single_home)
    per_partition_home = prepared_home(history_hours)
    sample = sum(run(selection, START + n * HOUR, START + n * HOUR, per_partition_home) for n in range(SAMPLE_HOURS))
    single_each, per_partition_each = single / BACKFILL_HOURS, sample / SAMPLE_HOURS
    models = len(list((single_home / "model_registry").glob("*/v*")))
    for home in (single_home, per_partition_home):
        shutil.rmtree(home)
    print(f"  {name}")
    print(f"    single run, {BACKFILL_HOURS} partitions: {single:.1f} s ({single_each * 1000:.0f} ms per partition)"
          + (f", {models} models trained" if models else ""))
    print(f"    per-partition runs: {SAMPLE_HOURS} measured in {sample:.1f} s ({per_partition_each:.2f} s each); "
          f"{BACKFILL_HOURS} extrapolated: {per_partition_each * BACKFILL_HOURS / 60:.1f} min")
    print(f"    per-partition speed-up of the single run: {per_partition_each / single_each:.0f}x")
    return single, per_partition_each


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["ingestion", "graph"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; {BACKFILL_HOURS} partitions from {START:%Y-%m-%d %H:%M} UTC")
    sections = {
        "ingestion": ("consumption_raw + energy_consumption_features", RAW_AND_FEATURES, 0),
        "graph": ("whole graph: raw, features, model, forecasts", WHOLE_GRAPH,
                  min_training_hours(ForecasterConfig()) + 24),
    }
    for section, (title, selection, history) in sections.items():
        if args.only not in (None, section):
            continue
        print(f"\n== {title}" + (f" (after {history} h of history, not timed)" if history else ""))
        compare("dagster CLI, one process per run", selection, history, cli_run)
        compare("in-process materialize (lower bound per run)", selection, history, in_process_run)


if __name__ == "__main__":
    main()
