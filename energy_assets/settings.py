"""Every environment setting of the project: its variable name, default and parsing, in one place.

Readers name the variable in every error, so a bad value is found where it was set.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd

from energy_assets.timeline import hour_key, parse_time

# Deployment and local state.
DEPLOYMENT = "ENERGY_ASSETS_DEPLOYMENT"
HOME = "ENERGY_ASSETS_HOME"
# Partitions and schedule.
PARTITIONS_START = "ENERGY_ASSETS_PARTITIONS_START"
PUBLICATION_DELAY_HOURS = "ENERGY_ASSETS_PUBLICATION_DELAY_HOURS"
SCHEDULE_CRON = "ENERGY_ASSETS_SCHEDULE_CRON"
# Data source.
SOURCE = "ENERGY_ASSETS_SOURCE"
SOURCE_PATH = "ENERGY_ASSETS_SOURCE_PATH"
SOURCE_DATASET = "ENERGY_ASSETS_SOURCE_DATASET"
SYNTHETIC_IN_PROD = "ENERGY_ASSETS_ALLOW_SYNTHETIC_IN_PROD"
SOURCE_API_URL = "ENERGY_ASSETS_SOURCE_API_URL"
SOURCE_DEADLINE_SECONDS = "ENERGY_ASSETS_SOURCE_DEADLINE_SECONDS"
# Feature group and bucket layout.
FEATURE_GROUP_VERSION = "ENERGY_ASSETS_FEATURE_GROUP_VERSION"
TRAINING_DATASETS = "ENERGY_ASSETS_TRAINING_DATASETS"
BUCKET_PREFIX = "ENERGY_ASSETS_BUCKET_PREFIX"
# Serving files of the course's consumers at the bucket root.
SERVING_FILES = "ENERGY_ASSETS_SERVING_FILES"
# Hopsworks.
FS_API_KEY = "FS_API_KEY"
FS_PROJECT_NAME = "FS_PROJECT_NAME"
FS_HOST = "FS_HOST"
# Google Cloud Storage.
GCS_PROJECT = "GOOGLE_CLOUD_PROJECT"
GCS_BUCKET_NAME = "GOOGLE_CLOUD_BUCKET_NAME"
GCS_SERVICE_ACCOUNT_JSON_PATH = "GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON_PATH"
STORAGE_EMULATOR_HOST = "STORAGE_EMULATOR_HOST"
# Operator alerts: the webhook that failed runs and overdue hours are posted to, and the hourly deadline.
ALERT_WEBHOOK_URL = "ENERGY_ASSETS_ALERT_WEBHOOK_URL"
FRESHNESS_DEADLINE_MINUTE = "ENERGY_ASSETS_FRESHNESS_DEADLINE_MINUTE"
# Dagster's own: hand the event log an output's asset events (one per partition) in batches this large.
DAGSTER_EVENT_BATCH_SIZE = "DAGSTER_EVENT_BATCH_SIZE"

DEPLOYMENTS = ("local", "prod")
SOURCES = ("synthetic", "file", "api")
# Without ENERGY_ASSETS_PARTITIONS_START, partitions cover this many days before the newest published hour.
DEFAULT_PARTITION_DAYS = 90
# ConsumptionDE35Hour was published 15 days after the hour it describes.
DEFAULT_PUBLICATION_DELAY_HOURS = 15 * 24
DEFAULT_BUCKET_PREFIX = "energy_assets"
# Minute 5 of every hour: the newest published hour changes once an hour.
DEFAULT_SCHEDULE_CRON = "5 * * * *"
DEFAULT_SOURCE_DATASET = "ConsumptionDE35Hour"
DEFAULT_SOURCE_API_URL = "https://api.energidataservice.dk"
# Bounds one whole fetch from the API: every page, retry and backoff wait.
DEFAULT_SOURCE_DEADLINE_SECONDS = 120.0
# The newest published hour's partitions are due by minute 45 of the hour they appear in: 40 minutes after
# the schedule's default tick at minute 5, room for a retraining and the step's retries (30 s, then 60 s).
DEFAULT_FRESHNESS_DEADLINE_MINUTE = 45
# A 8,760-hour backfill writes each asset's materializations in 9 batches; 0 writes every event alone.
DEFAULT_DAGSTER_EVENT_BATCH_SIZE = 1000


class SettingError(ValueError):
    """An environment variable holds a value the project cannot use."""


def text(name: str, default: str | None = None) -> str | None:
    """The variable's value, stripped; `default` when unset or empty."""
    value = os.environ.get(name, "").strip()
    return value or default


def integer(name: str, default: int, minimum: int | None = None) -> int:
    """The variable as an integer; `SettingError` naming it when it is not one."""
    value = text(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a whole number") from None
    if minimum is not None and number < minimum:
        raise SettingError(f"{name}={number} is below the minimum {minimum}")
    return number


def flag(name: str) -> bool:
    """The variable as a yes/no switch (true/false, yes/no, 1/0; unset is false); `SettingError` naming it otherwise."""
    value = (text(name) or "false").lower()
    if value not in ("true", "false", "yes", "no", "1", "0"):
        raise SettingError(f"{name}={value!r} is not one of true, false, yes, no, 1, 0")
    return value in ("true", "yes", "1")
def number(name: str, default: float, minimum_exclusive: float | None = None) -> float:
    """The variable as a finite number; `SettingError` naming it when it is not one."""
    value = text(name)
    if value is None:
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise SettingError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(parsed):
        raise SettingError(f"{name}={value!r} is not a finite number")
    if minimum_exclusive is not None and parsed <= minimum_exclusive:
        raise SettingError(f"{name}={parsed:g} must be above {minimum_exclusive:g}")
    return parsed


def choice(name: str, options: tuple[str, ...], default: str) -> str:
    """The variable as one of `options` (case-insensitive); `SettingError` naming it otherwise."""
    value = (text(name) or default).lower()
    if value not in options:
        raise SettingError(f"{name}={value!r} is not one of {list(options)}")
    return value


def source_kind() -> str:
    """Which source `ENERGY_ASSETS_SOURCE` names: synthetic (the default), file or api."""
    return choice(SOURCE, SOURCES, "synthetic")


def deployment_name() -> str:
    """`local` (embedded, the default) or `prod` (Hopsworks + GCS)."""
    return choice(DEPLOYMENT, DEPLOYMENTS, "local")


def state_dir() -> Path:
    """Root of every embedded resource's state; `ENERGY_ASSETS_HOME` relocates it."""
    return Path(text(HOME) or Path.cwd() / ".energy_assets").resolve()


def partitions_start() -> str | None:
    """The first hourly partition key the user set, or None; `SettingError` naming the variable when it is not an hour."""
    value = text(PARTITIONS_START)
    if value is None:
        return None
    try:
        return hour_key(parse_time(value).floor("h"))
    except ValueError:
        raise SettingError(f"{PARTITIONS_START}={value!r} is not an hour such as 2022-12-01-00:00") from None


def publication_delay() -> pd.Timedelta:
    """How long after an hour the source publishes its data."""
    return pd.Timedelta(hours=integer(PUBLICATION_DELAY_HOURS, DEFAULT_PUBLICATION_DELAY_HOURS, minimum=0))


def schedule_cron() -> str:
    """When the hourly schedule ticks (tests and demos may tick every minute)."""
    return text(SCHEDULE_CRON, DEFAULT_SCHEDULE_CRON)


def is_object_prefix(value: str, partial_last: bool = False) -> bool:
    """Whether `value` is '/'-separated names, none empty or starting with '.', so no object under it can
    land outside it or the bucket; with `partial_last`, its last part (a listing's) may be any start of a name."""
    folders = value.split("/")[:-1] if partial_last else value.split("/")
    return "\\" not in value and not any(not name or name.startswith(".") for name in folders)


def bucket_prefix() -> str:
    """The object-name prefix of everything the project writes in its bucket (`is_object_prefix`)."""
    value = text(BUCKET_PREFIX, DEFAULT_BUCKET_PREFIX)
    if not is_object_prefix(value):
        raise SettingError(
            f"{BUCKET_PREFIX}={value!r} is not an object-name prefix: use '/'-separated names, "
            "none empty or starting with '.' (e.g. energy_assets or team/energy_assets)"
        )
    return value


def source_path() -> str:
    """The snapshot file of the file source; `SettingError` naming the variable when unset."""
    value = text(SOURCE_PATH)
    if value is None:
        raise SettingError(f"{SOURCE}=file needs {SOURCE_PATH}: the snapshot file to read")
    return value


def source_dataset(supported: tuple[str, ...]) -> str:
    """The Energi Data Service dataset of the api source, one of `supported` (exact spelling)."""
    value = text(SOURCE_DATASET, DEFAULT_SOURCE_DATASET)
    if value not in supported:
        raise SettingError(f"{SOURCE_DATASET}={value!r} is not one of {list(supported)}")
    return value


def source_api_url() -> str:
    """The Energi Data Service base URL (a mirror, a proxy or a test server may stand in for it)."""
    value = text(SOURCE_API_URL, DEFAULT_SOURCE_API_URL)
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise SettingError(f"{SOURCE_API_URL}={value!r} is not an http(s) base URL such as {DEFAULT_SOURCE_API_URL}")
    return value.rstrip("/")


def source_deadline_seconds() -> float:
    """How long one fetch from the API may take in all, retries and waits included."""
    return number(SOURCE_DEADLINE_SECONDS, DEFAULT_SOURCE_DEADLINE_SECONDS, minimum_exclusive=0)


def feature_group_version() -> int:
    """The version of the feature group the project reads and writes."""
    return integer(FEATURE_GROUP_VERSION, 1, minimum=1)


def serving_files_enabled() -> bool:
    """Whether the code location publishes the course's serving files at the bucket root (`on` by default)."""
    return choice(SERVING_FILES, ("on", "off"), "on") == "on"


def alert_webhook_url() -> str | None:
    """The webhook that failed runs and overdue hours are posted to (JSON), or None: alerts off.

    Its value usually holds a secret, so an error names the variable but never shows the value.
    """
    value = text(ALERT_WEBHOOK_URL)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingError(f"{ALERT_WEBHOOK_URL} is not an http(s) URL (its value is not shown: it may hold a secret)")
    return value


def freshness_deadline_minute() -> int:
    """The minute of each hour by which the newest published hour's partitions must be materialized."""
    minute = integer(FRESHNESS_DEADLINE_MINUTE, DEFAULT_FRESHNESS_DEADLINE_MINUTE, minimum=0)
    if minute > 59:
        raise SettingError(f"{FRESHNESS_DEADLINE_MINUTE}={minute} is not a minute of the hour (0 to 59)")
    return minute
