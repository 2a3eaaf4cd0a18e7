"""Figures of forecast accuracy, as PNG bytes for the Dagster UI."""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure

from energy_assets.forecasting.evaluation import MODEL
from energy_assets.forecasting.metrics import HEADLINE
from energy_assets.schema import AREA, AREA_NAMES, ISSUED_AT

LABELS = {"model": "model", "snaive24": "seasonal naive 24 h", "snaive168": "seasonal naive 168 h"}
STYLES = {"model": {"linewidth": 2.0}, "snaive24": {"linestyle": ":"}, "snaive168": {"linestyle": "--"}}


def plot_score_over_time(per_area_over_time: pd.DataFrame, metric: str = HEADLINE) -> bytes:
    """`metric` (a score of `metrics.POINT_SCORES`, as a percentage) of each issue hour's forecasts, model against
    baselines, one panel per price area."""
    areas = sorted(per_area_over_time[AREA].unique())
    # Figure rather than pyplot: no global state, safe in a multi-threaded process.
    figure = Figure(figsize=(9, 2.4 * len(areas)), layout="constrained")
    axes = figure.subplots(len(areas), 1, sharex=True, squeeze=False)[:, 0]
    for ax, area in zip(axes, areas):
        rows = per_area_over_time[per_area_over_time[AREA] == area]
        for model, series in rows.groupby(MODEL):
            ax.plot(series[ISSUED_AT], series[metric] * 100, label=LABELS.get(model, model), **STYLES.get(model, {}))
        ax.set_title(AREA_NAMES.get(int(area), str(area)), loc="left")
        ax.set_ylabel(f"{metric.upper()} (%)")
        ax.grid(alpha=0.3)
    locator = AutoDateLocator()
    axes[-1].xaxis.set_major_locator(locator)
    axes[-1].xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axes[0].legend(loc="best", fontsize="small")
    axes[-1].set_xlabel("forecast issued at (UTC)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()
