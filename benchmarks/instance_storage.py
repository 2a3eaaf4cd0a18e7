"""Instance storage: the same whole-graph backfill on a SQLite instance and on a PostgreSQL one, side by side in one run.

    python benchmarks/instance_storage.py               # 720 hourly partitions
    python benchmarks/instance_storage.py --hours 168 --rounds 2

Each side is one `dagster asset materialize` of raw, features, model and forecasts over the range (a
single-run backfill, as the UI launches one), in a fresh process, on its own state directory
prepared with the same history (not timed); with --rounds N the sides alternate N times and the
best time of each side is compared (the machine is shared: the best is the least disturbed). The SQLite side is the default instance of a DAGSTER_HOME
without dagster.yaml (what `dagster dev` uses); the PostgreSQL side uses deploy/dagster.yaml's
storage on a throw-away local cluster (PostgreSQL 15, default durability settings, over TCP on
127.0.0.1), started for that backfill. Synthetic source, local embedded resources.
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

# The benchmarks backfill hours of early 2023; partitions are built when the definitions are imported,
# and the subprocesses they start inherit this.
os.environ.setdefault("ENERGY_ASSETS_PARTITIONS_START", "2022-12-01-00:00")
from energy_assets.app.demo import QUIET_RUN_CONFIG, materialize_range  # noqa: E402
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours  # noqa: E402
from energy_assets.definitions import deployment_resources  # noqa: E402
from energy_assets.timeline import HOUR, hour_key  # noqa: E402
from energy_assets_tests.postgres_server import postgres_bin_dir, running_postgres  # noqa: E402

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
        DagsterInstance.ephemeral(), deployment_resources(), run_config=QUIET_RUN_CONFIG,
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
         "--partition-range", f"{hour_key(START)}...{hour_key(last)}"],
        cwd=REPO_ROOT,
        env={**os.environ, **environment, "ENERGY_ASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, default=720, help="hourly partitions in the backfill")
    parser.add_argument("--rounds", type=int, default=1, help="backfills per side, alternating SQLite and PostgreSQL")
    args = parser.parse_args()
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        sys.exit("PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install -y postgresql)")
    history = min_training_hours(ForecasterConfig()) + 24
    print(f"{os.cpu_count()} cores; whole graph, {args.hours} partitions from {START:%Y-%m-%d %H:%M} UTC "
          f"(after {history} h of history, not timed); {args.rounds} round(s), SQLite then PostgreSQL in each")
    seconds: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
    models: dict[str, set[int]] = {"SQLite": set(), "PostgreSQL": set()}
    for round_number in range(1, args.rounds + 1):
        # Alternating the sides within each round spreads the shared machine's changing load over both.
        for side in ("SQLite", "PostgreSQL"):
            home = prepared_home(history)
            try:
                if side == "SQLite":
                    seconds[side].append(timed_backfill(home, args.hours, {}))
                else:
                    with running_postgres(bin_dir) as postgres:
                        (home / "dagster_home" / "dagster.yaml").write_text(postgres_instance_yaml())
                        seconds[side].append(timed_backfill(home, args.hours, postgres.environment()))
                models[side].add(len(list((home / "model_registry").glob("*/v*"))))
            finally:
                shutil.rmtree(home)
            print(f"  round {round_number}, {side}: {seconds[side][-1]:.1f} s")
    assert models["SQLite"] == models["PostgreSQL"] and len(models["SQLite"]) == 1, f"sides trained different models: {models}"
    print(f"  {models['SQLite'].pop()} models trained in every backfill")
    best = {side: min(times) for side, times in seconds.items()}
    for side, fastest in best.items():
        print(f"  {side + ' instance:':22s} best {fastest:6.1f} s ({fastest / args.hours * 1000:.0f} ms per partition), "
              f"all {', '.join(f'{t:.1f}' for t in seconds[side])} s")
    print(f"  PostgreSQL / SQLite (best of each): {best['PostgreSQL'] / best['SQLite']:.2f}x")


if __name__ == "__main__":
    main()
