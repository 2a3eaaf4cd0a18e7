"""Helpers that turn frames and figures into Dagster metadata."""

from __future__ import annotations

import base64

import pandas as pd
from dagster import MetadataValue

from energy_assets.forecasting.retraining import RegisteredModel


def table_preview(frame: pd.DataFrame, rows: int = 20) -> MetadataValue:
    """The first rows of a frame as a markdown table."""
    return MetadataValue.md(frame.head(rows).to_markdown(index=False))


def png_image(png: bytes, title: str) -> MetadataValue:
    """A PNG shown inline in the Dagster UI."""
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def in_effect_metadata(model: RegisteredModel) -> dict:
    """What an hour's partition says of the model in effect at it: the model's own partition and the
    forecasts issued at that hour name it alike."""
    return {"registry_version": model.version, "data_cutoff": model.data_cutoff.isoformat()}
