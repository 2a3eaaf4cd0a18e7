"""The built wheel is a complete code location: it installs on its own and Dagster loads it."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from energy_assets_tests.conftest import REPO_ROOT


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
