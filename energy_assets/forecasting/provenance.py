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
# Format 2 may say only that extra facts moved to the files, not which; format 1 always named them.
DESCRIPTION_FORMAT = 2
READABLE_DESCRIPTION_FORMATS = frozenset({1, DESCRIPTION_FORMAT})

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
    out, lists first and then the largest, until the description fits DESCRIPTION_BUDGET. The
    description names the facts that moved, so that asking whether a version has one downloads
    nothing; when even that does not fit, it says only that some moved (their names would take the
    room they freed), and asking for a fact it does not hold loads the files.
    """
    for name_moved in (True, False):
        kept = dict(extra)
        moved: dict[str, Any] = {}
        while True:
            in_files = sorted(moved) if name_moved else bool(moved)
            description = _compact({**facts, "format": DESCRIPTION_FORMAT, "extra": kept, "extra_in_files": in_files})
            if len(description) <= DESCRIPTION_BUDGET:
                return description, moved
            if not kept:
                break
            # Lists (per-series and per-candidate tables) go first, then the largest of the rest.
            bulkiest = max(kept, key=lambda key: (isinstance(kept[key], list), len(_compact(kept[key]))))
            moved[bulkiest] = kept.pop(bulkiest)
    raise ValueError(
        f"the model description needs {len(description)} characters even with every extra fact moved "
        f"to the model files; Hopsworks stores at most {DESCRIPTION_LIMIT} (budget {DESCRIPTION_BUDGET}): "
        "shorten the configuration"
    )


def decode_description(description: str) -> tuple[dict[str, Any], dict[str, Any], list[str] | None]:
    """(facts, extra kept in the description, names of extra facts in the model files) of a description.

    The names are None when extra facts moved to the files without their names (format 2 only): any
    fact not in the description may be there.
    """
    facts = json.loads(description)
    format_ = facts.pop("format", None) if isinstance(facts, dict) else None
    if format_ not in READABLE_DESCRIPTION_FORMATS:
        raise ValueError(f"not an energy_assets description (format {sorted(READABLE_DESCRIPTION_FORMATS)})")
    kept, in_files = facts.pop("extra"), facts.pop("extra_in_files")
    if isinstance(in_files, list):
        return facts, kept, in_files
    return facts, kept, None if in_files else []


class FactsWithFiles(Mapping):
    """Extra facts of a model version: those in the description at hand, the rest loaded on first access.

    `in_files` names the facts in the files, or is None when any fact not kept may be there (then asking
    for an absent fact loads the files once).
    """

    def __init__(
        self, kept: Mapping[str, Any], in_files: list[str] | None, load: Callable[[], Mapping[str, Any]]
    ):
        self._kept, self._in_files, self._load = dict(kept), in_files, load
        self._loaded: Mapping[str, Any] | None = None

    def _files(self) -> Mapping[str, Any]:
        if self._loaded is None:
            self._loaded = self._load()
        return self._loaded

    def __getitem__(self, key: str) -> Any:
        if key in self._kept:
            return self._kept[key]
        if self._in_files is not None and key not in self._in_files:
            raise KeyError(key)
        return self._files()[key]

    def __contains__(self, key: object) -> bool:
        if key in self._kept:
            return True
        if self._in_files is not None:
            return key in self._in_files
        return key in self._files()

    def _names_in_files(self) -> list[str]:
        return list(self._in_files) if self._in_files is not None else list(self._files())

    def __iter__(self) -> Iterator[str]:
        return iter([*self._kept, *self._names_in_files()])

    def __len__(self) -> int:
        return len(self._kept) + len(self._names_in_files())

    def __repr__(self) -> str:
        in_files = self._in_files if self._in_files is not None else "unnamed"
        return f"FactsWithFiles(kept={sorted(self._kept)}, in_files={in_files})"


def _compact(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"model facts must be JSON-serialisable: {error}") from error
