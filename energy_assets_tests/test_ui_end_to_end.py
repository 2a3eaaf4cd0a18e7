"""The graph driven as a user drives it: `dg dev` on loopback, backfills launched through the UI's GraphQL API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pytest

from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.objects import partition_object_key
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.graph_helpers import hour, partition_key

pytestmark = pytest.mark.slow

DG = Path(sys.executable).with_name("dg")
# The model trains on min_training_hours + its validation day (264 hours) before the first forecast.
HISTORY_START, FIRST, LAST = hour("2022-12-01 00:00"), hour("2022-12-12 00:00"), hour("2022-12-12 02:00")
# Raw rows and features up to the actuals of the last forecast, so its accuracy can be scored too.
FEATURES_LAST = LAST + pd.Timedelta(hours=24)
INGESTION = ["consumption_raw", "energy_consumption_features"]
# Everything downstream of the feature group. Selecting the ingestion assets too would make the
# backfill follow the model's 30-day window of features forward, to 722 model partitions.
DOWNSTREAM = ["forecasting_model", "energy_forecasts", "forecast_accuracy", "forecast_accuracy_summary"]
# What the UI's instance would use, with a run queue polled every second so runs start promptly.
DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster._core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    max_concurrent_runs: 1
"""

LOCATION_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } ... on PythonError { message } } }
"""
# The mutation of the UI's "Launch backfill" button (LaunchAssetChoosePartitionsDialog).
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { message }
    ... on UnauthorizedError { message }
  }
}
"""
BACKFILL_QUERY = """
query ($backfillId: String!) { partitionBackfillOrError(backfillId: $backfillId) {
  __typename ... on PartitionBackfill { status error { message } runs(limit: 20) { runId status tags { key value } } }
  ... on PythonError { message } } }
"""
RUN_FAILURES_QUERY = """
query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { eventConnection(afterCursor: null) { events {
  __typename ... on ExecutionStepFailureEvent { stepKey error { message } }
  ... on RunFailureEvent { message error { message } } } } } } }
"""
MATERIALIZATIONS_QUERY = """
query ($assetKey: AssetKeyInput!) { assetOrError(assetKey: $assetKey) { ... on Asset {
  assetMaterializations(limit: 1000) { partition runId metadataEntries { label
    ... on MarkdownMetadataEntry { mdStr } ... on FloatMetadataEntry { floatValue } } } } } }
"""
PARTITIONS_QUERY = """
query ($assetKey: AssetKeyInput!) { assetNodeOrError(assetKey: $assetKey) { ... on AssetNode {
  partitionStats { numMaterialized numPartitions }
  assetPartitionStatuses { ... on TimePartitionStatuses { ranges { startKey endKey status } } } } } }
"""
CHECK_QUERY = """
query ($assetKey: AssetKeyInput!, $checkName: String!) { assetCheckExecutions(assetKey: $assetKey,
  checkName: $checkName, limit: 5) { status evaluation { success severity } } }
"""


@dataclass
class DagsterDev:
    """A running `dagster dev` (webserver and daemon) and the GraphQL endpoint the UI talks to."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def graphql(self, query: str, **variables) -> dict:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60)
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def wait_until_loaded(self, timeout: float = 180) -> None:
        """Until the webserver answers and the code location has loaded."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited early:\n{self.log_tail()}"
            try:
                workspace = self.graphql(LOCATION_QUERY)["workspaceOrError"]
            except httpx.TransportError:
                time.sleep(1)
                continue
            entries = workspace.get("locationEntries") or []
            if entries and entries[0]["loadStatus"] == "LOADED":
                location = entries[0]["locationOrLoadError"]
                assert location["__typename"] == "RepositoryLocation", location
                return
            time.sleep(1)
        pytest.fail(f"the code location did not load within {timeout} s:\n{self.log_tail()}")

    def launch_backfill(self, assets: list[str], first: pd.Timestamp, last: pd.Timestamp) -> str:
        """What the UI sends when a user selects `assets`, picks hours first ... last and launches a backfill."""
        keys = [partition_key(stamp) for stamp in pd.date_range(first, last, freq="h")]
        params = {
            "assetSelection": [{"path": [asset]} for asset in assets],
            "partitionNames": keys,
            "fromFailure": False,
            "tags": [{"key": "dagster/from_ui", "value": "true"}],
        }
        launched = self.graphql(LAUNCH_BACKFILL, backfillParams=params)["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        return launched["backfillId"]

    def backfill(self, backfill_id: str) -> dict:
        found = self.graphql(BACKFILL_QUERY, backfillId=backfill_id)["partitionBackfillOrError"]
        assert found["__typename"] == "PartitionBackfill", found
        return found

    def wait_for_backfill(self, backfill_id: str, done, timeout: float = 240) -> dict:
        """Poll the backfill until `done(backfill)`; fail at once, with the step errors, when a run fails."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            backfill = self.backfill(backfill_id)
            failed = [run["runId"] for run in backfill["runs"] if run["status"] in ("FAILURE", "CANCELED")]
            if failed or backfill["status"] in ("FAILED", "COMPLETED_FAILED", "CANCELED"):
                pytest.fail(f"backfill {backfill_id} {backfill['status']}: {self.run_failures(failed)} {backfill['error']}")
            if done(backfill):
                return backfill
            time.sleep(2)
        pytest.fail(f"backfill {backfill_id} not done within {timeout} s: {self.backfill(backfill_id)}")

    def run_failures(self, run_ids: list[str]) -> list[str]:
        events = [
            event
            for run_id in run_ids
            for event in self.graphql(RUN_FAILURES_QUERY, runId=run_id)["runOrError"]["eventConnection"]["events"]
        ]
        steps = [f"{e['stepKey']}: {e['error']['message']}" for e in events if e["__typename"] == "ExecutionStepFailureEvent"]
        # A run can fail outside its steps (its worker lost, a launch error): say so too.
        runs = [f"run: {e['message']} {(e['error'] or {}).get('message', '')}" for e in events if e["__typename"] == "RunFailureEvent"]
        return steps + runs

    def partitions(self, asset: str) -> dict:
        """The asset's partition counts and its materialized ranges of partition keys."""
        return self.graphql(PARTITIONS_QUERY, assetKey={"path": [asset]})["assetNodeOrError"]

    def materializations(self, asset: str) -> list[dict]:
        return self.graphql(MATERIALIZATIONS_QUERY, assetKey={"path": [asset]})["assetOrError"]["assetMaterializations"]

    def kill(self) -> None:
        """SIGKILL to the process group, when a test failed before its clean shutdown."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 60) -> int:
        """Ctrl-C, as in a terminal: SIGINT to the whole process group, then wait for dagster dev to exit."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=timeout)


def _interruptible() -> None:
    # A shell that runs pytest in the background ignores SIGINT, and children would inherit that.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_dagster_dev(
    dagster_home: Path, energy_assets_home: Path, log_path: Path, environment=None, command: list[str] | None = None
) -> DagsterDev:
    """`command` (default `dg dev` in the project) on a free loopback port with these homes, in its own session,
    once its code location loaded."""
    port = free_port()
    env = {**(os.environ if environment is None else environment), "DAGSTER_HOME": str(dagster_home),
           "ENERGY_ASSETS_HOME": str(energy_assets_home)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*(command or [str(DG), "dev"]), "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
    server = DagsterDev(process, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_until_loaded()
    except BaseException:
        server.kill()
        raise
    return server


@pytest.fixture
def dagster_dev(tmp_path, isolated_state) -> Iterator[DagsterDev]:
    """`dagster dev` with its own DAGSTER_HOME (a run queue polled every second) and ENERGY_ASSETS_HOME."""
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    server = start_dagster_dev(dagster_home, isolated_state, tmp_path / "dagster_dev.log")
    try:
        yield server
    finally:
        server.kill()


def process_group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_backfills_launched_as_in_the_ui_materialize_the_whole_graph(dagster_dev):
    ingestion = dagster_dev.launch_backfill(INGESTION, HISTORY_START, FEATURES_LAST)
    dagster_dev.wait_for_backfill(ingestion, done=lambda b: b["runs"] and all(r["status"] == "SUCCESS" for r in b["runs"]))
    downstream = dagster_dev.launch_backfill(DOWNSTREAM, FIRST, LAST)
    finished = dagster_dev.wait_for_backfill(downstream, done=lambda b: b["status"] == "COMPLETED_SUCCESS")

    # Single-run backfill policy: one run for every hour of a stage, not one per hour.
    ingestion_runs = dagster_dev.backfill(ingestion)["runs"]
    assert len(ingestion_runs) == 1
    assert {t["key"]: t["value"] for t in ingestion_runs[0]["tags"]}["dagster/asset_partition_range_start"] == (
        partition_key(HISTORY_START)
    )
    assert 1 <= len(finished["runs"]) <= 3

    hours = [partition_key(stamp) for stamp in pd.date_range(FIRST, LAST, freq="h")]
    history_hours = len(pd.date_range(HISTORY_START, FEATURES_LAST, freq="h"))
    bucket = deployment_bucket()
    assert len(bucket.list_keys("energy_assets/consumption_raw/")) == history_hours
    for asset in ("energy_forecasts", "forecast_accuracy"):
        assert bucket.list_keys(f"energy_assets/{asset}/") == sorted(
            partition_object_key("energy_assets", [asset], key) for key in hours
        )
        assert sorted(m["partition"] for m in dagster_dev.materializations(asset)) == hours
    assert len(dagster_dev.materializations("energy_consumption_features")) == history_hours
    assert sorted(m["partition"] for m in dagster_dev.materializations("forecasting_model")) == hours

    # The plot is on the newest partition of a run's range, not copied onto every hour.
    newest = next(m for m in dagster_dev.materializations("energy_forecasts") if m["partition"] == hours[-1])
    forecast_metadata = {e["label"]: e for e in newest["metadataEntries"]}
    assert forecast_metadata["forecast_plot"]["mdStr"].startswith("![forecast issued at")
    (summary,) = dagster_dev.materializations("forecast_accuracy_summary")
    summary_metadata = {e["label"]: e for e in summary["metadataEntries"]}
    assert summary_metadata["wape_over_time"]["mdStr"].startswith("![WAPE per issue hour](data:image/png;base64,")
    assert 0 < summary_metadata["model_wape"]["floatValue"] < 1
    (check,) = dagster_dev.graphql(
        CHECK_QUERY, assetKey={"path": ["forecast_accuracy_summary"]}, checkName="rolling_accuracy_acceptable"
    )["assetCheckExecutions"]
    assert check["status"] in ("SUCCEEDED", "FAILED") and check["evaluation"]["severity"] == "WARN"
    assert dagster_dev.backfill(ingestion)["status"] == "COMPLETED_SUCCESS"

    group = dagster_dev.process.pid
    assert dagster_dev.stop() == 0, dagster_dev.log_tail()
    deadline = time.monotonic() + 30
    while process_group_alive(group) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not process_group_alive(group), "webserver, daemon or code server still running after dagster dev exited"
