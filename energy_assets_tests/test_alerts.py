"""Late hours and failed runs reach an operator: freshness checks on the hourly assets, on forecast_accuracy and on
its summary, and alerts posted to a loopback webhook by the real sensors, evaluated in process and by the daemon of
`dagster dev`."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

import httpx
import pandas as pd
import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    SkipReason,
    build_run_status_sensor_context,
    build_sensor_context,
    materialize,
)
from dagster._core.test_utils import freeze_time  # Dagster's clock, as its own freshness tests set it

from energy_assets import settings
from energy_assets.app.demo import materialize_range
from energy_assets.definitions import asset_freshness_checks, defs, deployment_resources
from energy_assets.monitoring.accuracy import BASELINE_HISTORY_HOURS
from energy_assets.monitoring.alerts import AlertNotSent, post_alert
from energy_assets.partitions import hourly_partitions, scored_partitions
from energy_assets.schema import FORECAST_HORIZON_HOURS, FORECAST_SCHEMA, ISSUED_AT, conform
from energy_assets.sensors import (
    DEADLINE_METADATA_KEY,
    FRESH_UNTIL_METADATA_KEY,
    SUMMARY_ALLOWED_LAG,
    latest_deadline,
    run_failure_alert_sensor,
)
from energy_assets.sources.synthetic import synthetic_consumption
from energy_assets.storage.buckets import deployment_bucket
from energy_assets.storage.objects import parquet_bytes, partition_object_key
from energy_assets.timeline import HOUR, hour_key, newest_published_hour, parse_hour_key
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.test_monitoring import forecasts_off_by
from energy_assets_tests.test_ui_end_to_end import DAGSTER_YAML, start_dagster_dev
from energy_assets_tests.webhook_server import webhook  # noqa: F401 (fixture)

SUMMARY = AssetSelection.assets("forecast_accuracy_summary")
ACCURACY = AssetSelection.assets("forecast_accuracy")
SUMMARY_CHECK = AssetCheckKey(AssetKey("forecast_accuracy_summary"), "freshness_check")


def failed_summary_run(instance: DagsterInstance):
    """A real failing run: the accuracy summary with no accuracy stored yet."""
    result = materialize(
        list(defs.assets), selection=SUMMARY, resources=deployment_resources(), instance=instance, raise_on_error=False
    )
    assert not result.success
    return result


def failure_context(instance: DagsterInstance, result):
    """The context the daemon gives the run-failure sensor for that failed run."""
    return build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
    ).for_run_failure()


def run_freshness_checks(instance: DagsterInstance):
    """The freshness checks evaluated once, as their sensor's runs evaluate them."""
    checks = AssetSelection.checks(*asset_freshness_checks)
    result = materialize([*defs.assets, *asset_freshness_checks], selection=checks, resources=deployment_resources(), instance=instance)
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def expected_partition() -> str:
    """The partition the checks wait for now: the newest published hour as of the last deadline (minute 45 by
    default); a partition appears each hour, `ENERGY_ASSETS_PUBLICATION_DELAY_HOURS` after its hour ends."""
    return hour_key(newest_published_hour(latest_deadline(pd.Timestamp.now(tz="UTC")), settings.publication_delay()))


def materialize_raw(instance: DagsterInstance, partition_keys: list[str]) -> None:
    for key in partition_keys:
        materialize(
            list(defs.assets), selection=AssetSelection.assets("consumption_raw"), partition_key=key,
            resources=deployment_resources(), instance=instance,
        )


def test_the_freshness_checks_wait_for_the_newest_published_hour_of_each_hourly_asset():
    instance = DagsterInstance.ephemeral()
    # The two newest partitions, so the check passes whichever side of a deadline it runs on.
    materialize_raw(instance, hourly_partitions.get_partition_keys()[-2:])

    before = expected_partition()
    evaluations = run_freshness_checks(instance)
    waited_for = {before, expected_partition()}

    assert sorted(evaluations) == [
        "consumption_raw", "energy_consumption_features", "energy_forecasts", "forecast_accuracy",
        "forecast_accuracy_summary", "forecasting_model",
    ]
    assert evaluations["consumption_raw"].passed
    late = evaluations["energy_forecasts"]
    assert not late.passed and late.severity.value == "ERROR"
    assert any(f"expect partition {key} to have arrived" in late.description for key in waited_for)
    assert late.metadata["dagster/freshness_params"].value["deadline_cron"] == "45 * * * *"
    # The hourly job fills hours; it does not judge how late the newest is.
    job_checks = defs.resolve_job_def("hourly_forecast_job").asset_layer.asset_graph.asset_check_keys
    assert not {key for check in asset_freshness_checks for key in check.check_keys} & set(job_checks)


def test_a_failed_run_is_posted_to_the_webhook_by_the_run_failure_sensor(webhook, monkeypatch, caplog, capfd):
    monkeypatch.setenv(settings.ALERT_WEBHOOK_URL, webhook.url)
    instance = DagsterInstance.ephemeral()
    result = failed_summary_run(instance)

    run_failure_alert_sensor(failure_context(instance, result))

    [post] = webhook.posts
    assert post["content_type"] == "application/json" and post["path"] == f"/hooks/{webhook.secret}"
    body = post["body"]
    assert body["event"] == "run_failure" and body["run_id"] == result.run_id
    assert body["job"] == result.dagster_run.job_name
    assert body["error"].startswith("forecast_accuracy_summary: ") and "materialize forecast_accuracy first" in body["error"]
    assert body["text"].startswith(f"energy_assets: run {result.run_id} of {body['job']} failed: forecast_accuracy_summary:")
    out, err = capfd.readouterr()
    assert webhook.secret not in caplog.text + out + err


def test_an_overdue_hour_is_posted_once_per_hour_waited_for(webhook, monkeypatch):
    monkeypatch.setenv(settings.ALERT_WEBHOOK_URL, webhook.url)
    instance = DagsterInstance.ephemeral()
    materialize_raw(instance, hourly_partitions.get_partition_keys()[-2:])
    run_freshness_checks(instance)
    overdue = defs.resolve_sensor_def("overdue_hour_alert")

    first = build_sensor_context(instance=instance)
    assert overdue(first) is None
    run_freshness_checks(instance)  # evaluated again, still waiting for the same hour
    again = build_sensor_context(instance=instance, cursor=first.cursor)
    skipped = overdue(again)

    bodies = [post["body"] for post in webhook.posts]
    # forecast_accuracy was never materialized either; its summary has no accuracy update to follow.
    assert sorted(body["asset"] for body in bodies) == [
        "energy_consumption_features", "energy_forecasts", "forecast_accuracy", "forecasting_model"
    ]
    forecasts = next(body for body in bodies if body["asset"] == "energy_forecasts")
    assert forecasts["event"] == "overdue_hour" and "to have arrived" in forecasts["description"]
    assert forecasts["text"].startswith("energy_assets: energy_forecasts is late (deadline ")
    assert pd.Timestamp(forecasts["deadline"]).minute == 45
    assert isinstance(skipped, SkipReason) and len(webhook.posts) == 4


def score(instance: DagsterInstance, first: pd.Timestamp, last: pd.Timestamp) -> None:
    """forecast_accuracy materialized for real over issue hours first ... last: their forecasts (the actuals times
    1.05) stored in the bucket, their actuals and the baselines' week before them in the feature group."""
    actuals = synthetic_consumption(first - BASELINE_HISTORY_HOURS * HOUR, last + (FORECAST_HORIZON_HOURS + 1) * HOUR)
    deployment_resources()["feature_store"].insert(actuals)
    bucket = deployment_bucket()
    for issued, forecasts in forecasts_off_by(1.05, int((last - first) / HOUR) + 1, actuals, first).groupby(ISSUED_AT):
        key = partition_object_key(settings.bucket_prefix(), ["energy_forecasts"], hour_key(issued))
        bucket.write_bytes(key, parquet_bytes(conform(forecasts, FORECAST_SCHEMA, "forecasts")))
    materialize_range(ACCURACY, first, last, instance)


def summarize(instance: DagsterInstance) -> None:
    materialize(list(defs.assets), selection=SUMMARY, resources=deployment_resources(), instance=instance)


def requested_checks(result) -> set[AssetCheckKey]:
    """The checks a tick of Dagster's freshness sensor asks a run for."""
    return set(result.asset_check_keys or []) if isinstance(result, RunRequest) else set()


def test_forecast_accuracy_is_due_once_the_last_actual_of_its_newest_issue_hour_is_published():
    # Dagster's clock set past an hour's deadline, so the hour waited for does not depend on when the test runs.
    at = pd.Timestamp.now(tz="UTC").floor("h") - 2 * HOUR + pd.Timedelta(minutes=settings.freshness_deadline_minute() + 1)
    newest = newest_published_hour(latest_deadline(at), settings.publication_delay()) - FORECAST_HORIZON_HOURS * HOUR
    instance = DagsterInstance.ephemeral()
    with freeze_time(at.to_pydatetime()):
        # The partition set ends there: the UI shows no issue hour as missing that could not be scored yet.
        assert scored_partitions.get_last_partition_key() == hour_key(newest)
        score(instance, newest - 2 * HOUR, newest - 2 * HOUR)
        late = run_freshness_checks(instance)["forecast_accuracy"]
        score(instance, newest - HOUR, newest)
        fresh = run_freshness_checks(instance)["forecast_accuracy"]

    assert not late.passed and late.severity.value == "ERROR"
    assert late.description == f"Asset is overdue. We expected partition {hour_key(newest)} to have arrived, and it has not."
    assert late.metadata[DEADLINE_METADATA_KEY].value == latest_deadline(at).timestamp()
    assert fresh.passed and f"partition {hour_key(newest)} has been observed/materialized" in fresh.description


def test_a_summary_behind_forecast_accuracy_fails_its_freshness_check_and_is_posted(webhook, monkeypatch):
    monkeypatch.setenv(settings.ALERT_WEBHOOK_URL, webhook.url)
    instance = DagsterInstance.ephemeral()
    # An accuracy update recorded before the latest deadline's allowance, whichever minute the test runs at.
    updated = pd.Timestamp.now(tz="UTC").floor("s") - SUMMARY_ALLOWED_LAG - HOUR
    with freeze_time(updated.to_pydatetime()):
        issued = parse_hour_key(scored_partitions.get_last_partition_key())
        score(instance, issued, issued)

    stale = run_freshness_checks(instance)["forecast_accuracy_summary"]
    overdue = defs.resolve_sensor_def("overdue_hour_alert")
    overdue(build_sensor_context(instance=instance))
    freshness_sensor = defs.resolve_sensor_def("freshness_checks_sensor")
    while_stale = freshness_sensor(build_sensor_context(instance=instance))
    summarize(instance)
    followed = freshness_sensor(build_sensor_context(instance=instance))
    fresh = run_freshness_checks(instance)["forecast_accuracy_summary"]

    assert not stale.passed and stale.severity.value == "ERROR"
    assert stale.description.startswith(
        f"forecast_accuracy_summary is stale: forecast_accuracy was updated {updated:%Y-%m-%d %H:%M:%S} UTC "
        f"(partition {hour_key(issued)}) and forecast_accuracy_summary has not followed (never materialized)"
    )
    [posted] = [post["body"] for post in webhook.posts if post["body"]["asset"] == "forecast_accuracy_summary"]
    assert posted["event"] == "overdue_hour" and posted["description"] == stale.description
    assert pd.Timestamp(posted["deadline"]).minute == settings.freshness_deadline_minute()
    # Dagster's freshness sensor waits for the summary to be materialized before judging it again.
    assert SUMMARY_CHECK not in requested_checks(while_stale) and SUMMARY_CHECK in requested_checks(followed)
    assert fresh.passed and fresh.description.endswith("holds every update of forecast_accuracy.")


def test_an_old_summary_stays_fresh_while_forecast_accuracy_has_nothing_newer():
    instance = DagsterInstance.ephemeral()
    now = pd.Timestamp.now(tz="UTC")
    with freeze_time((now - 6 * HOUR).to_pydatetime()):
        issued = parse_hour_key(scored_partitions.get_last_partition_key())
        score(instance, issued, issued)
    with freeze_time((now - 5 * HOUR).to_pydatetime()):
        summarize(instance)

    quiet = run_freshness_checks(instance)["forecast_accuracy_summary"]
    fresh_until = quiet.metadata[FRESH_UNTIL_METADATA_KEY].value
    freshness_sensor = defs.resolve_sensor_def("freshness_checks_sensor")
    with freeze_time(fresh_until - 60):
        before_next_deadline = freshness_sensor(build_sensor_context(instance=instance))
    with freeze_time(fresh_until + 60):
        after_next_deadline = freshness_sensor(build_sensor_context(instance=instance))
    score(instance, issued + HOUR, issued + HOUR)  # a new update: the summary has a while to follow it
    waiting = run_freshness_checks(instance)["forecast_accuracy_summary"]

    assert quiet.passed and quiet.description.endswith("holds every update of forecast_accuracy.")
    assert fresh_until == quiet.metadata[DEADLINE_METADATA_KEY].value + HOUR.total_seconds()
    # Passed, the check is judged again by Dagster's freshness sensor once the next deadline is past.
    assert SUMMARY_CHECK not in requested_checks(before_next_deadline)
    assert SUMMARY_CHECK in requested_checks(after_next_deadline)
    assert waiting.passed and "has until 2 h after that to follow" in waiting.description
    assert waiting.metadata["forecast_accuracy_waiting_since"].value > quiet.metadata["last_materialized"].value

SENSORS_QUERY = """
query { repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
  sensors { name sensorState { status ticks(limit: 1) { status } } } } } } }
"""
LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }
"""
START_SENSOR = """
mutation ($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename
  ... on Sensor { sensorState { status } } ... on PythonError { message } } }
"""


@pytest.mark.slow
def test_the_daemon_posts_a_failed_run_and_an_overdue_hour(webhook, tmp_path):
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(DAGSTER_YAML)
    environment = {**os.environ, settings.ALERT_WEBHOOK_URL: webhook.url}
    state = tmp_path / "energy_assets_home"
    server = start_dagster_dev(dagster_home, state, tmp_path / "dagster_dev.log", environment)
    try:
        # A run-failure sensor watches the runs that fail after its first tick.
        repository, sensors = sensor_states(server)
        assert sensors["run_failure_alert"]["status"] == "RUNNING" and sensors["overdue_hour_alert"]["status"] == "RUNNING"
        deadline = time.monotonic() + 90
        while not sensor_states(server)[1]["run_failure_alert"]["ticks"]:
            assert time.monotonic() < deadline, f"run_failure_alert never ticked:\n{server.log_tail()}"
            time.sleep(1)
        started = server.graphql(START_SENSOR, selector={**repository, "sensorName": "freshness_checks_sensor"})
        assert started["startSensor"]["sensorState"]["status"] == "RUNNING", started

        # What the UI's "Materialize" button sends: a run of the implicit asset job, launched by the webserver.
        launched = server.graphql(
            LAUNCH_RUN,
            params={
                "selector": {**repository, "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": ["forecast_accuracy_summary"]}]},
                "mode": "default",
                "executionMetadata": {"tags": []},
            },
        )["launchPipelineExecution"]
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]

        failure = webhook.wait_for("run_failure", timeout=180)["body"]
        assert failure["run_id"] == run_id and "materialize forecast_accuracy first" in failure["error"]
        late = webhook.wait_for("overdue_hour", timeout=240)["body"]
        assert late["asset"] in (
            "consumption_raw", "energy_consumption_features", "energy_forecasts", "forecasting_model", "forecast_accuracy"
        )
        assert "to have arrived" in late["description"]
    finally:
        server.kill()
    # Nothing the webserver, the daemon, the code server or the run printed names the webhook.
    log = Path(server.log_path).read_text(errors="replace")
    assert webhook.secret not in log


def sensor_states(server) -> tuple[dict[str, str], dict[str, dict]]:
    """The code location's repository selector, and each sensor's state with its newest tick."""
    [repository] = server.graphql(SENSORS_QUERY)["repositoriesOrError"]["nodes"]
    selector = {"repositoryLocationName": repository["location"]["name"], "repositoryName": repository["name"]}
    return selector, {sensor["name"]: sensor["sensorState"] for sensor in repository["sensors"]}


def test_httpx_s_request_log_never_names_the_webhook(webhook, caplog):
    with caplog.at_level(logging.DEBUG):
        post_alert(webhook.url, {"event": "test"})
        httpx.get(f"{webhook.url.rsplit('/hooks/', 1)[0]}/other")  # other requests are still logged

    assert webhook.posts and webhook.secret not in caplog.text
    assert "HTTP Request: GET" in caplog.text


def test_the_deadline_is_a_minute_of_the_hour(monkeypatch):
    monkeypatch.setenv(settings.FRESHNESS_DEADLINE_MINUTE, "75")
    with pytest.raises(settings.SettingError, match=r"ENERGY_ASSETS_FRESHNESS_DEADLINE_MINUTE=75 is not a minute of the hour"):
        settings.freshness_deadline_minute()
    monkeypatch.setenv(settings.FRESHNESS_DEADLINE_MINUTE, "20")
    assert settings.freshness_deadline_minute() == 20
