"""What Dagster alone charges for a ranged run of hourly partitions: the floor under issue 26's goals.

    python benchmarks/dagster_floor.py                      # 8,760 h and 720 h, one round each
    python benchmarks/dagster_floor.py --hours 8760 --rounds 2

Two assets on the project's own hourly partitions (`energy_assets.partitions.hourly_partitions`), the
second depending on the first hour by hour, as `energy_consumption_features` depends on `consumption_raw`
and `energy_forecasts` on `forecasting_model`. Both take a whole range in one run (`BackfillPolicy.single_run()`, as the project's assets).
Their steps do no work at all: they write nothing and
return an empty `MaterializeResult`, and they run in the run's process (the cheapest executor). One
`dagster asset materialize --partition-range` CLI run on a fresh DAGSTER_HOME without dagster.yaml
(Dagster's default SQLite instance, the instance issue 26's goals are measured on) is then only Dagster:
the CLI's start, the run's creation, a materialization event per hour and asset, the run's end.

Printed as multiples of the reference fit of `backfill_before_after.py`, measured right before and after,
beside issue 26's goals for the runs of the same shape (8,760 h of raw + features: 120x; 720 h of model +
forecasts: 35x). Whatever this floor takes of a goal is out of reach of anything the project's code does.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pandas as pd

from backfill_before_after import DAGSTER, GOALS, load, reference_fit_seconds  # the sibling benchmark
from energy_assets.timeline import HOUR, hour_key

print = functools.partial(print, flush=True)
START = pd.Timestamp("2023-01-15 00:00", tz="UTC")
# The run of each goal whose shape a floor run copies: hours -> the goal's section.
SHAPES = {8760: "ingestion", 720: "model"}
CODE_LOCATION = textwrap.dedent(
    """
    from dagster import (
        AssetExecutionContext,
        BackfillPolicy,
        Definitions,
        MaterializeResult,
        asset,
        in_process_executor,
    )

    from energy_assets.partitions import hourly_partitions


    @asset(partitions_def=hourly_partitions, backfill_policy=BackfillPolicy.single_run())
    def upstream_hours(context: AssetExecutionContext) -> MaterializeResult:
        return MaterializeResult()


    @asset(partitions_def=hourly_partitions, backfill_policy=BackfillPolicy.single_run(), deps=[upstream_hours])
    def downstream_hours(context: AssetExecutionContext) -> MaterializeResult:
        return MaterializeResult()


    defs = Definitions(assets=[upstream_hours, downstream_hours], executor=in_process_executor)
    """
)


def floor_seconds(hours: int) -> tuple[float, int]:
    """Seconds of one CLI run of both no-op assets over `hours` hours, and the materializations it stored."""
    folder = Path(tempfile.mkdtemp(prefix="energy_assets_dagster_floor_"))
    try:
        (folder / "floor_location.py").write_text(CODE_LOCATION)
        home = folder / "dagster_home"
        home.mkdir()
        env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(folder)}
        last = START + (hours - 1) * HOUR
        started = time.perf_counter()
        subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "floor_location", "--select", "*",
             "--partition-range", f"{hour_key(START)}...{hour_key(last)}"],
            cwd=folder, env=env, check=True, capture_output=True,
        )
        seconds = time.perf_counter() - started
        return seconds, _materializations(home)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _materializations(home: Path) -> int:
    """Partitions materialized in the instance in `home`, of both assets (one event each in a ranged run)."""
    code = (
        "from dagster import AssetKey, DagsterInstance\n"
        "instance = DagsterInstance.get()\n"
        "print(sum(len(instance.get_materialized_partitions(AssetKey(key)))"
        " for key in ('upstream_hours', 'downstream_hours')))\n"
    )
    answer = subprocess.run([sys.executable, "-c", code], env={**os.environ, "DAGSTER_HOME": str(home)},
                            check=True, capture_output=True, text=True)
    return int(answer.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=int, nargs="+", default=list(SHAPES), help="hours of each floor run")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, {load()} at start")
    for hours in args.hours:
        for _ in range(args.rounds):
            before = reference_fit_seconds()
            seconds, events = floor_seconds(hours)
            reference = (before + reference_fit_seconds()) / 2
            goal = GOALS.get(SHAPES.get(hours, ""))
            share = f"; {seconds / reference / goal:.0%} of the goal's {goal}x" if goal else ""
            print(f"{hours} h, 2 no-op assets: {seconds:.1f} s = {seconds / reference:.1f}x the reference fit "
                  f"({reference:.2f} s around it), {events} materializations, "
                  f"{seconds / events * 1000:.1f} ms each{share}; {load()}")


if __name__ == "__main__":
    main()
