"""The code location's default executor: Dagster's, with its step processes forked from one that has loaded the code."""

from __future__ import annotations

import multiprocessing
from typing import Any

from dagster import ExecutorDefinition, multi_or_in_process_executor


def step_processes_forked_from(module: str) -> ExecutorDefinition:
    """`multi_or_in_process_executor` (a process per step, or `in_process`, chosen by run config as ever) whose step
    processes start by default with `forkserver`, `module` preloaded, where the platform has it.

    Dagster's default start method, `spawn`, starts every step in a new interpreter that imports the code location
    again (dagster, pandas, LightGBM, sktime: 3 to 5 s of a 2-core machine per step, three steps in a model and
    forecasts run). A forkserver imports `module` once per run and forks each step from it. Dagster preloads a
    job's module itself only when no `preload_modules` is given, and its config turns a missing list into an empty
    one, so the module is named here. A run config that names a `start_method` keeps it.

    Python starts one forkserver per process: the steps of later runs launched from the same Python process
    (`execute_job` called again in a notebook) fork from it, with the environment and the code it loaded at
    the first. The CLI, the daemon's and the webserver's run workers start a process per run.
    """

    def forkserver_unless_chosen(config: dict[str, Any]) -> dict[str, Any]:
        multiprocess = config.get("multiprocess")
        if multiprocess is None or multiprocess.get("start_method") or "forkserver" not in multiprocessing.get_all_start_methods():
            return config
        return {"multiprocess": {**multiprocess, "start_method": {"forkserver": {"preload_modules": [module]}}}}

    return multi_or_in_process_executor.configured(
        forkserver_unless_chosen, config_schema=multi_or_in_process_executor.config_schema
    )
