"""What a registered model records: registry-safe metric names, the training data's provenance and
content hash, and the compact registry description that fits the backend's column."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd

from energy_assets.schema import AREA, CONSUMER_TYPE, DATETIME, SERIES_KEY, TARGET
from energy_assets.timeline import to_utc_hour

# Hopsworks stores a model version's description in a VARCHAR(1000) column; keep a margin.
DESCRIPTION_LIMIT = 1000
DESCRIPTION_BUDGET = 900
DESCRIPTION_FORMAT = 1

# Hopsworks returns metric names through humps.decamelize ("snaive168_mape" -> "snaive_168__mape"):
# lowercase words joined by single underscores are the names that come back unchanged.
REGISTRY_SAFE_NAME = re.compile(r"[a-z]+(?:_[a-z]+)*")
# Forecaster labels of the validation (evaluation.MODEL values) as the registry names them.
REGISTRY_FORECASTER_NAMES = {"model": "model", "snaive24": "seasonal_naive_day", "snaive168": "seasonal_naive_week"}


def registry_metric_name(forecaster: str, metric: str) -> str:
    """The registry's name of `metric` (mape, rmspe) of one validated forecaster (model, snaive24, snaive168)."""
    return f"{REGISTRY_FORECASTER_NAMES.get(forecaster, forecaster)}_{metric}"


def registry_metrics(validation_metrics: Mapping[str, float]) -> dict[str, float]:
    """Validation metrics keyed `<forecaster>_<metric>` under registry-safe names; safe names pass unchanged."""
    renamed = {}
    for key, value in validation_metrics.items():
        forecaster, _, metric = key.rpartition("_")
        renamed[registry_metric_name(forecaster, metric) if forecaster else key] = float(value)
    return renamed


def check_metric_names(metrics: Mapping[str, Any]) -> None:
    """`ValueError` naming every metric whose name would not read back unchanged from the registry."""
    unsafe = sorted(name for name in metrics if not REGISTRY_SAFE_NAME.fullmatch(name))
    if unsafe:
        raise ValueError(
            f"metric name(s) {unsafe} would read back renamed from Hopsworks (its SDK decamelizes them); "
            "use lowercase words joined by single underscores, no digits"
        )


def frame_sha256(rows: pd.DataFrame) -> str:
    """Content hash of canonical consumption rows, independent of row order and of pandas' dtypes."""
    frame = rows[[DATETIME, *SERIES_KEY, TARGET]].sort_values([*SERIES_KEY, DATETIME], kind="stable")
    times = pd.to_datetime(frame[DATETIME], utc=True).dt.tz_localize(None).astype("datetime64[us]")
    digest = hashlib.sha256()
    for values in (
        times.to_numpy().astype("<i8"),
        frame[AREA].to_numpy().astype("<i8"),
        frame[CONSUMER_TYPE].to_numpy().astype("<i8"),
        frame[TARGET].to_numpy().astype("<f8"),
    ):
        digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def training_provenance(
    rows: pd.DataFrame, source: Mapping[str, Any], read_start: pd.Timestamp, read_end: pd.Timestamp
) -> dict[str, Any]:
    """Which data a training saw: the source (feature view or group and version), the event-time
    window read (read_start <= t < read_end), the row count and the content hash."""
    return {
        **source,
        "read_start": to_utc_hour(read_start).isoformat(),
        "read_end": to_utc_hour(read_end).isoformat(),
        "rows": int(len(rows)),
        "sha256": frame_sha256(rows),
    }


def encode_description(facts: Mapping[str, Any], extra: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The compact JSON description of a model version and the extra facts too large for it.

    `facts` always stay in the description (they choose the model in effect); `extra` entries move
    out, lists first and then the largest, until the description fits DESCRIPTION_BUDGET.
    """
    kept = dict(extra)
    moved: dict[str, Any] = {}
    while True:
        description = _compact({**facts, "format": DESCRIPTION_FORMAT, "extra": kept, "extra_in_files": sorted(moved)})
        if len(description) <= DESCRIPTION_BUDGET:
            return description, moved
        if not kept:
            raise ValueError(
                f"the model description needs {len(description)} characters even with every extra fact moved "
                f"to the model files; Hopsworks stores at most {DESCRIPTION_LIMIT} (budget {DESCRIPTION_BUDGET}): "
                "shorten the configuration"
            )
        # Lists (per-series and per-candidate tables) go first, then the largest of the rest.
        bulkiest = max(kept, key=lambda key: (isinstance(kept[key], list), len(_compact(kept[key]))))
        moved[bulkiest] = kept.pop(bulkiest)


def decode_description(description: str) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(facts, extra kept in the description, names of extra facts in the model files) of a description."""
    facts = json.loads(description)
    if not isinstance(facts, dict) or facts.pop("format", None) != DESCRIPTION_FORMAT:
        raise ValueError(f"not a format-{DESCRIPTION_FORMAT} energy_assets description")
    return facts, facts.pop("extra"), list(facts.pop("extra_in_files"))


class FactsWithFiles(Mapping):
    """Extra facts of a model version: those in the description at hand, the rest loaded on first access."""

    def __init__(self, kept: Mapping[str, Any], in_files: list[str], load: Callable[[], Mapping[str, Any]]):
        self._kept, self._in_files, self._load = dict(kept), list(in_files), load
        self._loaded: Mapping[str, Any] | None = None

    def __getitem__(self, key: str) -> Any:
        if key in self._kept:
            return self._kept[key]
        if key not in self._in_files:
            raise KeyError(key)
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded[key]

    def __contains__(self, key: object) -> bool:
        return key in self._kept or key in self._in_files

    def __iter__(self) -> Iterator[str]:
        return iter([*self._kept, *self._in_files])

    def __len__(self) -> int:
        return len(self._kept) + len(self._in_files)

    def __repr__(self) -> str:
        return f"FactsWithFiles(kept={sorted(self._kept)}, in_files={self._in_files})"


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model facts must be JSON-serialisable: {error}") from error
