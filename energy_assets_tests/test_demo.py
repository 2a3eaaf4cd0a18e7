"""The README's main command: `energy-assets demo` runs the whole graph offline, quietly, on the newest published hours."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from energy_assets.timeline import hour_key, newest_published_hour
from energy_assets_tests.conftest import REPO_ROOT

CLI = str(Path(sys.executable).with_name("energy-assets"))


def test_the_demo_forecasts_and_scores_the_newest_published_hours_and_prints_only_its_own_lines(isolated_state):
    environment = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "ENERGY_ASSETS_PARTITIONS_START")}
    before = newest_published_hour(pd.Timestamp.now(tz="UTC"), pd.Timedelta(hours=360))

    completed = subprocess.run(
        [CLI, "demo", "--history-days", "12", "--forecast-hours", "2"],
        cwd=REPO_ROOT, env={**environment, "ENERGY_ASSETS_HOME": str(isolated_state)},
        capture_output=True, text=True, timeout=600,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout + completed.stderr
    noisy = [line for line in output.splitlines() if "Warning" in line or "alembic" in line or " - INFO - " in line]
    assert noisy == []
    assert f"state directory (ENERGY_ASSETS_HOME): {isolated_state}" in output
    assert f"DAGSTER_HOME={isolated_state / 'dagster_home'} ENERGY_ASSETS_HOME={isolated_state} dagster dev" in output
    # The last issue hour is the newest whose 24 hours of actuals are published (the hour may turn mid-run).
    last_issues = {hour_key(newest - pd.Timedelta(hours=24)) for newest in (before, before + pd.Timedelta(hours=1))}
    bucket = isolated_state / "bucket" / "energy_assets"
    forecasts = sorted(path.stem for path in (bucket / "energy_forecasts").glob("*.parquet"))
    accuracy = sorted(path.stem for path in (bucket / "forecast_accuracy").glob("*.parquet"))
    assert len(forecasts) == 2 and forecasts[-1] in last_issues
    assert accuracy == forecasts
    assert "telemetry" in (isolated_state / "dagster_home" / "dagster.yaml").read_text()
