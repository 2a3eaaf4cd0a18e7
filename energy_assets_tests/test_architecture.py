"""The layers hold: only the Dagster adapters import Dagster, and the CLI reader pays for neither Dagster nor Hopsworks."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from energy_assets_tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "energy_assets"
# Where Dagster belongs: the assets, the resources, the code location (its executor too) and its entry point for
# in-process runs.
DAGSTER_ALLOWED = (
    "assets/",
    "resources/",
    "definitions.py",
    "executor.py",
    "schedules.py",
    "sensors.py",
    "partitions.py",
    "app/demo.py",
    "app/catch_up.py",
)
DAGSTER_MODULES = ("dagster", "dagster_gcp", "dagster_postgres", "dagster_graphql", "dagster_webserver")
SDK_MODULES = ("dagster", "hopsworks", "hsfs", "hsml")


def imported_modules(path: Path) -> set[str]:
    """The top-level package of every module that `path` imports, at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_only_the_dagster_adapters_import_dagster():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(DAGSTER_ALLOWED):
            continue
        if imported_modules(path) & set(DAGSTER_MODULES):
            offenders.append(relative)
    assert offenders == [], f"plain-Python modules importing Dagster: {offenders}"


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from dagster import asset\n    return asset\n")
    assert "dagster" in imported_modules(module)


def test_reading_forecasts_loads_neither_dagster_nor_the_hopsworks_sdk(isolated_state):
    program = (
        "import sys\n"
        "from energy_assets.app.cli import main\n"
        "status = main(['latest', '--at', '2023-01-14T23:00'])\n"
        f"print(status, sorted(name for name in {SDK_MODULES!r} if name in sys.modules))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", program], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
        env={"ENERGY_ASSETS_HOME": str(isolated_state), "PATH": "/usr/bin:/bin"},
    )
    # The bucket is empty, so the command fails (status 1) after doing all its imports.
    assert completed.stdout.strip() == "1 []", completed.stdout + completed.stderr
    assert "no usable forecast issued at or before" in completed.stderr
