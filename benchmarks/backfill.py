"""Backfill speed: one single-run backfill against per-partition runs, side by side in one run.

    python benchmarks/backfill.py                # both sections
    python benchmarks/backfill.py --only ingestion

Section `ingestion` (issue: asset graph): 720 hourly partitions of consumption_raw +
energy_consumption_features in one run, against 24 of those partitions run one run each.
Section `graph` (issue: forecasts): 720 partitions of all four assets in one run (the model retrains
on its 24-hour cadence, about 30 times), against 24 consecutive per-partition runs of the whole
graph (one retraining among them, the same ratio as in the full backfill), extrapolated to 720.

Per-partition runs use in-process `materialize`, which skips the process launch a real
per-partition backfill pays for every run, so the ratios printed are lower bounds.
Synthetic source, local embedded resources, each side in its own temporary state directory.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager

import pandas as pd
from dagster import AssetSelection, DagsterInstance

from energy_assets.demo import QUIET_RUN_CONFIG, materialize_range
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.resources import build_resources

HOUR = pd.Timedelta(hours=1)
RAW_AND_FEATURES = AssetSelection.assets("consumption_raw", "energy_consumption_features")
START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
BACKFILL_HOURS = 720
SAMPLE_HOURS = 24


@contextmanager
def fresh_state():
    """A new ENERGY_ASSETS_HOME and Dagster instance for one side of a comparison."""
    previous = os.environ.get("ENERGY_ASSETS_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["ENERGY_ASSETS_HOME"] = home
        try:
            yield DagsterInstance.ephemeral(), build_resources()
        finally:
            if previous is None:
                os.environ.pop("ENERGY_ASSETS_HOME")
            else:
                os.environ["ENERGY_ASSETS_HOME"] = previous


def timed_run(selection, first, last, instance, resources) -> float:
    started = time.perf_counter()
    materialize_range(selection, first, last, instance, resources, run_config=QUIET_RUN_CONFIG)
    return time.perf_counter() - started


def compare(name: str, selection: AssetSelection, history_hours: int) -> None:
    last = START + (BACKFILL_HOURS - 1) * HOUR
    print(f"\n== {name}: {BACKFILL_HOURS} partitions {START:%Y-%m-%d %H:%M} ... {last:%Y-%m-%d %H:%M} UTC")
    with fresh_state() as (instance, resources):
        if history_hours:
            history = timed_run(RAW_AND_FEATURES, START - history_hours * HOUR, START - HOUR, instance, resources)
            print(f"history before the range ({history_hours} h of raw + features, not counted): {history:.1f} s")
        single = timed_run(selection, START, last, instance, resources)
        retrained = len(resources["model_registry"].versions("energy_consumption_forecaster")) if history_hours else 0
    with fresh_state() as (instance, resources):
        if history_hours:
            timed_run(RAW_AND_FEATURES, START - history_hours * HOUR, START - HOUR, instance, resources)
        sample = sum(
            timed_run(selection, START + n * HOUR, START + n * HOUR, instance, resources) for n in range(SAMPLE_HOURS)
        )
    single_per_partition = single / BACKFILL_HOURS
    per_partition = sample / SAMPLE_HOURS
    print(f"single run, {BACKFILL_HOURS} partitions: {single:.1f} s ({single_per_partition * 1000:.0f} ms per partition)")
    if retrained:
        print(f"models trained in the single run: {retrained}")
    print(
        f"per-partition runs, {SAMPLE_HOURS} measured: {sample:.1f} s ({per_partition:.2f} s per partition); "
        f"{BACKFILL_HOURS} extrapolated: {per_partition * BACKFILL_HOURS / 60:.1f} min"
    )
    print(f"speed-up per partition: {per_partition / single_per_partition:.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["ingestion", "graph"])
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}")
    if args.only in (None, "ingestion"):
        compare("ingestion: consumption_raw + energy_consumption_features", RAW_AND_FEATURES, history_hours=0)
    if args.only in (None, "graph"):
        history = min_training_hours(ForecasterConfig()) + 24
        compare("whole graph: raw, features, model, forecasts", AssetSelection.all(), history_hours=history)


if __name__ == "__main__":
    main()
