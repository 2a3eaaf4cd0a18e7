"""Helpers that turn frames and figures into Dagster metadata."""

from __future__ import annotations

import base64

import pandas as pd
from dagster import MetadataValue


def table_preview(frame: pd.DataFrame, rows: int = 20) -> MetadataValue:
    """The first rows of a frame as a markdown table."""
    return MetadataValue.md(frame.head(rows).to_markdown(index=False))


def png_image(png: bytes, title: str) -> MetadataValue:
    """A PNG shown inline in the Dagster UI."""
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")
