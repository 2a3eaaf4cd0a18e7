"""The saved-model format: a folder that says which format it is in, readable without unpickling code.

Format 3 (this one): `model.json` (format, hyperparameters, key names and categories, each member's level
lags and booster file, the members' digest, the keys of the series' width factors), one LightGBM model text
file per member, and `arrays.npz` (the conformal quantiles, the shrinkage weights, the series' width
factors, and the kept calibration forecasts with the history they read). Older formats are refused with a
message that says to retrain: format 2 (the same files) had one interval scale lag (`interval_scale_lag`)
and no series factors, so its hyperparameters are not this version's; format 1 was sktime's zip of the
pickled estimator (`forecaster.zip`), which only loads into the class as it was.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from energy_assets.forecasting.calibration import Calibration, ConformalErrors, SeriesWidths
from energy_assets.forecasting.members import Member, feature_layout
from energy_assets.forecasting.model import GlobalModel, KeptForecasts

MODEL_FORMAT = 3
MODEL_FILE = "model.json"
ARRAYS_FILE = "arrays.npz"
FORMAT_1_FILE = "forecaster.zip"  # sktime's save of the pickled estimator
# What an older format in `MODEL_FILE` lacks, for the message that refuses it.
OLDER_FORMATS = {2: "one interval scale lag and no per-series interval widths"}


class SavedModelFormatError(ValueError):
    """A saved model in a format this version cannot read; the message says what to do."""


def save_model(model: GlobalModel, directory: str | Path, kept: KeptForecasts | None = None) -> Path:
    """Write the model (and forecasts it keeps for reuse) into `directory`, created if needed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    members = []
    for i, member in enumerate(model.members):
        name = f"member-{i}.txt"
        member.booster.save_model(directory / name)
        members.append({"level_lags": list(member.layout.level_lags), "booster": name})
    calibration = None
    if model.calibration is not None:
        errors = model.calibration.errors
        arrays["quantiles"], arrays["counts"] = errors.quantiles, errors.counts
        if model.calibration.weights is not None:
            arrays["weights"] = model.calibration.weights
        series = model.calibration.series
        if series is not None:
            arrays["series_factors"] = series.factors
        calibration = {
            "log_space": errors.log_space,
            "weights": model.calibration.weights is not None,
            "series_keys": None if series is None else _keys_json(series.keys),
        }
    description = {
        "format": MODEL_FORMAT,
        "params": _json_params(model.params),
        "key_names": list(model.key_names),
        "categories": [categories.tolist() for categories in model.categories],
        "members": members,
        "digest": model.digest,
        "calibration": calibration,
        "kept_forecasts": None,
    }
    if kept is not None:
        arrays["kept_values"], arrays["kept_inputs"] = kept.values, kept.inputs
        description["kept_forecasts"] = {
            "maker": kept.maker,
            **_keys_json(kept.keys),
            "origins": [origin.isoformat() for origin in kept.origins],
        }
    if arrays:
        np.savez(directory / ARRAYS_FILE, **arrays)
    (directory / MODEL_FILE).write_text(json.dumps(description, indent=1))
    return directory


def load_model(directory: str | Path) -> GlobalModel:
    """The model `save_model` wrote; `FileNotFoundError` naming the folder when there is none,
    `SavedModelFormatError` for a model saved in another format."""
    description = _description(directory)
    directory = Path(directory)
    params = {name: tuple(value) if isinstance(value, list) else value for name, value in description["params"].items()}
    key_names = tuple(description["key_names"])
    layout = feature_layout(params, key_names)
    members = tuple(
        Member(
            replace(layout, level_lags=tuple(member["level_lags"])),
            lgb.Booster(model_file=str(directory / member["booster"])),
        )
        for member in description["members"]
    )
    calibration = None
    saved = description["calibration"]
    if saved is not None:
        with np.load(directory / ARRAYS_FILE) as arrays:
            errors = ConformalErrors(arrays["quantiles"], arrays["counts"], saved["log_space"])
            weights = arrays["weights"] if saved["weights"] else None
            series = None
            if saved["series_keys"] is not None:
                series = SeriesWidths(_keys_from_json(saved["series_keys"]), arrays["series_factors"])
        calibration = Calibration(errors, weights, series)
    categories = tuple(pd.Index(values) for values in description["categories"])
    return GlobalModel(params, key_names, categories, members, calibration, description["digest"])


def load_kept_forecasts(directory: str | Path) -> KeptForecasts | None:
    """The forecasts a saved model keeps for reuse (its calibration fit's), None when it keeps none."""
    kept = _description(directory)["kept_forecasts"]
    if kept is None:
        return None
    with np.load(Path(directory) / ARRAYS_FILE) as arrays:
        values, inputs = arrays["kept_values"], arrays["kept_inputs"]
    origins = pd.DatetimeIndex([pd.Timestamp(origin) for origin in kept["origins"]])
    return KeptForecasts(kept["maker"], _keys_from_json(kept), origins, values, inputs)


def _keys_json(keys: pd.Index) -> dict:
    """Series keys as JSON: each key as a list of its levels, and the level names."""
    return {"keys": [list(key) if isinstance(key, tuple) else [key] for key in keys], "key_names": list(keys.names)}


def _keys_from_json(saved: dict) -> pd.Index:
    """The keys `_keys_json` wrote."""
    if len(saved["key_names"]) > 1:
        return pd.MultiIndex.from_tuples([tuple(key) for key in saved["keys"]], names=saved["key_names"])
    return pd.Index([key for (key,) in saved["keys"]], name=saved["key_names"][0])


def _description(directory: str | Path) -> dict:
    directory = Path(directory)
    path = directory / MODEL_FILE
    if not path.exists():
        if (directory / FORMAT_1_FILE).exists():
            raise SavedModelFormatError(
                f"the model at {directory} was saved in format 1 (a pickled sktime estimator, before energy_assets "
                f"saved models in format {MODEL_FORMAT}) and cannot be read any more: retrain it (materialize "
                "forecasting_model for its hours; the model asset retrains a model in effect of an older format)"
            )
        raise FileNotFoundError(f"no saved model at {path}")
    description = json.loads(path.read_text())
    saved = description.get("format")
    if saved != MODEL_FORMAT:
        why = f" ({OLDER_FORMATS[saved]})" if saved in OLDER_FORMATS else ""
        raise SavedModelFormatError(
            f"the model at {directory} is in format {saved!r}{why}; this version reads format "
            f"{MODEL_FORMAT}: retrain it (materialize forecasting_model for its hours)"
        )
    return description


def _json_params(params) -> dict:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in params.items()}
