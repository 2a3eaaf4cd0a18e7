"""Environment settings: where local state lives and which deployment is active."""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "ENERGY_ASSETS_HOME"
DEPLOYMENT_VARIABLE = "ENERGY_ASSETS_DEPLOYMENT"


def state_dir() -> Path:
    """Root of every embedded resource's state; `ENERGY_ASSETS_HOME` relocates it."""
    return Path(os.environ.get(HOME_VARIABLE) or Path.cwd() / ".energy_assets").resolve()


def deployment_name() -> str:
    """`local` (embedded, the default) or `prod` (Hopsworks + GCS)."""
    return os.environ.get(DEPLOYMENT_VARIABLE, "local").strip().lower() or "local"
