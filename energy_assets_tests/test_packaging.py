"""The built wheel is a complete code location: it installs on its own and Dagster loads it."""

import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.test_architecture import PACKAGE, imported_modules


@pytest.mark.slow
def test_the_wheel_installs_and_loads_as_a_code_location(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path / "dist"), "."],
        cwd=REPO_ROOT,
        check=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("energy_assets-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "energy_assets/definitions.py" in names and "energy_assets/sources/synthetic.py" in names
    assert not any(name.startswith("energy_assets_tests/") for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "energy-assets=energy_assets.app.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()

    # The wheel's own files, ahead of the development checkout, with the environment's dependencies.
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    outside_the_repo = tmp_path / "elsewhere"
    outside_the_repo.mkdir()
    environment = {"PYTHONPATH": str(target), "DAGSTER_HOME": str(tmp_path), "PATH": str(Path(sys.executable).parent)}
    located = subprocess.run(
        [sys.executable, "-c", "import energy_assets; print(energy_assets.__file__)"],
        cwd=outside_the_repo, env=environment, capture_output=True, text=True, check=True,
    )
    assert located.stdout.startswith(str(target))
    validated = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "energy_assets.definitions"],
        cwd=outside_the_repo, env=environment, capture_output=True, text=True, timeout=300,
    )
    assert validated.returncode == 0, validated.stderr[-3000:]


def test_every_package_the_code_imports_is_a_declared_dependency():
    """An import that works only because another dependency pulls its package in breaks the day that one stops."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(line).name) for line in project["dependencies"]}
    imported = set().union(*(imported_modules(path) for path in PACKAGE.rglob("*.py")))
    distributions = packages_distributions()
    third_party = sorted(imported - set(sys.stdlib_module_names) - {"energy_assets"})
    # A namespace package (google) is shared by several distributions: one declared is enough.
    undeclared = {
        module: distributions.get(module)
        for module in third_party
        if not declared & {canonicalize_name(name) for name in distributions.get(module, [])}
    }
    assert not undeclared, f"imported by energy_assets but not in pyproject.toml's dependencies: {undeclared}"
