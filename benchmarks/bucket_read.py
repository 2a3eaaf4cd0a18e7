"""Reading forecasts through the CLI from a bucket of 8,760 issue hours, before and after the hive layout, side by side.

Exports the revision before the change (`git archive`) into a scratch folder, publishes the same forecasts
(76 series x 24 horizons per issue hour) in the old layout for it and in the hive layout for the current
code, then alternates runs of both CLIs: one issue hour (`gather --from H --to H`), one week
(`gather --from H-167h --to H`) and `latest --at H`, on a local folder and on the GCS emulator; prints the
medians and the before/after ratios.
Usage: python benchmarks/bucket_read.py [--before REV] [--hours N] [--runs N] [--no-gcs]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from energy_assets.schema import FORECAST_SCHEMA, HISTORY_HOURS_MISSING, INTERVAL_COLUMNS, de35_series  # noqa: E402
from energy_assets.storage.buckets import Bucket, GCSBucket, LocalBucket  # noqa: E402
from energy_assets.storage.objects import legacy_partition_object_key, parquet_bytes, partition_object_key, to_arrow  # noqa: E402
from energy_assets.timeline import hour_key  # noqa: E402

# The branch point of the hive layout: objects named <asset>/<YYYY-MM-DD-HH:MM>.parquet, read after one full listing.
BEFORE_REVISION = "b5e1397"
FIRST_ISSUE = pd.Timestamp("2022-01-01 00:00", tz="UTC")


def forecast_object(issued: pd.Timestamp, series: pd.DataFrame, rng: np.random.Generator | None = None) -> bytes:
    """One issue hour's forecast for every series, as the IO manager encodes it: counting values and null bounds
    (a model without intervals), or with `rng` a model's random-looking values and interval bounds, which
    compress as little as real ones."""
    horizons = np.arange(1, 25)
    size = len(series) * len(horizons)
    if rng is None:
        forecast, bounds = 1000.0 + np.arange(size), {name: np.nan for name in INTERVAL_COLUMNS}
    else:
        forecast = rng.uniform(100.0, 50_000.0, size)
        # Each side's bounds widen with coverage, as nested intervals do.
        spread = np.cumsum(rng.uniform(0.05, 0.2, (len(INTERVAL_COLUMNS) // 2, 2, size)), axis=0)
        bounds = {name: forecast * (1.0 + (1 if "upper" in name else -1) * spread[n // 2, n % 2]) for n, name in enumerate(INTERVAL_COLUMNS)}
    rows = pd.DataFrame(
        {
            "area": np.repeat(series["area"].to_numpy(), 24),
            "consumer_type": np.repeat(series["consumer_type"].to_numpy(), 24),
            "issued_at": issued,
            "datetime_utc": [issued + pd.Timedelta(hours=int(h)) for h in np.tile(horizons, len(series))],
            "horizon": np.tile(horizons, len(series)),
            "energy_consumption_forecast": forecast,
            "model_version": 1,
            # The columns added since.
            "model_training_sha256": "0" * 64,
            **bounds,
            HISTORY_HOURS_MISSING: 0,
        }
    )[FORECAST_SCHEMA.names]
    return parquet_bytes(to_arrow(rows))


def publish(old: Bucket, new: Bucket, hours: int) -> None:
    series = de35_series()

    def one(n: int) -> None:
        issued = FIRST_ISSUE + pd.Timedelta(hours=n)
        data = forecast_object(issued, series)
        old.write_bytes(legacy_partition_object_key("energy_assets", ["energy_forecasts"], hour_key(issued)), data)
        new.write_bytes(partition_object_key("energy_assets", ["energy_forecasts"], hour_key(issued)), data)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, range(hours)))


def export_before(revision: str, target: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision, "energy_assets"], cwd=REPO, check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    # `python -m` puts the working directory first on sys.path: it decides which code runs.
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stderr[-2000:]}")
    return elapsed


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", default=BEFORE_REVISION)
    parser.add_argument("--hours", type=int, default=8760)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-gcs", action="store_true")
    args = parser.parse_args()
    last = FIRST_ISSUE + pd.Timedelta(hours=args.hours - 1)
    week_start = last - pd.Timedelta(hours=167)
    stamp = lambda hour: hour.strftime("%Y-%m-%dT%H:%M")  # noqa: E731
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        before_code = export_before(args.before, scratch / "before")
        output = scratch / "out.parquet"
        reads = {
            "one issue hour (gather)": ["gather", "--from", stamp(last), "--to", stamp(last), "--output", str(output)],
            "one week, 168 issue hours (gather)": ["gather", "--from", stamp(week_start), "--to", stamp(last), "--output", str(output)],
            "newest at an hour (latest)": ["latest", "--at", stamp(last), "--output", str(output)],
        }
        deployments = {"local": {"ENERGY_ASSETS_DEPLOYMENT": "local"}}
        server = None
        old_home, new_home = scratch / "old_home", scratch / "new_home"
        started = time.perf_counter()
        publish(LocalBucket(str(old_home / "bucket")), LocalBucket(str(new_home / "bucket")), args.hours)
        if not args.no_gcs:
            from gcp_storage_emulator.server import create_server
            from gcp_storage_emulator.storage import Storage
            from google.cloud import storage

            # The emulator rewrites one JSON file of every object's metadata after each upload (quadratic in the
            # number of objects); in memory that file is never read back, so filling 17,520 objects skips it.
            Storage._write_config_to_file = lambda self: None

            port = free_port()
            server = create_server("127.0.0.1", port, in_memory=True)
            server.start()
            os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
            client = storage.Client(project="bench")
            for name in ("before-layout", "after-layout"):
                client.create_bucket(name)
            publish(GCSBucket("before-layout", "bench"), GCSBucket("after-layout", "bench"), args.hours)
            deployments["gcs emulator"] = {
                "ENERGY_ASSETS_DEPLOYMENT": "prod",
                "STORAGE_EMULATOR_HOST": os.environ["STORAGE_EMULATOR_HOST"],
                "GOOGLE_CLOUD_PROJECT": "bench",
            }
        print(f"published {args.hours} issue hours in both layouts in {time.perf_counter() - started:.0f} s")
        try:
            print(f"\n| bucket | read | before ({args.before}) | after | before / after |\n|---|---|---|---|---|")
            for deployment, variables in deployments.items():
                for what, argv in reads.items():
                    sides = {
                        "before": {**os.environ, **variables, "ENERGY_ASSETS_HOME": str(old_home),
                                   "GOOGLE_CLOUD_BUCKET_NAME": "before-layout", "PYTHONPATH": str(before_code)},
                        "after": {**os.environ, **variables, "ENERGY_ASSETS_HOME": str(new_home),
                                  "GOOGLE_CLOUD_BUCKET_NAME": "after-layout"},
                    }
                    code = {"before": before_code, "after": REPO}
                    times = {side: [] for side in sides}
                    for _ in range(args.runs):
                        for side, env in sides.items():
                            command = [sys.executable, "-m", "energy_assets.app.cli", *argv]
                            times[side].append(timed(command, env, code[side]))
                    before, after = (statistics.median(times[side]) for side in ("before", "after"))
                    print(f"| {deployment} | {what} | {before:.2f} s | {after:.2f} s | {before / after:.1f}x |", flush=True)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
