"""The README's main command: `energy-assets demo` runs the graph offline and says where the results are."""

import os
import subprocess
import sys
import time

from energy_assets.app.cli import main


def test_the_demo_fills_the_feature_group_then_publishes_forecasts(isolated_state, capsys, monkeypatch):
    # The demo sets DAGSTER_HOME for its process; setenv first so teardown restores the original.
    monkeypatch.setenv("DAGSTER_HOME", "")
    monkeypatch.delenv("DAGSTER_HOME")

    exit_code = main(["demo", "--start", "2022-12-01T00:00", "--history-days", "12", "--forecast-hours", "2"])

    assert exit_code == 0
    printed = capsys.readouterr().out
    assert f"state directory (ENERGY_ASSETS_HOME): {isolated_state}" in printed
    assert "newest forecast, issued at 2022-12-13 01:00:00+00:00: 1824 rows" in printed
    forecasts = sorted((isolated_state / "bucket" / "energy_assets" / "energy_forecasts").glob("*.parquet"))
    assert [path.name for path in forecasts] == ["2022-12-13-00:00.parquet", "2022-12-13-01:00.parquet"]
    assert (isolated_state / "dagster_home" / "dagster.yaml").exists()


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
