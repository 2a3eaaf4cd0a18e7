"""Recursive multi-step forecasts of many series from many origins at once: one booster call per step and member."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from energy_assets.forecasting.features import FeatureLayout, TrailingWindows, feature_rows
from energy_assets.forecasting.members import Member, side_by_side

# (series, origin) rows predicted together: with the default 192-hour history and a 24-hour
# horizon a batch holds 216 MiB of values (2**17 rows x 216 x 8 bytes) plus one step's features.
PREDICTION_BATCH_ROWS = 2**17


class Steps(NamedTuple):
    """What every member's recursion over the (series, origin) rows of a batch reads besides its values."""

    offsets: np.ndarray  # grid position of each row's first history point
    codes: np.ndarray  # (rows, key levels) category codes
    wanted: np.ndarray  # steps each row forecasts
    grid_calendar: np.ndarray  # (grid points + horizon, 3)
    threads: int


def recursive_forecasts(
    members: list[Member],
    history: int,
    model_space: np.ndarray,
    origins: np.ndarray,
    horizon: int,
    grid_calendar: np.ndarray,
    key_codes: np.ndarray,
    threads: int,
    last_target: int | None = None,
    max_rows: int = PREDICTION_BATCH_ROWS,
) -> np.ndarray:
    """(series, origins, horizon) forecasts in model space issued after grid positions `origins` of the
    (series, points) `model_space` history: the mean of the members' recursions.

    Series and origins form batches of at most `max_rows` (series, origin) rows counted over all
    members (whole origins, at least one per batch); each horizon step of a batch is one booster
    call per member. A batch's members hold at most `max_rows` x (history + horizon) model-space
    values in all, plus one step's features, so memory beyond the result stays bounded however
    many series and origins there are. With `last_target`, steps past that grid position are not
    forecast (NaN).
    """
    n_series = model_space.shape[0]
    # A batch holds the members' running sum beside the next member's recursion: rows per member.
    per_batch = max(1, max_rows // max(1, n_series) // len(members))
    result = np.empty((n_series, len(origins), horizon))
    for start in range(0, len(origins), per_batch):
        batch = origins[start : start + per_batch]
        steps = Steps(
            offsets=np.tile(batch - history + 1, n_series),
            codes=np.repeat(key_codes, len(batch), axis=0),
            wanted=np.tile(horizon if last_target is None else last_target - batch, n_series),
            grid_calendar=grid_calendar,
            threads=threads,
        )
        # One row per (series, origin): its history, then the first member's forecasts, to which the
        # others' are added; each further member recurses in a buffer of its own from the same history
        # (the members side by side when there is a thread for each).
        z = np.full((n_series * len(batch), history + horizon), np.nan)
        z[:, :history] = model_space[:, batch[:, None] + np.arange(1 - history, 1)].reshape(-1, history)
        buffers = [z] + [z.copy() for _ in members[1:]]
        side_by_side(lambda item, each: _recursion(item[0], history, item[1], steps._replace(threads=each)),
                     list(zip(members, buffers)), threads)
        for buffer in buffers[1:]:
            z[:, history:] += buffer[:, history:]
        z[:, history:] /= len(members)
        result[:, start : start + per_batch] = z[:, history:].reshape(n_series, len(batch), horizon)
    return result


def _recursion(member: Member, history: int, z: np.ndarray, steps: Steps) -> None:
    """Fill one member's forecasts into `z` (rows, history + horizon) after its history, in place, each
    step read by the next; columns past a row's `wanted` steps stay as they are (NaN)."""
    layout: FeatureLayout = member.layout
    statistics = TrailingWindows(z)
    for step, position in enumerate(range(history, z.shape[1]), start=1):
        rows = steps.wanted >= step
        if not rows.any():
            break
        X, level = feature_rows(layout, z, statistics, np.array([position]), steps.grid_calendar, steps.offsets, steps.codes)
        rows = slice(None) if rows.all() else rows  # all rows: a view, not a copy of X
        z[rows, position] = layout.unscale(member.booster.predict(X[rows], num_threads=steps.threads), level[rows, 0])
