"""Every variable a user sets: a bad value is an error naming the variable, on every path that reads it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from energy_assets import settings
from energy_assets.app.cli import main
from energy_assets_tests.conftest import REPO_ROOT

BAD_VALUES = [
    ({"ENERGY_ASSETS_DEPLOYMENT": "staging"}, "ENERGY_ASSETS_DEPLOYMENT='staging' is not one of ['local', 'prod']"),
    ({"ENERGY_ASSETS_PARTITIONS_START": "garbage"}, "ENERGY_ASSETS_PARTITIONS_START='garbage' is not an hour"),
    ({"ENERGY_ASSETS_PUBLICATION_DELAY_HOURS": "-3"}, "ENERGY_ASSETS_PUBLICATION_DELAY_HOURS=-3 is below the minimum 0"),
    ({"ENERGY_ASSETS_FEATURE_GROUP_VERSION": "abc"}, "ENERGY_ASSETS_FEATURE_GROUP_VERSION='abc' is not a whole number"),
    ({"ENERGY_ASSETS_BUCKET_PREFIX": "../outside"}, "ENERGY_ASSETS_BUCKET_PREFIX='../outside' is not an object-name prefix"),
    ({"ENERGY_ASSETS_SOURCE": "ftp"}, "ENERGY_ASSETS_SOURCE='ftp' is not one of ['synthetic', 'file', 'api']"),
    ({"ENERGY_ASSETS_SOURCE": "file"}, "ENERGY_ASSETS_SOURCE=file needs ENERGY_ASSETS_SOURCE_PATH"),
    (
        {"ENERGY_ASSETS_SOURCE": "api", "ENERGY_ASSETS_SOURCE_DATASET": "Elspotprices"},
        "ENERGY_ASSETS_SOURCE_DATASET='Elspotprices' is not one of ['ConsumptionDE35Hour', 'ConsumptionIndustry']",
    ),
    (
        {"ENERGY_ASSETS_SOURCE": "api", "ENERGY_ASSETS_SOURCE_API_URL": "api.energidataservice.dk"},
        "ENERGY_ASSETS_SOURCE_API_URL='api.energidataservice.dk' is not an http(s) base URL",
    ),
    (
        {"ENERGY_ASSETS_SOURCE": "api", "ENERGY_ASSETS_SOURCE_DEADLINE_SECONDS": "soon"},
        "ENERGY_ASSETS_SOURCE_DEADLINE_SECONDS='soon' is not a number",
    ),
    (
        {"ENERGY_ASSETS_SOURCE": "api", "ENERGY_ASSETS_SOURCE_DEADLINE_SECONDS": "0"},
        "ENERGY_ASSETS_SOURCE_DEADLINE_SECONDS=0 must be above 0",
    ),
]
IDS = ["-".join(f"{name.removeprefix('ENERGY_ASSETS_')}={value}" for name, value in variables.items()) for variables, _ in BAD_VALUES]


@pytest.fixture
def clean_environment(monkeypatch):
    for name in list(os.environ):
        if name.startswith("ENERGY_ASSETS_") and name != settings.HOME:
            monkeypatch.delenv(name)
    return monkeypatch


def _read_every_setting_as_definitions_do() -> None:
    from energy_assets.definitions import deployment_resources

    settings.partitions_start()
    settings.publication_delay()
    deployment_resources()


@pytest.mark.parametrize(("variables", "message"), BAD_VALUES, ids=IDS)
def test_every_bad_value_is_an_error_naming_its_variable(clean_environment, variables, message):
    for name, value in variables.items():
        clean_environment.setenv(name, value)
    with pytest.raises(settings.SettingError) as error:
        _read_every_setting_as_definitions_do()
    assert message in str(error.value)


def _run(args: list[str], variables: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env={**os.environ, **variables}, capture_output=True, text=True, check=False
    )


# The paths that read settings in their own process: a representative variable each (all go through the same readers).
PROCESS_CASES = [BAD_VALUES[1], BAD_VALUES[3], BAD_VALUES[8]]


@pytest.mark.slow
@pytest.mark.parametrize(("variables", "message"), PROCESS_CASES, ids=[IDS[1], IDS[3], IDS[8]])
def test_loading_the_code_location_ends_with_the_error_naming_the_variable(clean_environment, variables, message):
    loaded = _run(["-c", "import energy_assets.definitions"], variables)
    assert loaded.returncode == 1
    assert loaded.stderr.strip().splitlines()[-1].startswith("energy_assets.settings.SettingError: ")
    assert message in loaded.stderr.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize(("variables", "message"), PROCESS_CASES, ids=[IDS[1], IDS[3], IDS[8]])
def test_the_demo_names_the_variable_and_exits_1(clean_environment, variables, message):
    done = _run(["-m", "energy_assets.app.cli", "demo"], variables)
    assert done.returncode == 1, done.stderr[-500:]
    assert done.stderr.strip().splitlines()[-1].startswith("energy-assets: error: ")
    assert message in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("variables", "message"), [BAD_VALUES[0], BAD_VALUES[4]], ids=[IDS[0], IDS[4]])
def test_the_forecast_readers_name_the_variable_and_exit_1(clean_environment, capsys, variables, message):
    for name, value in variables.items():
        clean_environment.setenv(name, value)
    assert main(["latest"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"energy-assets: error: {message}") and "\n" not in error


def test_the_api_base_url_and_deadline_reach_the_source(clean_environment):
    clean_environment.setenv("ENERGY_ASSETS_SOURCE", "api")
    clean_environment.setenv("ENERGY_ASSETS_SOURCE_API_URL", "http://mirror.example:8080/eds/")
    clean_environment.setenv("ENERGY_ASSETS_SOURCE_DEADLINE_SECONDS", "45.5")
    from energy_assets.definitions import consumption_source

    source = consumption_source()
    assert (source.api_base_url, source.deadline_seconds) == ("http://mirror.example:8080/eds", 45.5)
    assert "http://mirror.example:8080/eds" in source.describe()
