"""The members of a global model: LightGBM boosters over feature layouts, fitted on one shared training matrix."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, NamedTuple

import lightgbm as lgb
import numpy as np

from energy_assets.forecasting.features import FeatureLayout, TrainingRows, training_rows
from energy_assets.forecasting.panel import Panel

# Hyperparameters that do not change a member's trees: threads (deterministic LightGBM), which points a
# fit is given (the panel says that) and everything about calibration and intervals.
NOT_IN_THE_TREES = frozenset(
    {
        "n_jobs",
        "training_window",
        "calibration_hours",
        "calibration_horizon",
        "shrink_to_reference",
        "interval_scale_lags",
        "interval_scale_hours",
        "interval_series_prior_hours",
    }
)


class Member(NamedTuple):
    """One booster and the features it reads."""

    layout: FeatureLayout
    booster: lgb.Booster


def feature_layout(params: Mapping[str, Any], key_levels: tuple[str, ...]) -> FeatureLayout:
    """The features every member reads but the level lags, and the target's scaling, of these hyperparameters."""
    return FeatureLayout(
        lags=tuple(params["lags"]),
        windows=tuple(params["windows"]),
        holiday_lags=tuple(params["holiday_lags"]),
        level_lags=tuple(params["level_lags"]),
        scale_window=params["scale_window"],
        reference_lag=params["reference_lag"],
        log_target=params["log_target"],
        key_levels=key_levels,
    )


def member_layouts(layout: FeatureLayout, combine_without_level_lags: bool) -> list[FeatureLayout]:
    """The features of each member: all of them, and without the level lags when combined (and any)."""
    if combine_without_level_lags and layout.level_lags:
        return [layout, replace(layout, level_lags=())]
    return [layout]


def lightgbm_params(params: Mapping[str, Any], threads: int) -> dict[str, Any]:
    """LightGBM's names for the booster's hyperparameters."""
    return {
        "objective": params["objective"],
        "learning_rate": params["learning_rate"],
        "num_leaves": params["num_leaves"],
        "min_data_in_leaf": params["min_child_samples"],
        "min_data_per_group": params["min_child_samples"],
        "feature_fraction": params["feature_fraction"],
        "lambda_l2": params["reg_lambda"],
        "num_threads": threads,
        "seed": params["random_state"],
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
        # Trees add corrections to the reference level, starting from none.
        "boost_from_average": False,
    }


def members_digest(params: Mapping[str, Any], panel: Panel) -> str:
    """What a fit of the members depends on: their hyperparameters and the panel's keys, grid and values.

    Equal digests, equal members (LightGBM here is deterministic), so a model can stand in for a fit
    it already made."""
    trees = {name: value for name, value in params.items() if name not in NOT_IN_THE_TREES}
    digest = hashlib.blake2b(repr(sorted(trees.items())).encode(), digest_size=20)
    digest.update(repr((panel.name, panel.keys.tolist(), panel.grid.tolist())).encode())
    digest.update(np.ascontiguousarray(panel.values).tobytes())
    if np.isnan(panel.values).any():
        # Such a fit leaves out the rows that read a missing value (`history_gaps`); fits registered before that
        # rule learned from them, and must not stand in for it.
        digest.update(b"rows reading a missing value left out")
    return digest.hexdigest()


def fit_members(
    layouts: list[FeatureLayout],
    panel: Panel,
    model_space: np.ndarray,
    grid_calendar: np.ndarray,
    key_codes: np.ndarray,
    params: Mapping[str, Any],
    threads: int,
) -> list[Member]:
    """One booster per layout on the panel's points; members whose features are a subset of the first's
    (the same history) learn from its training matrix's columns, built once. With a thread for each,
    the members are fitted side by side, one LightGBM thread each: on small data LightGBM's own threads
    speed a fit up less than two fits at once (the trees are the same on any thread count)."""
    first = training_rows(layouts[0], panel.values, model_space, grid_calendar, key_codes, params["holiday_weight"])
    rows = [first]
    for layout in layouts[1:]:
        if layout.history == layouts[0].history and set(layout.names) <= set(first.names):
            rows.append(TrainingRows(first.columns(layout.names), first.target, first.weight, layout.names))
        else:
            rows.append(training_rows(layout, panel.values, model_space, grid_calendar, key_codes, params["holiday_weight"]))
    fits = list(zip(rows, layouts))
    return [Member(layout, booster) for layout, booster in zip(layouts, side_by_side(
        lambda fit, each: _fit_booster(*fit, params, each), fits, threads
    ))]


def side_by_side(work, items: list, threads: int) -> list:
    """`work(item, threads_each)` for every item: all at once, each on its share of `threads`, when there is
    a thread for each, else one after another on all of them; results in the order of `items`."""
    if len(items) > 1 and threads >= len(items):
        with ThreadPoolExecutor(len(items)) as pool:
            return list(pool.map(lambda item: work(item, threads // len(items)), items))
    return [work(item, threads) for item in items]


def _fit_booster(rows: TrainingRows, layout: FeatureLayout, params: Mapping[str, Any], threads: int) -> lgb.Booster:
    dataset = lgb.Dataset(
        rows.X,
        rows.target,
        weight=rows.weight,
        feature_name=layout.names,
        categorical_feature=layout.categorical,
        free_raw_data=True,
    )
    # Kept as trained: lgb.train would otherwise turn the booster into model text and back to free the data.
    booster = lgb.train(
        lightgbm_params(params, threads), dataset, num_boost_round=params["n_estimators"], keep_training_booster=True
    )
    if params["average_sizes"]:
        average_sizes(booster)
    return booster


def average_sizes(booster: lgb.Booster) -> None:
    """Make the booster predict the mean of its first 1, 2, ..., n trees: tree i weighs (n - i) / n."""
    # Leaf counts from the model text: a tenth of the time of dump_model's JSON of every tree.
    text = booster.model_to_string().splitlines()
    leaves = [int(line[len("num_leaves=") :]) for line in text if line.startswith("num_leaves=")]
    n = len(leaves)
    for i, count in enumerate(leaves):
        for leaf in range(count):
            booster.set_leaf_output(i, leaf, booster.get_leaf_output(i, leaf) * (n - i) / n)
