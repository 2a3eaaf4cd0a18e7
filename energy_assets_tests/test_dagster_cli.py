"""Dagster's command lines on this code location (`dg`, as the README runs them, and the older `dagster`): they
work from the project folder, and say nothing of the beta notices the code location accepted, of the migrations of
a fresh instance, nor of a virtual environment that is the project's own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.graph_helpers import hour

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
# A root-logger line (`logging.basicConfig`'s format): a library's INFO reaching stderr, e.g. alembic's
# "Context impl SQLiteImpl." when a fresh instance creates its tables.
ROOT_LOGGER_INFO = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO: ")


def noise(output: str) -> list[str]:
    """The lines of `output` that are beta notices, alembic's, or a library's INFO on the root logger."""
    return [
        line for line in output.splitlines()
        if "BetaWarning" in line or "alembic" in line or "non-transactional DDL" in line or ROOT_LOGGER_INFO.match(line)
    ]


def dg_noise(output: str) -> list[str]:
    """`noise`, and dg's own notices: a superseded command, a virtual environment said not to match."""
    return noise(output) + [
        line for line in output.splitlines() if "superseded" in line or "virtual environment" in line
    ]


@pytest.fixture
def fresh_dagster_home(tmp_path) -> Path:
    """A DAGSTER_HOME whose storages do not exist yet (created, and migrated, by the first command)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


def run(command: list[str], dagster_home: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    environment = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600, check=False)


def test_dagster_commands_on_a_fresh_instance_print_no_beta_notice_and_no_alembic_line(fresh_dagster_home, isolated_state):
    validated = run([str(BIN / "dagster"), "definitions", "validate", "-m", "energy_assets.definitions"], fresh_dagster_home)
    assert validated.returncode == 0, validated.stderr[-3000:]
    # The default executor: the step runs in a process of its own, which loads the code location again.
    materialized = run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "energy_assets.definitions",
         "--select", "consumption_raw", "--partition", "2022-12-12-00:00"],
        fresh_dagster_home,
    )
    assert materialized.returncode == 0, materialized.stderr[-3000:]
    assert "STEP_WORKER_STARTED" in materialized.stderr and "RUN_SUCCESS" in materialized.stderr
    assert (isolated_state / "bucket" / "energy_assets" / "consumption_raw" / "utc_date=2022-12-12").is_dir()
    assert noise(validated.stdout + validated.stderr) == []
    assert noise(materialized.stdout + materialized.stderr) == []


def test_dg_checks_and_launches_the_code_location_from_the_project_folder(fresh_dagster_home, isolated_state):
    checked = run([str(BIN / "dg"), "check", "defs"], fresh_dagster_home)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert "All definitions loaded successfully." in checked.stdout
    # The README's backfill command, on three hours of the ingestion assets.
    launched = run(
        [str(BIN / "dg"), "launch", "--assets", "consumption_raw,energy_consumption_features",
         "--partition-range", "2022-12-12-00:00...2022-12-12-02:00"],
        fresh_dagster_home,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    from energy_assets.definitions import deployment_resources

    stored = deployment_resources()["feature_store"].read(hour("2022-12-12 00:00"), hour("2022-12-12 03:00"))
    assert len(stored) == 3 * 76
    assert dg_noise(checked.stdout + checked.stderr) == []
    assert dg_noise(launched.stdout + launched.stderr) == []
