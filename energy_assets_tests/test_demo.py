"""The README's main command: `energy-assets demo` runs the whole graph offline, quietly, on the newest published hours."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from energy_assets.settings import DEFAULT_PARTITION_DAYS
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.objects import hourly_objects
from energy_assets.timeline import hour_key, newest_published_hour
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.test_ui_end_to_end import start_dagster_dev

pytestmark = pytest.mark.slow
HOURLY_ASSETS = ["consumption_raw", "energy_consumption_features", "forecasting_model", "energy_forecasts", "forecast_accuracy"]

CLI = str(Path(sys.executable).with_name("energy-assets"))


def test_the_demo_fills_the_newest_published_hours_quietly_and_the_ui_opens_on_them(isolated_state, tmp_path):
    environment = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "ENERGY_ASSETS_PARTITIONS_START")}
    before = newest_published_hour(pd.Timestamp.now(tz="UTC"), pd.Timedelta(hours=360))

    completed = subprocess.run(
        [CLI, "demo", "--history-days", "12", "--scored-hours", "2"],
        cwd=REPO_ROOT, env={**environment, "ENERGY_ASSETS_HOME": str(isolated_state)},
        capture_output=True, text=True, timeout=600,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout + completed.stderr
    noisy = [line for line in output.splitlines() if "Warning" in line or "alembic" in line or " - INFO - " in line]
    assert noisy == []
    assert f"state directory (ENERGY_ASSETS_HOME): {isolated_state}" in output
    assert f"DAGSTER_HOME={isolated_state / 'dagster_home'} ENERGY_ASSETS_HOME={isolated_state} {Path(sys.executable).with_name('dagster')} dev -m energy_assets.definitions" in output
    # Forecasts up to the newest published hour; scores up to the newest whose 24 hours of actuals are in.
    newest = next(n for n in (before, before + pd.Timedelta(hours=1)) if f"issued at {n}" in output)  # may turn mid-run
    bucket = deployment_bucket()
    forecasts = sorted(hourly_objects(bucket, "energy_assets/energy_forecasts/"))
    accuracy = sorted(hourly_objects(bucket, "energy_assets/forecast_accuracy/"))
    assert forecasts == list(pd.date_range(newest - pd.Timedelta(hours=25), newest, freq="h"))
    assert accuracy == forecasts[:2]
    instance_settings = (isolated_state / "dagster_home" / "dagster.yaml").read_text()
    assert instance_settings == "telemetry:\n  enabled: false\n"  # otherwise Dagster's default SQLite instance

    # The UI, as the demo tells the user to open it, shows the documented range with the newest hours filled.
    server = start_dagster_dev(isolated_state / "dagster_home", isolated_state, tmp_path / "dagster_dev.log", environment)
    try:
        for asset in HOURLY_ASSETS:
            found = server.partitions(asset)
            # The set ends at the newest published hour of the moment it is asked, which may be past the demo's.
            now_newest = newest_published_hour(pd.Timestamp.now(tz="UTC"), pd.Timedelta(hours=360))
            documented_range = {
                len(pd.date_range((last - pd.Timedelta(days=DEFAULT_PARTITION_DAYS)).floor("D"), last, freq="h"))
                for last in (now_newest - pd.Timedelta(hours=1), now_newest)
            }
            assert found["partitionStats"]["numPartitions"] in documented_range, asset
            newest_filled = max(r["endKey"] for r in found["assetPartitionStatuses"]["ranges"] if r["status"] == "MATERIALIZED")
            # Accuracy of an hour needs its next 24 hours of actuals, so its newest is 24 hours older.
            assert newest_filled == hour_key(newest - pd.Timedelta(hours=24 if asset == "forecast_accuracy" else 0)), asset
        assert server.materializations("forecast_accuracy_summary")
        assert server.stop() == 0, server.log_tail()
    finally:
        server.kill()


START_TOGETHER = """
import os, sys, time
from pathlib import Path
from energy_assets.app.demo import demo_instance
go = Path(sys.argv[1])
(go.parent / f"ready-{os.getpid()}").touch()
while not go.exists():  # every process is loaded before any opens the instance
    time.sleep(0.005)
instance = demo_instance()
print(len(instance.get_runs(limit=1)), os.environ["DAGSTER_HOME"])
"""


def test_demos_started_at_once_on_a_fresh_home_share_one_sound_instance(isolated_state, tmp_path):
    environment = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    environment["ENERGY_ASSETS_HOME"] = str(isolated_state)
    go = tmp_path / "go"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", START_TOGETHER, str(go)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    deadline = time.monotonic() + 90
    while len(list(tmp_path.glob("ready-*"))) < len(starts) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outcomes = [(start.wait(timeout=120), *start.communicate()) for start in starts]

    home = isolated_state / "dagster_home"
    assert [(code, out.strip()) for code, out, _ in outcomes] == [(0, f"0 {home}")] * 4, [err[-600:] for *_, err in outcomes]
    reopened = subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        env={**environment, "DAGSTER_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert reopened.returncode == 0, reopened.stderr[-600:]
