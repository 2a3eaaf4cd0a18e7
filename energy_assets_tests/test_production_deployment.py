"""The production topology of deploy/, on a real PostgreSQL server: code server, webserver and daemon as separate processes."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetSelection
from google.cloud import storage

from energy_assets.definitions import deployment_resources
from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.schema import MODEL_NAME
from energy_assets.settings import DEFAULT_BUCKET_PREFIX as DEFAULT_PREFIX
from energy_assets.settings import HOME as HOME_VARIABLE
from energy_assets.settings import PUBLICATION_DELAY_HOURS as PUBLICATION_DELAY_VARIABLE
from energy_assets.settings import SCHEDULE_CRON as SCHEDULE_CRON_VARIABLE
from energy_assets.settings import STORAGE_EMULATOR_HOST as EMULATOR_VARIABLE
from energy_assets.storage.buckets import GCSBucket, LocalBucket
from energy_assets.storage.objects import asset_folder, partition_keys_in
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.gcs_emulator import EMULATOR_PROJECT
from energy_assets_tests.graph_helpers import RAW_AND_FEATURES, hour, partition_key, run_range
from energy_assets_tests.postgres_server import PostgresServer, postgres_server  # noqa: F401 (fixture)
from energy_assets_tests.test_ui_end_to_end import DagsterDev, _interruptible, free_port, process_group_alive

pytestmark = pytest.mark.slow

BIN_DIR = Path(sys.executable).parent
DEPLOY_DIR = REPO_ROOT / "deploy"
LOCATION_NAME = "energy_assets"

# One ingestion run fills the feature group; every scenario then forecasts its own hours. The
# scenarios' first hours are a day apart, so each one trains exactly one model, at its first hour,
# whatever ran before it: so does the uninterrupted reference run, which runs them in this order.
HISTORY_START, INGESTED_LAST = hour("2022-12-01 00:00"), hour("2022-12-14 23:00")
INGESTION = ["consumption_raw", "energy_consumption_features"]
FORECASTING = ["forecasting_model", "energy_forecasts"]
UNINTERRUPTED = (hour("2022-12-12 00:00"), hour("2022-12-12 02:00"))
DAEMON_KILLED = (hour("2022-12-13 00:00"), hour("2022-12-13 02:00"))
WORKER_KILLED = (hour("2022-12-14 00:00"), hour("2022-12-14 02:00"))
REFERENCE_RANGES = [UNINTERRUPTED, DAEMON_KILLED, WORKER_KILLED]
# The schedule targets the newest published hour, where the partitions end: the publication delay is
# chosen so that this is the last ingested hour.
SCHEDULED_HOUR = INGESTED_LAST
# A tick every minute, so one falls inside the test.
TEST_SCHEDULE_CRON = "* * * * *"
# How long the schedule must read as stopped before the test relies on it (a tick takes a moment).
SCHEDULE_SETTLE_SECONDS = 15
# forecasting_model's pool (energy_assets/assets/model.py) and its limit.
TRAINING_POOL, TRAINING_POOL_LIMIT = "model_training", 1

SCHEDULE_NAME = "hourly_forecast_schedule"
SCHEDULE_SELECTOR = {
    "repositoryName": "__repository__",
    "repositoryLocationName": LOCATION_NAME,
    "scheduleName": SCHEDULE_NAME,
}
START_SCHEDULE = """
mutation ($scheduleSelector: ScheduleSelector!) { startSchedule(scheduleSelector: $scheduleSelector) {
  __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }
"""
STOP_SCHEDULE = """
mutation ($id: String!) { stopRunningSchedule(id: $id) {
  __typename ... on ScheduleStateResult { scheduleState { status } } ... on PythonError { message } } }
"""
SCHEDULE_STATE = """
query ($scheduleSelector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $scheduleSelector) {
  __typename ... on Schedule { scheduleState { id status } } ... on PythonError { message } } }
"""
IN_PROGRESS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED")
PID_MESSAGE = re.compile(r"Started process for run \(pid: (\d+)\)")


@dataclass
class Deployment:
    """The three processes of deploy/, their shared environment, and the stores they write to."""

    postgres: PostgresServer
    environment: dict[str, str]
    log_dir: Path
    bucket: LocalBucket
    model_registry: LocalModelRegistry
    compute_log_bucket: GCSBucket
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    webserver: DagsterDev | None = None

    def commands(self) -> dict[str, list[str]]:
        """One command per process, as the README's Production section gives them."""
        workspace = str(DEPLOY_DIR / "workspace.yaml")
        return {
            "code_server": [
                str(BIN_DIR / "dagster"), "code-server", "start", "-m", "energy_assets.definitions",
                "--location-name", LOCATION_NAME,
                "-h", self.environment["ENERGY_ASSETS_CODE_SERVER_HOST"],
                "-p", self.environment["ENERGY_ASSETS_CODE_SERVER_PORT"],
            ],
            "webserver": [
                str(BIN_DIR / "dagster-webserver"), "-w", workspace,
                "-h", "127.0.0.1", "-p", self.environment["WEBSERVER_PORT"],
            ],
            "daemon": [str(BIN_DIR / "dagster-daemon"), "run", "-w", workspace],
        }

    def start(self, name: str) -> subprocess.Popen:
        """Start one process in its own session, logging to <log_dir>/<name>.log (appended across restarts)."""
        with (self.log_dir / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                self.commands()[name],
                cwd=self.log_dir,  # not the repository: the code location comes from the installed package
                env=self.environment,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_interruptible,
            )
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL to the process's group, as when its machine or container dies."""
        process = self.processes[name]
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self, timeout: float = 60) -> None:
        """Ctrl-C to every process group, then SIGKILL to any that lingers."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            if process_group_alive(process.pid):
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log_tail(self, name: str, lines: int = 40) -> str:
        return "\n".join((self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:])

    def wait_for_code_server(self, timeout: float = 180) -> None:
        """Until the code server answers Dagster's own gRPC health check."""
        deadline = time.monotonic() + timeout
        check = [str(BIN_DIR / "dagster"), "api", "grpc-health-check",
                 "-h", self.environment["ENERGY_ASSETS_CODE_SERVER_HOST"], "-p", self.environment["ENERGY_ASSETS_CODE_SERVER_PORT"]]
        while time.monotonic() < deadline:
            assert self.processes["code_server"].poll() is None, f"code server exited:\n{self.log_tail('code_server')}"
            if subprocess.run(check, env=self.environment, capture_output=True).returncode == 0:
                return
            time.sleep(1)
        pytest.fail(f"the code server did not answer within {timeout} s:\n{self.log_tail('code_server')}")

    # --- what PostgreSQL holds -----------------------------------------------------------------

    def materialization_counts(self, asset: str, first: pd.Timestamp, last: pd.Timestamp) -> dict[str, int]:
        """Partition -> number of materialization events of `asset` in PostgreSQL's event_logs table."""
        rows = self.postgres.query(
            "SELECT partition, count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
            " AND asset_key = %s AND partition BETWEEN %s AND %s GROUP BY partition",
            json.dumps([asset]), partition_key(first), partition_key(last),
        )
        return dict(rows)

    def run_status(self, run_id: str) -> str:
        (status,) = self.postgres.query("SELECT status FROM runs WHERE run_id = %s", run_id)[0]
        return status

    def runs_with_tag(self, key: str, value: str) -> list[tuple[str, str]]:
        """(run_id, status) of every run tagged key=value, oldest first."""
        return self.postgres.query(
            "SELECT runs.run_id, runs.status FROM runs JOIN run_tags ON run_tags.run_id = runs.run_id"
            " WHERE run_tags.key = %s AND run_tags.value = %s ORDER BY runs.id",
            key, value,
        )

    def step_event_time(self, run_id: str, step: str, event_type: str) -> pd.Timestamp | None:
        rows = self.postgres.query(
            "SELECT min(timestamp) FROM event_logs WHERE run_id = %s AND step_key = %s AND dagster_event_type = %s",
            run_id, step, event_type,
        )
        return pd.Timestamp(rows[0][0]) if rows[0][0] is not None else None

    def training_intervals(self) -> list[tuple[str, pd.Timestamp, pd.Timestamp]]:
        """(run_id, start, end) of every forecasting_model step the instance has run, from the event log."""
        rows = self.postgres.query(
            "SELECT run_id, min(timestamp) FILTER (WHERE dagster_event_type = 'STEP_START'),"
            " max(timestamp) FILTER (WHERE dagster_event_type IN ('STEP_SUCCESS', 'STEP_FAILURE'))"
            " FROM event_logs WHERE step_key = 'forecasting_model'"
            " AND dagster_event_type IN ('STEP_START', 'STEP_SUCCESS', 'STEP_FAILURE') GROUP BY run_id ORDER BY 2"
        )
        return [(run_id, pd.Timestamp(start), pd.Timestamp(end)) for run_id, start, end in rows]

    def run_worker_pid(self, run_id: str) -> int:
        """The pid of the run's worker process, from the engine event the code server logs when it starts it."""
        rows = self.postgres.query(
            "SELECT event FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ENGINE_EVENT'"
            " AND event LIKE %s",
            run_id, "%Started process for run (pid:%",
        )
        assert len(rows) == 1, rows
        return int(PID_MESSAGE.search(rows[0][0]).group(1))

    # --- waiting ---------------------------------------------------------------------------------

    def wait_for_backfill_success(self, backfill_id: str, timeout: float = 420) -> dict:
        """Until the backfill completes; fails at once, with the step errors, when one of its runs fails."""
        return self.webserver.wait_for_backfill(backfill_id, done=lambda b: b["status"] == "COMPLETED_SUCCESS", timeout=timeout)

    def wait_for_backfill_status(self, backfill_id: str, status: str, timeout: float = 420) -> dict:
        """Until the backfill has `status`, whatever its runs did on the way."""
        deadline = time.monotonic() + timeout
        while (backfill := self.webserver.backfill(backfill_id))["status"] != status:
            assert time.monotonic() < deadline, f"backfill {backfill_id} not {status} within {timeout} s: {backfill}"
            time.sleep(1)
        return backfill

    def wait_for_backfill_run_success(self, backfill_id: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not (run := self.backfill_run(backfill_id)) or run[1] != "SUCCESS":
            assert not run or run[1] in IN_PROGRESS, self.webserver.run_failures([run[0]])
            assert time.monotonic() < deadline, f"backfill {backfill_id}: no successful run within {timeout} s: {run}"
            time.sleep(1)

    def backfill_run(self, backfill_id: str) -> tuple[str, str] | None:
        """(run_id, status) of the first run the backfill launched, None before it has one."""
        runs = self.runs_with_tag("dagster/backfill", backfill_id)
        return runs[0] if runs else None

    # --- what the stores hold --------------------------------------------------------------------

    def forecast_objects(self, first: pd.Timestamp, last: pd.Timestamp) -> dict[str, pd.DataFrame]:
        return _forecast_objects(self.bucket, first, last)

    def model_cutoffs(self, first: pd.Timestamp, last: pd.Timestamp) -> list[pd.Timestamp]:
        """Data cutoffs of every registered model version trained for hours first ... last (duplicates kept)."""
        return _model_cutoffs(self.model_registry, first, last)


def _forecast_objects(bucket, first: pd.Timestamp, last: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """Object name -> forecast rows, for the issue hours first ... last; model_version left out (numbering differs by registry)."""
    hours = {partition_key(stamp) for stamp in pd.date_range(first, last, freq="h")}
    stored = partition_keys_in(bucket, asset_folder(DEFAULT_PREFIX, ["energy_forecasts"]))
    return {
        object_key: pd.read_parquet(io.BytesIO(bucket.read_bytes(object_key))).drop(columns="model_version")
        for hour_key, object_key in stored.items()
        if hour_key in hours
    }


def _model_cutoffs(registry: LocalModelRegistry, first: pd.Timestamp, last: pd.Timestamp) -> list[pd.Timestamp]:
    return sorted(model.data_cutoff for model in registry.versions(MODEL_NAME) if first <= model.data_cutoff <= last)


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


@dataclass
class Reference:
    """The same backfills run uninterrupted, in-process, on an empty embedded state of their own."""

    bucket: LocalBucket
    model_registry: LocalModelRegistry


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """Ingestion, then the three forecast ranges in order, in-process on the embedded local resources."""
    home = tmp_path_factory.mktemp("reference")
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(HOME_VARIABLE, str(home))
        resources = deployment_resources()
        run_range(HISTORY_START, max(last for _, last in REFERENCE_RANGES), RAW_AND_FEATURES, resources=resources)
        for first, last in REFERENCE_RANGES:
            run_range(first, last, AssetSelection.assets(*FORECASTING), resources=resources)
    return Reference(LocalBucket(root_dir=str(home / "bucket")), LocalModelRegistry(root_dir=str(home / "model_registry")))


def _assert_same_as_uninterrupted(deployment: Deployment, reference: Reference, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """Same forecast objects, one materialization per hour in PostgreSQL, one model version per training."""
    expected_objects = _forecast_objects(reference.bucket, first, last)
    expected_cutoffs = _model_cutoffs(reference.model_registry, first, last)
    objects = deployment.forecast_objects(first, last)
    assert sorted(objects) == sorted(expected_objects) and len(objects) == len(pd.date_range(first, last, freq="h"))
    for key, frame in objects.items():
        pd.testing.assert_frame_equal(frame, expected_objects[key], check_exact=False, rtol=1e-9)
    hours = {partition_key(stamp): 1 for stamp in pd.date_range(first, last, freq="h")}
    for asset in FORECASTING:
        assert deployment.materialization_counts(asset, first, last) == hours, asset
    assert deployment.model_cutoffs(first, last) == expected_cutoffs == [first]


@pytest.fixture(scope="module")
def deployment(postgres_server, gcs_emulator, tmp_path_factory) -> Iterator[Deployment]:
    """deploy/dagster.yaml and deploy/workspace.yaml verbatim; the bucket and compute logs in the GCS emulator."""
    root = tmp_path_factory.mktemp("production")
    dagster_home, energy_assets_home, log_dir = root / "dagster_home", root / "energy_assets_home", root / "logs"
    for folder in (dagster_home, energy_assets_home, log_dir):
        folder.mkdir()
    shutil.copy(DEPLOY_DIR / "dagster.yaml", dagster_home / "dagster.yaml")
    bucket_name = f"deploy-{uuid.uuid4().hex[:12]}"
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv(EMULATOR_VARIABLE, gcs_emulator)
        storage.Client(project=EMULATOR_PROJECT).create_bucket(bucket_name)
        now = pd.Timestamp.now(tz="UTC").floor("h")
        publication_delay_hours = int((now - SCHEDULED_HOUR) / pd.Timedelta(hours=1)) - 1
        settings = {
            "DAGSTER_HOME": str(dagster_home),
            **postgres_server.environment(),
            "ENERGY_ASSETS_CODE_SERVER_HOST": "127.0.0.1",
            "ENERGY_ASSETS_CODE_SERVER_PORT": str(free_port()),
            "WEBSERVER_PORT": str(free_port()),
            "ENERGY_ASSETS_DEPLOYMENT": "local",
            "ENERGY_ASSETS_HOME": str(energy_assets_home),
            "ENERGY_ASSETS_PARTITIONS_START": "2022-12-01-00:00",
            # No Hopsworks here, so the embedded deployment; compute logs still go to GCS (the emulator).
            "GOOGLE_CLOUD_BUCKET_NAME": bucket_name,
            "GOOGLE_CLOUD_PROJECT": EMULATOR_PROJECT,
            EMULATOR_VARIABLE: gcs_emulator,
            SCHEDULE_CRON_VARIABLE: TEST_SCHEDULE_CRON,
            PUBLICATION_DELAY_VARIABLE: str(publication_delay_hours),
        }
        unrelated = {name: value for name, value in os.environ.items() if not name.startswith(("ENERGY_ASSETS_", "DAGSTER_"))}
        deployed = Deployment(
            postgres=postgres_server,
            environment={**unrelated, **settings},
            log_dir=log_dir,
            bucket=LocalBucket(root_dir=str(energy_assets_home / "bucket")),
            compute_log_bucket=GCSBucket(bucket_name=bucket_name, project=EMULATOR_PROJECT),
            model_registry=LocalModelRegistry(root_dir=str(energy_assets_home / "model_registry")),
        )
        try:
            # The pool's limit, set once per instance (README, "Production").
            subprocess.run(
                [str(BIN_DIR / "dagster"), "instance", "concurrency", "set", TRAINING_POOL, str(TRAINING_POOL_LIMIT)],
                cwd=log_dir, env=deployed.environment, check=True, capture_output=True,
            )
            deployed.start("code_server")
            deployed.wait_for_code_server()
            webserver = deployed.start("webserver")
            deployed.start("daemon")
            deployed.webserver = DagsterDev(webserver, f"http://127.0.0.1:{settings['WEBSERVER_PORT']}", log_dir / "webserver.log")
            deployed.webserver.wait_until_loaded()
            ingestion = deployed.webserver.launch_backfill(INGESTION, HISTORY_START, INGESTED_LAST)
            # Its run's success is enough to go on; the backfill itself is marked complete at the daemon's next pass.
            deployed.wait_for_backfill_run_success(ingestion)
            yield deployed
        finally:
            deployed.stop_all()


@dataclass
class Scenarios:
    """The backfills launched together, and the runs the test interrupted."""

    uninterrupted: str
    daemon_killed: str
    worker_killed: str
    run_running_while_daemon_died: str = ""
    run_whose_worker_died: str = ""
    scheduled_run: str = ""


@pytest.fixture(scope="module")
def scenarios(deployment) -> Iterator[Scenarios]:
    """Three forecast backfills launched at once with the hourly schedule on; the daemon and one run worker killed mid-way.

    Each backfill trains a model, so the model_training pool runs them and the scheduled run one
    after another; launched together they cost the daemon's 30-second backfill cadence once.
    """
    webserver = deployment.webserver
    launched = Scenarios(
        daemon_killed=webserver.launch_backfill(FORECASTING, *DAEMON_KILLED),
        worker_killed=webserver.launch_backfill(FORECASTING, *WORKER_KILLED),
        uninterrupted=webserver.launch_backfill(FORECASTING, *UNINTERRUPTED),
    )
    started = webserver.graphql(START_SCHEDULE, scheduleSelector=SCHEDULE_SELECTOR)["startSchedule"]
    assert started["__typename"] == "ScheduleStateResult" and started["scheduleState"]["status"] == "RUNNING", started
    try:
        _watch(deployment, launched)
        yield launched
    finally:
        _stop_schedule(webserver)


def _stop_schedule(webserver: DagsterDev) -> bool:
    """Stop the schedule if it is running; whether it was."""
    state = webserver.graphql(SCHEDULE_STATE, scheduleSelector=SCHEDULE_SELECTOR)["scheduleOrError"]["scheduleState"]
    if state["status"] != "RUNNING":
        return False
    stopped = webserver.graphql(STOP_SCHEDULE, id=state["id"])["stopRunningSchedule"]
    assert stopped["__typename"] == "ScheduleStateResult", stopped
    return True


def _watch(deployment: Deployment, scenarios: Scenarios, timeout: float = 600) -> None:
    """Kill the daemon while one backfill's run is in progress, and another run's worker once its forecasts step
    started; stop the schedule once it has launched a run (a tick every minute would launch one a minute)."""
    deadline = time.monotonic() + timeout
    schedule_stopped_at = None
    while not (
        scenarios.run_running_while_daemon_died
        and scenarios.run_whose_worker_died
        and schedule_stopped_at is not None
        and time.monotonic() - schedule_stopped_at > SCHEDULE_SETTLE_SECONDS
    ):
        assert time.monotonic() < deadline, f"the runs to interrupt or the scheduled run did not start within {timeout} s: {scenarios}"
        if not scenarios.scheduled_run and (runs := deployment.runs_with_tag("dagster/schedule_name", SCHEDULE_NAME)):
            scenarios.scheduled_run = runs[0][0]
            schedule_stopped_at = time.monotonic()
        if scenarios.scheduled_run and _stop_schedule(deployment.webserver):
            # A tick still being processed writes the schedule's state back as running: stop it again.
            schedule_stopped_at = time.monotonic()
        if not scenarios.run_running_while_daemon_died and (run := deployment.backfill_run(scenarios.daemon_killed)):
            run_id, status = run
            assert status in IN_PROGRESS, f"run {run_id} {status} before the daemon could be killed"
            if status == "STARTED":
                deployment.kill("daemon")
                time.sleep(5)  # the run goes on without the daemon
                assert deployment.run_status(run_id) in ("STARTED", "SUCCESS")
                deployment.start("daemon")
                scenarios.run_running_while_daemon_died = run_id
        if not scenarios.run_whose_worker_died and (run := deployment.backfill_run(scenarios.worker_killed)):
            run_id, status = run
            assert status in IN_PROGRESS, f"run {run_id} {status} before its worker could be killed"
            # Mid-run: the model is trained and registered, the forecasts are being made.
            if status == "STARTED" and deployment.step_event_time(run_id, "energy_forecasts", "STEP_START"):
                worker = deployment.run_worker_pid(run_id)
                # The worker and its step processes go down together, as when their container is killed.
                for pid in [worker, *_descendants(worker)]:
                    os.kill(pid, signal.SIGKILL)
                scenarios.run_whose_worker_died = run_id
        time.sleep(0.2)


def test_backfill_through_the_webserver_writes_the_bucket_and_postgres(deployment, scenarios, reference):
    first, last = UNINTERRUPTED
    finished = deployment.wait_for_backfill_success(scenarios.uninterrupted)
    assert len(finished["runs"]) == 1  # single-run backfill policy

    _assert_same_as_uninterrupted(deployment, reference, first, last)
    ingested_hours = len(pd.date_range(HISTORY_START, INGESTED_LAST, freq="h"))
    assert len(deployment.materialization_counts("energy_consumption_features", HISTORY_START, INGESTED_LAST)) == ingested_hours
    # Step output went to the bucket through the instance's compute-log manager (dagster-gcp's, on the project's credentials).
    compute_logs = deployment.compute_log_bucket.list_keys("dagster/compute_logs/")
    assert any(finished["runs"][0]["runId"] in key for key in compute_logs), compute_logs[:5]


def test_backfills_that_train_models_never_train_at_the_same_time(deployment, scenarios):
    backfills = [scenarios.uninterrupted, scenarios.daemon_killed, scenarios.worker_killed]
    for backfill_id in backfills:
        deployment.wait_for_backfill_status(backfill_id, "COMPLETED_SUCCESS")
    run_ids = [deployment.backfill_run(backfill_id)[0] for backfill_id in backfills]

    intervals = {run_id: (start, end) for run_id, start, end in deployment.training_intervals()}
    first_training_end = min(intervals[run_id][1] for run_id in run_ids)
    # All three runs were waiting while the first one trained: the pool held the others back.
    created = deployment.postgres.query("SELECT create_timestamp FROM runs WHERE run_id IN %s", tuple(run_ids))
    assert len(created) == 3 and max(pd.Timestamp(stamp) for (stamp,) in created) < first_training_end
    # No two training steps of any run on this instance overlapped (the scheduled run's included).
    ordered = sorted(intervals.values())
    assert len(ordered) >= 3 and all(earlier[1] <= later[0] for earlier, later in zip(ordered, ordered[1:])), intervals


def test_the_daemon_launches_the_hourly_schedule_from_a_tick(deployment, scenarios):
    deadline = time.monotonic() + 300
    while deployment.run_status(scenarios.scheduled_run) in IN_PROGRESS:
        assert time.monotonic() < deadline, f"the scheduled run did not finish within 300 s\n{deployment.log_tail('daemon')}"
        time.sleep(2)
    assert deployment.run_status(scenarios.scheduled_run) == "SUCCESS", (
        f"{deployment.webserver.run_failures([scenarios.scheduled_run])}\n{deployment.log_tail('daemon')}"
    )
    assert [run_id for run_id, _ in deployment.runs_with_tag("dagster/schedule_name", SCHEDULE_NAME)] == [scenarios.scheduled_run]
    tags = dict(deployment.postgres.query("SELECT key, value FROM run_tags WHERE run_id = %s", scenarios.scheduled_run))
    assert tags["dagster/schedule_name"] == SCHEDULE_NAME and "dagster/tick" in tags
    scheduled_hour = pd.Timestamp(pd.to_datetime(tags["dagster/partition"], format="%Y-%m-%d-%H:%M"), tz="UTC")
    # The newest published hour at the tick (one later if the test crossed an hour boundary).
    assert scheduled_hour in (SCHEDULED_HOUR, SCHEDULED_HOUR + pd.Timedelta(hours=1))
    hour_key = partition_key(scheduled_hour)
    # The scheduled run fetches its hour (again, when the ingestion backfill had it) and forecasts it once.
    fetched = 2 if scheduled_hour <= INGESTED_LAST else 1
    for asset in INGESTION:
        assert deployment.materialization_counts(asset, scheduled_hour, scheduled_hour) == {hour_key: fetched}, asset
    for asset in FORECASTING:
        assert deployment.materialization_counts(asset, scheduled_hour, scheduled_hour) == {hour_key: 1}, asset
    assert list(deployment.forecast_objects(scheduled_hour, scheduled_hour))


def test_a_backfill_survives_a_killed_daemon(deployment, scenarios, reference):
    first, last = DAEMON_KILLED
    finished = deployment.wait_for_backfill_success(scenarios.daemon_killed)
    assert [run["runId"] for run in finished["runs"]] == [scenarios.run_running_while_daemon_died]
    _assert_same_as_uninterrupted(deployment, reference, first, last)


def test_a_run_whose_worker_is_killed_is_retried_to_the_same_end_state(deployment, scenarios, reference):
    first, last = WORKER_KILLED
    killed = scenarios.run_whose_worker_died
    deadline = time.monotonic() + 300
    while not (retries := deployment.runs_with_tag("dagster/parent_run_id", killed)) or retries[-1][1] in IN_PROGRESS:
        assert time.monotonic() < deadline, f"no retry of {killed} finished within 300 s: {retries}\n{deployment.log_tail('daemon')}"
        time.sleep(1)
    assert deployment.run_status(killed) == "FAILURE"
    assert [status for _, status in retries] == ["SUCCESS"]
    deployment.wait_for_backfill_status(scenarios.worker_killed, "COMPLETED_SUCCESS")
    # The retry re-ran only what had not finished: forecasting_model had succeeded in the killed run.
    assert deployment.step_event_time(retries[0][0], "forecasting_model", "STEP_START") is None
    _assert_same_as_uninterrupted(deployment, reference, first, last)
