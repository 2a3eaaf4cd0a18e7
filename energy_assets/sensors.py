"""What reaches an operator: freshness checks on the hourly assets, the sensor that evaluates them, and
webhook alerts for failed runs and overdue hours (`ENERGY_ASSETS_ALERT_WEBHOOK_URL`; off until set)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence

import pandas as pd
from dagster import (
    AssetCheckKey,
    AssetCheckSeverity,
    AssetChecksDefinition,
    AssetsDefinition,
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SensorDefinition,
    SkipReason,
    SupersessionWarning,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
    run_failure_sensor,
    sensor,
)

from energy_assets import settings
from energy_assets.monitoring.alerts import overdue_alert, post_alert, run_failure_alert

# The cron tick the freshness checks report as their deadline.
DEADLINE_METADATA_KEY = "dagster/latest_cron_tick_timestamp"
# Tags of a run's partition, or of a single-run backfill's range.
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def freshness_checks(assets: Sequence[AssetsDefinition]) -> Sequence[AssetChecksDefinition]:
    """A `freshness_check` on each asset: it fails when the newest published hour's partition (the partition set
    ends there, `settings.publication_delay()` behind the clock) is not materialized by minute
    `settings.freshness_deadline_minute()` of the hour it appeared in.
    """
    # Dagster 1.13 marks these checks superseded by `FreshnessPolicy`, whose policies judge when an asset was
    # last materialized, any partition: a backfill of old hours would pass them with the newest hour missing.
    # Whether the newest hour's partition exists is what these checks judge, and what this project needs.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SupersessionWarning)
        return build_time_partition_freshness_checks(
            assets=list(assets),
            deadline_cron=f"{settings.freshness_deadline_minute()} * * * *",
            timezone="UTC",
            severity=AssetCheckSeverity.ERROR,
        )


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
    """A sensor that posts each overdue asset's failed `freshness_check` to the webhook, once per partition it
    waits for (at least once: a tick whose post fails is retried whole); its cursor holds what it last posted
    per check."""
    keys = sorted((spec.key for check in checks for spec in check.check_specs), key=AssetCheckKey.to_user_string)

    @sensor(
        name="overdue_hour_alert",
        minimum_interval_seconds=60,
        description=f"Posts each asset whose newest published hour is overdue (its freshness_check failed) as JSON "
        f"to the webhook {settings.ALERT_WEBHOOK_URL} names, once per hour it waits for; does nothing without it.",
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
            # The description names the partition waited for: a new one is a new alert, a repeat is not.
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
