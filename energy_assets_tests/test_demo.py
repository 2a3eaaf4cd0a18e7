"""The README's main command: `energy-assets demo` runs the whole graph offline, quietly, on the newest published
hours; the commands it prints open the UI on them and fill the hours published after it."""

import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from dagster import DagsterInstance

from energy_assets import settings
from energy_assets.schema import FORECAST_HORIZON_HOURS
from energy_assets.settings import DEFAULT_PARTITION_DAYS
from energy_assets.storage.buckets import LocalBucket
from energy_assets.storage.objects import hourly_objects
from energy_assets.storage.serving import SERVING_OBJECTS
from energy_assets.timeline import HOUR, hour_key, newest_published_hour
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.test_ui_end_to_end import start_dagster_dev

pytestmark = pytest.mark.slow
HOURLY_ASSETS = ["consumption_raw", "energy_consumption_features", "forecasting_model", "energy_forecasts", "forecast_accuracy"]
DELAY = pd.Timedelta(hours=settings.DEFAULT_PUBLICATION_DELAY_HOURS)
# The demo runs as if two hours ago (a publication delay two hours longer), so that the hours published
# "since" exist at once for the command it prints, which the user's shell runs with the default delay.
DEMO_DELAY = DELAY + 2 * HOUR

CLI = str(Path(sys.executable).with_name("energy-assets"))


@dataclass
class Demo:
    """One `energy-assets demo`, and what it had stored when it finished (before any test changed it)."""

    state: Path
    dagster_home: Path
    output: str
    newest: pd.Timestamp
    environment: dict[str, str]
    forecasts: list[pd.Timestamp]
    accuracy: list[pd.Timestamp]
    runs: list[tuple[str, dict[str, str]]]
    unmaterialized: list[str]
    serving_issued_at: str

    def bucket(self) -> LocalBucket:
        return LocalBucket(root_dir=str(self.state / "bucket"))

    def printed_after(self, heading: str) -> str:
        """The command printed on the line after the line starting with `heading`."""
        lines = self.output.splitlines()
        return next(lines[i + 1].strip() for i, line in enumerate(lines) if line.startswith(heading))


def noisy(output: str) -> list[str]:
    """Lines that are no concern of a user: warnings, alembic's migrations, step logs below WARNING."""
    return [line for line in output.splitlines() if "Warning" in line or "alembic" in line or " - INFO - " in line]


def stored_hours(bucket: LocalBucket, asset: str) -> list[pd.Timestamp]:
    return sorted(hourly_objects(bucket, f"energy_assets/{asset}/"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    """The README's command, on a state directory of its own and the default 90-day partition set."""
    state = tmp_path_factory.mktemp("demo") / "energy_assets_home"
    unset = ("DAGSTER_HOME", "ENERGY_ASSETS_HOME", "ENERGY_ASSETS_PARTITIONS_START", settings.PUBLICATION_DELAY_HOURS)
    environment = {key: value for key, value in os.environ.items() if key not in unset}
    completed = subprocess.run(
        [CLI, "demo", "--history-days", "12", "--scored-hours", "2"],
        cwd=REPO_ROOT,
        env={**environment, settings.HOME: str(state), settings.PUBLICATION_DELAY_HOURS: str(int(DEMO_DELAY / HOUR))},
        capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    output = completed.stdout + completed.stderr
    issued = re.search(r"^energy_forecasts issued at (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", output, re.MULTILINE)
    assert issued, output
    bucket = LocalBucket(root_dir=str(state / "bucket"))
    dagster_home = state / "dagster_home"
    instance = DagsterInstance.from_config(str(dagster_home))
    try:
        from energy_assets.definitions import defs

        runs = [(run.job_name, dict(run.tags)) for run in instance.get_runs()]
        unmaterialized = [
            key.to_user_string() for key in defs.resolve_all_asset_keys()
            if instance.get_latest_materialization_event(key) is None
        ]
        serving = instance.get_latest_materialization_event(defs.resolve_assets_def("serving_files").key)
        serving_issued_at = serving.asset_materialization.metadata["issued_at"].value if serving else ""
    finally:
        instance.dispose()
    return Demo(
        state=state, dagster_home=dagster_home, output=output, newest=pd.Timestamp(issued.group(1), tz="UTC"),
        environment=environment, forecasts=stored_hours(bucket, "energy_forecasts"),
        accuracy=stored_hours(bucket, "forecast_accuracy"), runs=runs, unmaterialized=unmaterialized,
        serving_issued_at=serving_issued_at,
    )


def test_the_demo_fills_the_newest_published_hours_quietly(demo):
    assert noisy(demo.output) == []
    assert f"state directory (ENERGY_ASSETS_HOME): {demo.state}" in demo.output
    # Forecasts up to the newest published hour; scores up to the newest whose 24 hours of actuals are in.
    started = newest_published_hour(pd.Timestamp.now(tz="UTC"), DEMO_DELAY)
    assert demo.newest in (started, started - HOUR)  # the hour may turn during the demo
    assert demo.forecasts == list(pd.date_range(demo.newest - 25 * HOUR, demo.newest, freq="h"))
    assert demo.accuracy == demo.forecasts[:2]
    instance_settings = (demo.dagster_home / "dagster.yaml").read_text()
    assert instance_settings == "telemetry:\n  enabled: false\n"  # otherwise Dagster's default SQLite instance


def test_after_the_demo_every_asset_has_materializations_from_runs_tagged_as_the_demos(demo):
    assert demo.unmaterialized == []
    # The serving files at the bucket root are those of the newest forecast.
    assert all(demo.bucket().exists(name) for name in SERVING_OBJECTS)
    assert pd.Timestamp(demo.serving_issued_at) == demo.newest
    # Raw + features, model + forecasts, accuracy, then the summary with the serving files: the Runs page
    # says each came from the demo.
    demo_runs = [tags for _, tags in demo.runs if tags.get("source") == "demo"]
    assert len(demo_runs) == 4
    assert all(tags.get("source") in ("demo", "catch-up") for _, tags in demo.runs)


def test_the_command_the_demo_prints_last_fills_the_hours_published_since(demo):
    command = demo.output.splitlines()[-1].strip()
    assert command == shlex.join(
        [f"DAGSTER_HOME={demo.dagster_home}", f"ENERGY_ASSETS_HOME={demo.state}", CLI, "catch-up"]
    )
    caught_up = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=demo.environment, capture_output=True, text=True,
                               timeout=600)

    assert caught_up.returncode == 0, caught_up.stderr[-3000:]
    assert noisy(caught_up.stdout + caught_up.stderr) == []
    newest = pd.Timestamp(re.search(r"energy_forecasts is materialized up to (\S+ \S+) UTC", caught_up.stdout).group(1), tz="UTC")
    assert newest - demo.newest in (2 * HOUR, 3 * HOUR)  # 3 if the hour turned since the demo
    bucket = demo.bucket()
    assert stored_hours(bucket, "energy_forecasts") == list(pd.date_range(demo.forecasts[0], newest, freq="h"))
    assert stored_hours(bucket, "consumption_raw")[-1] == newest
    assert stored_hours(bucket, "forecast_accuracy") == list(pd.date_range(demo.accuracy[0], newest - FORECAST_HORIZON_HOURS * HOUR, freq="h"))
    instance = DagsterInstance.from_config(str(demo.dagster_home))
    try:
        runs = [(run.job_name, dict(run.tags)) for run in instance.get_runs(limit=3)]
        from energy_assets.definitions import defs

        serving = instance.get_latest_materialization_event(defs.resolve_assets_def("serving_files").key)
    finally:
        instance.dispose()
    assert pd.Timestamp(serving.asset_materialization.metadata["issued_at"].value) == newest
    assert [tags.get("source") for _, tags in runs] == ["catch-up"] * 3
    job_name, job_tags = runs[-1]  # newest first
    assert job_name == "hourly_forecast_job"
    assert (job_tags["dagster/asset_partition_range_start"], job_tags["dagster/asset_partition_range_end"]) == (
        hour_key(demo.forecasts[-1] + HOUR), hour_key(newest)
    )

    # Run again at once: nothing newer is published, unless the hour has just turned.
    again = subprocess.run(command, shell=True, cwd=REPO_ROOT, env=demo.environment, capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    if newest_published_hour(pd.Timestamp.now(tz="UTC"), DELAY) == newest:
        assert f"nothing to fill: energy_forecasts is materialized up to {newest:%Y-%m-%d %H:%M} UTC" in again.stdout


def test_the_ui_the_demo_points_to_shows_the_filled_hours(demo, tmp_path):
    command = shlex.split(demo.printed_after("see it in the Dagster UI"))
    variables = dict(word.split("=", 1) for word in command if "=" in word and not word.startswith("-"))
    assert variables == {"DAGSTER_HOME": str(demo.dagster_home), "ENERGY_ASSETS_HOME": str(demo.state)}
    program = [word for word in command if word not in [f"{k}={v}" for k, v in variables.items()]]
    server = start_dagster_dev(demo.dagster_home, demo.state, tmp_path / "dev.log", demo.environment, command=program)
    try:
        bucket = demo.bucket()
        for asset in HOURLY_ASSETS:
            found = server.partitions(asset)
            # The set ends at the newest published hour of the moment it is asked, which may be past the demo's;
            # forecast_accuracy's ends at the newest issue hour whose actuals are all published, none missing after it.
            now_newest = newest_published_hour(pd.Timestamp.now(tz="UTC"), DELAY)
            unscorable = FORECAST_HORIZON_HOURS * HOUR if asset == "forecast_accuracy" else 0 * HOUR
            documented_range = {
                len(pd.date_range((last - pd.Timedelta(days=DEFAULT_PARTITION_DAYS)).floor("D"), last - unscorable, freq="h"))
                for last in (now_newest - HOUR, now_newest)
            }
            assert found["partitionStats"]["numPartitions"] in documented_range, asset
            newest_filled = max(r["endKey"] for r in found["assetPartitionStatuses"]["ranges"] if r["status"] == "MATERIALIZED")
            # The newest stored hour (the demo's, or the catch-up's if it ran first); accuracy waits for actuals.
            stored = "forecast_accuracy" if asset == "forecast_accuracy" else "energy_forecasts"
            assert newest_filled == hour_key(stored_hours(bucket, stored)[-1]), asset
        assert server.materializations("forecast_accuracy_summary")
        assert server.materializations("serving_files")
        assert server.stop() == 0, server.log_tail()
    finally:
        server.kill()
    log = (tmp_path / "dev.log").read_text(errors="replace")
    assert [line for line in log.splitlines() if "BetaWarning" in line or "alembic" in line or "superseded" in line] == []


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
