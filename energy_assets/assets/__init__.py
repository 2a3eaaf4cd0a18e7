"""Thin Dagster assets: read inputs, call the domain code, write, report metadata."""
