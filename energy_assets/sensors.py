"""What reaches an operator: freshness checks on the hourly assets, on the accuracy they are scored by and on its
summary, the sensor that evaluates them, and webhook alerts for failed runs and overdue assets
(`ENERGY_ASSETS_ALERT_WEBHOOK_URL`; off until set)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence

import pandas as pd
from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetRecordsFilter,
    AssetsDefinition,
    DefaultSensorStatus,
    MetadataValue,
    RunFailureSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    SupersessionWarning,
    asset_check,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    run_failure_sensor,
    sensor,
)

from energy_assets import settings
from energy_assets.monitoring.alerts import overdue_alert, post_alert, run_failure_alert
from energy_assets.timeline import HOUR

# The cron tick the freshness checks report as their deadline.
DEADLINE_METADATA_KEY = "dagster/latest_cron_tick_timestamp"
# When a passed freshness check can fail again: Dagster's freshness sensor runs it again once this is past.
FRESH_UNTIL_METADATA_KEY = "dagster/fresh_until_timestamp"
# The check name Dagster gives the freshness checks it builds, kept for the one built here.
FRESHNESS_CHECK = "freshness_check"
# A summary that fails to refresh is requested again by the next hour's accuracy update, so one failed refresh
# heals within the hour (and run_failure_alert posts it); two hours behind, the summary has stopped following.
SUMMARY_ALLOWED_LAG = 2 * HOUR
# Tags of a run's partition, or of a single-run backfill's range.
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def deadline_cron() -> str:
    """Every hour at minute `settings.freshness_deadline_minute()`: when the freshness checks judge."""
    return f"{settings.freshness_deadline_minute()} * * * *"


def latest_deadline(now: pd.Timestamp) -> pd.Timestamp:
    """The newest tick of `deadline_cron()` at or before `now`."""
    deadline = now.floor("h") + pd.Timedelta(minutes=settings.freshness_deadline_minute())
    return deadline if deadline <= now else deadline - HOUR


def freshness_checks(assets: Sequence[AssetsDefinition]) -> Sequence[AssetChecksDefinition]:
    """A `freshness_check` on each hourly asset: it fails when the newest partition of its partition set is not
    materialized by minute `settings.freshness_deadline_minute()` of the hour that partition appeared in. For the
    assets the hourly job fills, that is the newest published hour (`settings.publication_delay()` behind the clock);
    for forecast_accuracy, the newest issue hour whose actuals are all published (`FORECAST_HORIZON_HOURS` before it).
    """
    # Dagster 1.13 marks these checks superseded by `FreshnessPolicy`, whose policies judge when an asset was
    # last materialized, any partition: a backfill of old hours would pass them with the newest hour missing.
    # Whether the newest hour's partition exists is what these checks judge, and what this project needs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_time_partition_freshness_checks(
            assets=list(assets), deadline_cron=deadline_cron(), timezone="UTC", severity=AssetCheckSeverity.ERROR
        )


def follows_upstream_check(asset: AssetsDefinition, upstream: AssetsDefinition) -> AssetChecksDefinition:
    """A `freshness_check` on an unpartitioned `asset` that refreshes after every update of `upstream`: at each
    deadline (minute `settings.freshness_deadline_minute()`), it fails when an update of `upstream` recorded
    `SUMMARY_ALLOWED_LAG` or more before that deadline is newer than the asset's last materialization.

    It judges the asset against its input, not the clock: with no new input (a snapshot source at its end), an
    old asset is still fresh, and an input that stops is its own freshness check's failure, not this one's.
    """

    @asset_check(
        asset=asset,
        name=FRESHNESS_CHECK,
        additional_deps=[upstream],
        description=f"Fails when {upstream.key.to_user_string()} was updated {_hours(SUMMARY_ALLOWED_LAG)} or more "
        f"before a deadline (minute {settings.freshness_deadline_minute()} of every hour) and this asset has not "
        "been materialized since.",
    )
    def follows_upstream(context) -> AssetCheckResult:  # an AssetCheckExecutionContext (Dagster refuses the hint as text)
        now = pd.Timestamp.now(tz="UTC")
        deadline = latest_deadline(now)
        last = context.instance.get_latest_materialization_event(asset.key)
        waiting = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=upstream.key, after_timestamp=last.timestamp if last else None),
            limit=1,
            ascending=True,
        ).records
        # The oldest update not yet followed names the episode, so a repeat of it is not a new alert.
        oldest = waiting[0] if waiting else None
        overdue = oldest is not None and oldest.timestamp <= (deadline - SUMMARY_ALLOWED_LAG).timestamp()
        metadata = {
            DEADLINE_METADATA_KEY: MetadataValue.timestamp(deadline.timestamp()),
            "allowed_lag_hours": SUMMARY_ALLOWED_LAG / HOUR,
            **({"last_materialized": MetadataValue.timestamp(last.timestamp)} if last else {}),
            **({f"{upstream.key.to_user_string()}_waiting_since": MetadataValue.timestamp(oldest.timestamp)} if oldest else {}),
        }
        if not overdue:
            metadata[FRESH_UNTIL_METADATA_KEY] = MetadataValue.timestamp((deadline + HOUR).timestamp())
        return AssetCheckResult(
            passed=not overdue,
            severity=AssetCheckSeverity.ERROR,
            description=_following_description(asset, upstream, last, oldest, overdue),
            metadata=metadata,
        )

    return follows_upstream


def _following_description(asset, upstream, last, oldest, overdue: bool) -> str:
    name, upstream_name = asset.key.to_user_string(), upstream.key.to_user_string()
    materialized = f"last materialized {_time(last.timestamp)}" if last else "never materialized"
    if oldest is None:
        return f"{name} ({materialized}) holds every update of {upstream_name}."
    update = f"{upstream_name} was updated {_time(oldest.timestamp)}" + (
        f" (partition {oldest.partition_key})" if oldest.partition_key else ""
    )
    if not overdue:
        return f"{update}; {name} ({materialized}) has until {_hours(SUMMARY_ALLOWED_LAG)} after that to follow."
    return (
        f"{name} is stale: {update} and {name} has not followed ({materialized}); it is due "
        f"{_hours(SUMMARY_ALLOWED_LAG)} after an update of {upstream_name}. Materialize it; that it did not follow on its "
        "own means its automation sensor is stopped or its runs fail."
    )


def _time(timestamp: float) -> str:
    return f"{pd.Timestamp(timestamp, unit='s', tz='UTC'):%Y-%m-%d %H:%M:%S} UTC"


def _hours(span: pd.Timedelta) -> str:
    return f"{span / HOUR:g} h"


def freshness_sensor(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    """Dagster's sensor that runs the freshness checks once they can be overdue (and after an overdue asset is
    materialized again); stopped until switched on, like the hourly schedule it watches."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)  # as in `freshness_checks`
        return build_sensor_for_freshness_checks(
            freshness_checks=checks, name="freshness_checks_sensor", default_status=DefaultSensorStatus.STOPPED
        )


def _alert_status() -> DefaultSensorStatus:
    """The alert sensors run by default once a webhook is set: nothing to switch on, and nothing runs without one."""
    return DefaultSensorStatus.RUNNING if settings.alert_webhook_url() else DefaultSensorStatus.STOPPED


def _partitions(tags: dict[str, str]) -> str | None:
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    start, end = (tags.get(tag) for tag in RANGE_TAGS)
    return f"{start} ... {end}" if start and end else None


@run_failure_sensor(
    name="run_failure_alert",
    description=f"Posts each failed run of this code location (job, run id, partitions, the steps' errors) as JSON to "
    f"the webhook {settings.ALERT_WEBHOOK_URL} names; does nothing without it.",
    default_status=_alert_status(),
)
def run_failure_alert_sensor(context: RunFailureSensorContext):
    url = settings.alert_webhook_url()
    if url is None:
        return SkipReason(f"{settings.ALERT_WEBHOOK_URL} is not set: no alert is sent")
    run = context.dagster_run
    errors = [
        f"{event.step_key}: {event.event_specific_data.error.message.strip()}"
        for event in context.get_step_failure_events()
        if event.event_specific_data and event.event_specific_data.error
    ] or [context.failure_event.message or ""]
    post_alert(url, run_failure_alert(run.job_name, run.run_id, _partitions(run.tags), errors))
    context.log.info(f"alert for failed run {run.run_id} posted to the webhook {settings.ALERT_WEBHOOK_URL} names")
    return None


def overdue_hour_alert(checks: Sequence[AssetChecksDefinition]) -> SensorDefinition:
    """A sensor that posts each overdue asset's failed `freshness_check` to the webhook, once per partition (for the
    summary, input update) it waits for (at least once: a tick whose post fails is retried whole); its cursor holds
    what it last posted per check."""
    keys = sorted((spec.key for check in checks for spec in check.check_specs), key=AssetCheckKey.to_user_string)

    @sensor(
        name="overdue_hour_alert",
        minimum_interval_seconds=60,
        description=f"Posts each overdue asset (its freshness_check failed) as JSON to the webhook "
        f"{settings.ALERT_WEBHOOK_URL} names, once per hour or update it waits for; does nothing without it.",
        default_status=_alert_status(),
    )
    def overdue_hour_alert_sensor(context: SensorEvaluationContext):
        url = settings.alert_webhook_url()
        if url is None:
            return SkipReason(f"{settings.ALERT_WEBHOOK_URL} is not set: no alert is sent")
        posted = json.loads(context.cursor) if context.cursor else {}
        sent = []
        for key in keys:
            record = context.instance.get_latest_asset_check_evaluation_record(key)
            evaluation = record.event.asset_check_evaluation if record and record.event else None
            # The description names the partition (or update) waited for: a new one is a new alert, a repeat is not.
            if evaluation is None or evaluation.passed or posted.get(key.to_user_string()) == evaluation.description:
                continue
            deadline = evaluation.metadata.get(DEADLINE_METADATA_KEY)
            post_alert(
                url,
                overdue_alert(
                    key.asset_key.to_user_string(),
                    evaluation.description or "",
                    pd.Timestamp(deadline.value, unit="s", tz="UTC").isoformat() if deadline is not None else None,
                ),
            )
            posted[key.to_user_string()] = evaluation.description
            sent.append(key.asset_key.to_user_string())
        if not sent:
            return SkipReason("no asset is overdue, or its alert was already posted")
        context.update_cursor(json.dumps(posted, sort_keys=True))
        context.log.info(f"overdue alert(s) for {', '.join(sent)} posted to the webhook {settings.ALERT_WEBHOOK_URL} names")
        return None

    return overdue_hour_alert_sensor
