"""Instance storage: the same whole-graph backfill on a SQLite instance and on a PostgreSQL one, side by side in one run.

    python benchmarks/instance_storage.py               # 720 hourly partitions
    python benchmarks/instance_storage.py --hours 168

Each side is one `dagster asset materialize` of raw, features, model and forecasts over the range (a
single-run backfill, as the UI launches one), in a fresh process, on its own state directory
prepared with the same history (not timed). The SQLite side is the default instance of a DAGSTER_HOME
without dagster.yaml (what `dagster dev` uses); the PostgreSQL side uses deploy/dagster.yaml's
storage on a throw-away local cluster (PostgreSQL 15, default durability settings, over TCP on
127.0.0.1), run first. Synthetic source, local embedded resources.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pandas as pd
import yaml
from dagster import AssetSelection, BetaWarning, DagsterInstance, PreviewWarning

# The project's assets use Dagster parameters Dagster marks beta; pyproject's pytest settings ignore the same.
warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)

from energy_assets.demo import PARTITION_KEY_FORMAT, QUIET_RUN_CONFIG, materialize_range  # noqa: E402
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours  # noqa: E402
from energy_assets.resources import build_resources  # noqa: E402
from energy_assets_tests.postgres_server import postgres_bin_dir, running_postgres  # noqa: E402

HOUR = pd.Timedelta(hours=1)
print = functools.partial(print, flush=True)  # progress shows while the runs go on
START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
DAGSTER = str(Path(sys.executable).with_name("dagster"))
REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_AND_FEATURES = ["consumption_raw", "energy_consumption_features"]
WHOLE_GRAPH = "consumption_raw,energy_consumption_features,forecasting_model,energy_forecasts"


def prepared_home(history_hours: int) -> Path:
    """A new state directory holding raw data and features for the hours before START (in-process, not timed)."""
    home = Path(tempfile.mkdtemp(prefix="energy_assets_bench_"))
    (home / "dagster_home").mkdir()
    os.environ["ENERGY_ASSETS_HOME"] = str(home)
    materialize_range(
        AssetSelection.assets(*RAW_AND_FEATURES), START - history_hours * HOUR, START - HOUR,
        DagsterInstance.ephemeral(), build_resources(), run_config=QUIET_RUN_CONFIG,
    )
    return home


def postgres_instance_yaml() -> str:
    """deploy/dagster.yaml's storage section alone: the run coordinator and the rest play no part in a CLI run."""
    production = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    return yaml.safe_dump({"storage": production["storage"], "telemetry": {"enabled": False}})


def timed_backfill(home: Path, hours: int, environment: dict[str, str]) -> float:
    """Seconds for one `dagster asset materialize` of the whole graph over START ... START + hours - 1."""
    last = START + (hours - 1) * HOUR
    started = time.perf_counter()
    subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "energy_assets.definitions", "--select", WHOLE_GRAPH,
         "--partition-range", f"{START.strftime(PARTITION_KEY_FORMAT)}...{last.strftime(PARTITION_KEY_FORMAT)}"],
        cwd=REPO_ROOT,
        env={**os.environ, **environment, "ENERGY_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, default=720, help="hourly partitions in the backfill")
    args = parser.parse_args()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)")
    history = min_training_hours(ForecasterConfig()) + 24
    print(f"{os.cpu_count()} cores; whole graph, {args.hours} partitions from {START:%Y-%m-%d %H:%M} UTC "
          f"(after {history} h of history, not timed)")
    sqlite_home, postgres_home = prepared_home(history), prepared_home(history)
    try:
        with running_postgres(bin_dir) as postgres:
            (postgres_home / "dagster_home" / "dagster.yaml").write_text(postgres_instance_yaml())
            postgres_seconds = timed_backfill(postgres_home, args.hours, postgres.environment())
            materializations = postgres.query(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            )[0][0]
        sqlite_seconds = timed_backfill(sqlite_home, args.hours, {})
        models = {side: len(list((home / "model_registry").glob("*/v*"))) for side, home in
                  (("sqlite", sqlite_home), ("postgres", postgres_home))}
        assert models["sqlite"] == models["postgres"], f"the two sides trained different numbers of models: {models}"
    finally:
        for home in (sqlite_home, postgres_home):
            shutil.rmtree(home)
    print(f"  {models['postgres']} models trained on each side; {materializations} materializations in PostgreSQL")
    print(f"  SQLite instance:     {sqlite_seconds:6.1f} s ({sqlite_seconds / args.hours * 1000:.0f} ms per partition)")
    print(f"  PostgreSQL instance: {postgres_seconds:6.1f} s ({postgres_seconds / args.hours * 1000:.0f} ms per partition)")
    print(f"  PostgreSQL / SQLite: {postgres_seconds / sqlite_seconds:.2f}x")


if __name__ == "__main__":
    main()
