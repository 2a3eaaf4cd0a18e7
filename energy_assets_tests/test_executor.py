"""The code location's default executor: a process per step, forked from a server that imported the code once;
the run config still chooses in-process steps or another start method."""

from __future__ import annotations

import os
import sys

import pytest
from dagster import DagsterInstance, execute_job, job, op, reconstructable

from energy_assets.definitions import defs

pytestmark = pytest.mark.slow  # each run starts step processes that import the code location

# The executor the code location's asset jobs run with (what `dagster asset materialize` and the UI use).
EXECUTOR = defs.get_repository_def().get_job("__ASSET_JOB").executor_def


@op
def step_process() -> dict:
    """Where the step ran: its process and that process's parent."""
    return {"pid": os.getpid(), "parent": os.getppid()}


@job(executor_def=EXECUTOR)
def one_step():
    step_process()


def ran(instance: DagsterInstance, run_config: dict | None = None) -> dict:
    with execute_job(reconstructable(one_step), instance, run_config=run_config) as result:
        assert result.success
        return result.output_for_node("step_process")


@pytest.fixture
def instance(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        yield instance


@pytest.mark.skipif(sys.platform == "win32", reason="no forkserver on Windows")
def test_a_step_process_is_forked_from_a_server_not_started_by_the_run(instance):
    where = ran(instance)

    # Dagster's own default (spawn) starts each step process from the run's process, which imports everything again.
    assert where["pid"] != os.getpid()
    assert where["parent"] != os.getpid()


def test_the_run_config_still_chooses_in_process_steps_or_another_start_method(instance):
    assert ran(instance, {"execution": {"config": {"in_process": {}}}})["pid"] == os.getpid()
    spawned = ran(instance, {"execution": {"config": {"multiprocess": {"start_method": {"spawn": {}}}}}})
    assert spawned["pid"] != os.getpid() and spawned["parent"] == os.getpid()

