"""Dagster's own command lines on this code location, as the README runs them: they work, and say nothing of
the beta notices the code location accepted nor of the migrations of a fresh instance."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from energy_assets_tests.conftest import REPO_ROOT

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
