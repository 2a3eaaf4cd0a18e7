"""Consumption sources: each returns the canonical long frame of `energy_assets.schema` for a window."""
