"""Start-up of `energy-assets latest` before and after the storage layer left Dagster, side by side.

Checks out the older revision into a temporary worktree, publishes one forecast into a local bucket,
then alternates runs of both CLIs reading it and prints the medians and their ratio.
Usage: python benchmarks/cli_startup.py [--before REV] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The last revision whose CLI read the bucket through Dagster resources (energy_assets.cli).
BEFORE_REVISION = "6c7a5fe"


def publish_one_forecast(home: Path) -> None:
    """One forecast under `home`'s bucket, written by the current code in the old layout and the hive one."""
    sys.path.insert(0, str(REPO))
    import pandas as pd

    from energy_assets.schema import FORECAST_SCHEMA, conform
    from energy_assets.storage.buckets import LocalBucket
    from energy_assets.storage.objects import legacy_partition_object_key, parquet_bytes, partition_object_key

    issued = pd.Timestamp("2023-01-14 23:00", tz="UTC")
    rows = pd.DataFrame(
        {
            "area": 1, "consumer_type": 111, "issued_at": issued,
            "datetime_utc": [issued + pd.Timedelta(hours=h) for h in range(1, 25)],
            "horizon": range(1, 25), "energy_consumption_forecast": 1000.0, "model_version": 1,
        }
    )
    data = parquet_bytes(conform(rows, FORECAST_SCHEMA, "forecast"))
    # In both layouts: the older revision reads <asset>/<key>.parquet, the current one the hive layout.
    for layout in (legacy_partition_object_key, partition_object_key):
        key = layout("energy_assets", ["energy_forecasts"], "2023-01-14-23:00")
        LocalBucket(root_dir=str(home / "bucket")).write_bytes(key, data)


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default=BEFORE_REVISION)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        worktree = scratch / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(worktree), args.before], cwd=REPO, check=True,
                       capture_output=True)
        try:
            publish_one_forecast(scratch / "home")
            env = {**os.environ, "ENERGY_ASSETS_HOME": str(scratch / "home")}
            latest = ["latest", "--at", "2023-01-14T23:00"]
            commands = {
                "before (energy_assets.cli)": ([sys.executable, "-m", "energy_assets.cli", *latest], worktree),
                "after (energy_assets.app.cli)": ([sys.executable, "-m", "energy_assets.app.cli", *latest], REPO),
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):  # alternate, so drift on a shared machine hits both alike
                for name, (command, cwd) in commands.items():
                    times[name].append(timed(command, {**env, "PYTHONPATH": str(cwd)}, cwd))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=False)
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, values in times.items():
        print(f"{name:32s} median {medians[name]:.2f} s  (min {min(values):.2f}, max {max(values):.2f}, {len(values)} runs)")
    before, after = medians.values()
    print(f"start-up ratio before / after: {before / after:.1f}x")


if __name__ == "__main__":
    main()
