"""This checkout against a git ref (default `main`), side by side in alternating rounds of one run.

    python benchmarks/backfill_before_after.py                      # all sections, ref main
    python benchmarks/backfill_before_after.py --only model --ref main --rounds 2

The ref's code is exported with `git archive` to a temporary folder and run from there (PYTHONPATH
first), with this environment's packages. Every run is a `dagster` CLI run in a new process, synthetic
source, local resources, its own fresh state and DAGSTER_HOME; rounds alternate which side goes first.
Sections:
- `model`: forecasting_model + energy_forecasts for 720 hours in one run, after the history they
  need (raw + features prepared once, untimed, copied into each run's state); seconds, models
  trained, and the size of DAGSTER_HOME afterwards (the event log, where metadata copies land);
- `hourly`: one scheduled hour of `hourly_forecast_job` (raw, features, model, forecasts; the model
  in effect already registered), `dagster job execute` with the partition tag;
- `ingestion`: consumption_raw + energy_consumption_features for `--ingestion-hours` in one run.

A DAGSTER_HOME without dagster.yaml is Dagster's default SQLite instance, whose event log writes every
event alone. `--event-levers` adds this checkout on the instance the demo creates (the batching event log
of `resources/sqlite_event_log.py`, DAGSTER_EVENT_BATCH_SIZE set), and for `ingestion` that instance with
DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS too; `--planned-subset` adds the switch alone. `--ref-levers` runs
the ref on the same instance and executor as those variants (for a ref that has the batching event log).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from dagster import AssetSelection, DagsterInstance

# The benchmarks backfill hours of early 2023; partitions are built when the definitions are imported,
# and the subprocesses they start inherit this.
os.environ.setdefault("ENERGY_ASSETS_PARTITIONS_START", "2022-12-01-00:00")
from energy_assets.app.demo import QUIET_RUN_CONFIG, materialize_range
from energy_assets.definitions import deployment_resources
from energy_assets.forecasting.training import ForecasterConfig, min_training_hours
from energy_assets.timeline import hour_key

print = functools.partial(print, flush=True)
HOUR = pd.Timedelta(hours=1)
START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
DAGSTER = str(Path(sys.executable).with_name("dagster"))
REPO_ROOT = Path(__file__).resolve().parents[1]
RAW_AND_FEATURES = "consumption_raw,energy_consumption_features"
MODEL_AND_FORECASTS = "forecasting_model,energy_forecasts"
HISTORY_HOURS = min_training_hours(ForecasterConfig()) + 24
# Events per batch write when batching is on (a backfill's output is written in ceil(N / this) batches).
EVENT_BATCH_SIZE = "1000"


def export(ref: str) -> Path:
    """The ref's tree in a new temporary folder."""
    tree = Path(tempfile.mkdtemp(prefix="energy_assets_bench_ref_"))
    archive = subprocess.run(["git", "archive", ref], cwd=REPO_ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


class Variant(NamedTuple):
    """This checkout run another way: extra environment, and the batching SQLite event log or Dagster's own."""

    code: Path
    env: dict
    batched_event_log: bool = False
    # Run config choosing the default executor's in-process mode: the steps run in the run's process.
    in_process: bool = False


def cli(args: list[str], code: Path | Variant, home: Path) -> float:
    """Seconds for one `dagster` CLI command run on `code` (or a variant of it) with state in `home`."""
    variant = code if isinstance(code, Variant) else Variant(code, {})
    code = variant.code
    dagster_home = home / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    if variant.batched_event_log:
        from energy_assets.resources.sqlite_event_log import sqlite_instance_settings  # imports alembic, which logs

        (dagster_home / "dagster.yaml").write_text(sqlite_instance_settings(dagster_home))
    env = {**os.environ, "ENERGY_ASSETS_HOME": str(home), "DAGSTER_HOME": str(dagster_home),
           "PYTHONPATH": str(code), **variant.env}
    if variant.in_process and args[0] == "asset":  # the hourly job runs in process already
        args = [*args, "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})]
    started = time.perf_counter()
    subprocess.run([DAGSTER, *args, "-m", "energy_assets.definitions"], cwd=code, env=env, check=True,
                   capture_output=True)
    return time.perf_counter() - started


def materialize(selection: str, first: pd.Timestamp, last: pd.Timestamp) -> list[str]:
    return ["asset", "materialize", "--select", selection, "--partition-range", f"{hour_key(first)}...{hour_key(last)}"]


def prepared(hours_before: int, upto: pd.Timestamp, extra=None) -> Path:
    """A state folder with raw data and features for the `hours_before` hours before `upto`, untimed."""
    home = Path(tempfile.mkdtemp(prefix="energy_assets_bench_state_"))
    os.environ["ENERGY_ASSETS_HOME"] = str(home)
    materialize_range(AssetSelection.assets(*RAW_AND_FEATURES.split(",")), upto - hours_before * HOUR, upto - HOUR,
                      DagsterInstance.ephemeral(), deployment_resources(), run_config=QUIET_RUN_CONFIG)
    if extra:
        extra(home)
    return home


def fresh_copy(template: Path) -> Path:
    home = Path(tempfile.mkdtemp(prefix="energy_assets_bench_run_"))
    shutil.copytree(template, home, dirs_exist_ok=True)
    (home / "dagster_home").mkdir(exist_ok=True)
    return home


def size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def alternate(rounds: int, sides: dict[str, Path], run) -> dict[str, list[dict]]:
    """`run(code)` for each side, `rounds` times, the side going first alternating."""
    names = list(sides)
    results: dict[str, list[dict]] = {name: [] for name in names}
    for n in range(rounds):
        for name in names if n % 2 == 0 else names[::-1]:
            results[name].append(run(sides[name]))
            print(f"    round {n + 1} {name}: " + ", ".join(f"{k} {v:.1f}" for k, v in results[name][-1].items()))
    return results


def report(results: dict[str, list[dict]], keys: dict[str, str]) -> None:
    """Medians of each side, and each later side's ratio to the first."""
    (before_name, before), *others = results.items()
    for key, label in keys.items():
        b = statistics.median(r[key] for r in before)
        line = f"  {label:32} {before_name}: {b:8.1f}"
        for name, values in others:
            a = statistics.median(r[key] for r in values)
            line += f" | {name}: {a:8.1f} ({a / b:.2f}x)"
        print(line)


def model_section(sides: dict[str, Path], rounds: int, hours: int) -> None:
    print(f"\n== model + forecasts, {hours} h in one CLI run (after {HISTORY_HOURS} h of history, untimed)")
    template = prepared(HISTORY_HOURS + hours, START + hours * HOUR)
    last = START + (hours - 1) * HOUR

    def run(code: Path) -> dict:
        home = fresh_copy(template)
        seconds = cli(materialize(MODEL_AND_FORECASTS, START, last), code, home)
        result = {"seconds": seconds, "models": len(list((home / "model_registry").glob("*/v*"))),
                  "dagster_home_mb": size_mb(home / "dagster_home")}
        shutil.rmtree(home)
        return result

    report(alternate(rounds, sides, run), {"seconds": "seconds", "models": "models trained",
                                           "dagster_home_mb": "DAGSTER_HOME MB after the run"})
    shutil.rmtree(template)


def hourly_section(sides: dict[str, Path], rounds: int) -> None:
    print("\n== one scheduled hour of hourly_forecast_job (model in effect already registered)")
    hour = START + 24 * HOUR

    def with_model(home: Path) -> None:
        materialize_range(AssetSelection.assets("forecasting_model"), hour - HOUR, hour - HOUR,
                          DagsterInstance.ephemeral(), deployment_resources(), run_config=QUIET_RUN_CONFIG)

    template = prepared(HISTORY_HOURS + 24, hour, with_model)

    def run(code: Path) -> dict:
        home = fresh_copy(template)
        seconds = cli(["job", "execute", "-j", "hourly_forecast_job",
                       "--tags", json.dumps({"dagster/partition": hour_key(hour)})], code, home)
        shutil.rmtree(home)
        return {"seconds": seconds}

    report(alternate(rounds, sides, run), {"seconds": "seconds"})
    shutil.rmtree(template)


def ingestion_section(sides: dict[str, Path], rounds: int, hours: int) -> None:
    print(f"\n== consumption_raw + energy_consumption_features, {hours} h in one CLI run")
    last = START + (hours - 1) * HOUR

    def run(code: Path) -> dict:
        home = Path(tempfile.mkdtemp(prefix="energy_assets_bench_run_"))
        (home / "dagster_home").mkdir()
        seconds = cli(materialize(RAW_AND_FEATURES, START, last), code, home)
        result = {"seconds": seconds, "dagster_home_mb": size_mb(home / "dagster_home")}
        shutil.rmtree(home)
        return result

    report(alternate(rounds, sides, run), {"seconds": "seconds", "dagster_home_mb": "DAGSTER_HOME MB after the run"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ref", default="main")
    parser.add_argument("--after-only", action="store_true", help="run this checkout only (no ratios)")
    parser.add_argument("--only", choices=["model", "hourly", "ingestion"], nargs="+")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--model-hours", type=int, default=720)
    parser.add_argument("--ingestion-hours", type=int, default=8760)
    parser.add_argument(
        "--planned-subset", action="store_true",
        help="ingestion: also run this checkout with DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS=true",
    )
    parser.add_argument(
        "--event-levers", action="store_true",
        help="also run this checkout on an instance with the batching SQLite event log (ingestion: also with the planned subset)",
    )
    parser.add_argument(
        "--in-process", action="store_true",
        help="model, ingestion: also run this checkout on the batching instance with every step in the run's process",
    )
    parser.add_argument(
        "--ref-levers", action="store_true",
        help="model, hourly: also run the ref with --event-levers / --in-process (a ref that has the batching event log)",
    )
    parser.add_argument("--no-plain", action="store_true", help="leave out this checkout on Dagster's default instance (the ref and the variants run)")
    args = parser.parse_args()
    tree = export(args.ref)
    sides = {f"before ({args.ref})": tree, "after (this checkout)": REPO_ROOT}
    if args.after_only:
        sides = {"after (this checkout)": REPO_ROOT}
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; {args.rounds} rounds each")
    sections = args.only or ["model", "hourly", "ingestion"]
    # Dagster's switch: one planned event per asset for a ranged run instead of one per partition.
    subset = {"DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true"}
    batched = {"DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE}
    if args.event_levers:
        sides["after, batched event log"] = Variant(REPO_ROOT, batched, batched_event_log=True)
        if args.ref_levers:
            sides[f"before ({args.ref}), batched event log"] = Variant(tree, batched, batched_event_log=True)
    if args.in_process:
        sides["after, batched, steps in process"] = Variant(REPO_ROOT, batched, batched_event_log=True, in_process=True)
        if args.ref_levers:
            sides[f"before ({args.ref}), batched, steps in process"] = Variant(
                tree, batched, batched_event_log=True, in_process=True
            )
    if args.no_plain:
        sides = {name: side for name, side in sides.items() if side != REPO_ROOT}
    if "model" in sections:
        model_section(sides, args.rounds, args.model_hours)
    if "hourly" in sections:
        hourly_section(sides, args.rounds)
    if "ingestion" in sections:
        if args.planned_subset:
            sides["after, planned events as one subset"] = Variant(REPO_ROOT, subset)
        if args.event_levers:
            sides["after, batched + planned subset"] = Variant(REPO_ROOT, {**batched, **subset}, batched_event_log=True)
        ingestion_section(sides, args.rounds, args.ingestion_hours)
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")
    shutil.rmtree(tree)


if __name__ == "__main__":
    main()
