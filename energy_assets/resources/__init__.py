"""Dagster adapters to the outside world, each behind a small interface with an embedded local implementation."""
