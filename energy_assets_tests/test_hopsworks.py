"""Hopsworks adapters against the SDK fake: login, secrets, waiting, view reuse, versions; and the fake itself."""

from __future__ import annotations

import builtins
import getpass
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import dagster as dg
import hopsworks
import pandas as pd
import pytest
from hopsworks.client.exceptions import FeatureStoreException, ProjectException, RestAPIError
from hopsworks_common.util import VersionWarning
from hsfs.feature_view import FeatureView
from hsml.client.exceptions import ModelRegistryException
from hsml.python.model import Model as PythonModel

from energy_assets.forecasting.provenance import DESCRIPTION_BUDGET, frame_sha256
from energy_assets.forecasting.training import ForecasterConfig

from energy_assets.resources.feature_store import FeatureStore
from energy_assets.resources.hopsworks import CONNECTION as hopsworks_connection
from energy_assets.resources.hopsworks import (
    FEATURE_DESCRIPTIONS,
    FeatureGroupMismatchError,
    HopsworksFeatureStore,
    HopsworksLoginError,
    HopsworksModelRegistry,
    ModelRegistrationError,
    OFFLINE_TYPES,
    SAAS_HOST,
    remove_abandoned_session_folders,
)
from energy_assets.schema import AREA, CONSUMER_TYPE, CONSUMPTION_COLUMNS, DATETIME, FEATURE_GROUP_NAME, TARGET
from energy_assets_tests.conftest import REPO_ROOT
from energy_assets_tests.hopsworks_fake import (
    FAKE_API_KEY,
    FAKE_HOST,
    FAKE_PROJECT,
    FAKE_USERNAME,
    FakeHopsworks,
    FakeModel,
    fake_hopsworks,
    hopsworks_feature_store,
    hopsworks_model_registry,
)

START = pd.Timestamp("2023-01-01 22:00", tz="UTC")
NAME = "energy_consumption_forecaster"


@pytest.fixture(autouse=True)
def no_prompts(monkeypatch):
    """A prompt would hang an unattended run: make any prompt fail the test instead."""

    def prompt(*_args, **_kwargs):
        raise AssertionError("something prompted for input")

    monkeypatch.setattr(builtins, "input", prompt)
    monkeypatch.setattr(getpass, "getpass", prompt)


@pytest.fixture
def unreachable_login(monkeypatch):
    """The SDK login, replaced by one that fails the test if reached."""

    def login(*_args, **_kwargs):
        raise AssertionError("hopsworks.login was called")

    monkeypatch.setattr(hopsworks, "login", login)


def rows(hours: int = 4, value: float = 1.0) -> pd.DataFrame:
    """Canonical rows of two series over `hours` hours from START."""
    frame = pd.DataFrame({AREA: [1, 2]}).merge(
        pd.DataFrame({DATETIME: pd.date_range(START, periods=hours, freq="h")}), how="cross"
    )
    return frame.assign(**{CONSUMER_TYPE: 111, TARGET: value})[CONSUMPTION_COLUMNS]


def model_dir(tmp_path, tag: str):
    directory = tmp_path / f"model-{tag}"
    directory.mkdir()
    (directory / "model.txt").write_text(tag)
    return directory


def register(registry, tmp_path, tag: str, cutoff: pd.Timestamp = START):
    return registry.register(
        NAME,
        model_dir(tmp_path, tag),
        data_cutoff=cutoff,
        training_start=cutoff - pd.Timedelta(days=7),
        feature_group_version=1,
        config={"tag": tag},
        metrics={"mae": 2.0},
    )


def resources(**settings):
    return [HopsworksFeatureStore(**settings), HopsworksModelRegistry(**settings)]


# --- login and secrets ----------------------------------------------------------------------------


def test_constructing_resources_does_not_log_in_and_both_resources_share_one_login(tmp_path):
    with fake_hopsworks(tmp_path) as backend:
        store, registry = resources(api_key=FAKE_API_KEY, project=FAKE_PROJECT)
        assert backend.logins == []

        # hopsworks.login logs out first: a second login would close the store's connection.
        store.insert(rows())
        registry.versions(NAME)
        assert len(store.read(START, START + pd.Timedelta(hours=4))) == 8
        register(registry, tmp_path, "shared")

        assert [login["project"] for login in backend.logins] == [FAKE_PROJECT]


def test_a_resource_logs_in_again_after_the_session_was_closed(tmp_path):
    with fake_hopsworks(tmp_path) as backend:
        store, registry = resources(api_key=FAKE_API_KEY, project=FAKE_PROJECT)
        store.insert(rows())
        registry.versions(NAME)
        hopsworks_connection.logout()

        assert len(store.read(START, START + pd.Timedelta(hours=4))) == 8
        assert registry.versions(NAME) == []
        assert len(backend.logins) == 2


def test_the_fake_login_closes_the_previous_connection_and_keeps_certificates_in_one_folder_per_host(tmp_path):
    with fake_hopsworks(tmp_path) as backend:
        first = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()
        first_certificates = backend.certificate_files()
        second = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()

        # The SDK's default: /tmp/<host>/<project>/<user>, the same folder for every process of the host.
        assert {path.name for path in first_certificates} == {
            "keyStore.jks", "trustStore.jks", "material_passwd", "ca_chain.pem", "client_cert.pem", "client_key.pem"
        }
        assert {path.parent.relative_to(backend.temp_root) for path in first_certificates} == {
            Path(SAAS_HOST) / FAKE_PROJECT / FAKE_USERNAME
        }
        with pytest.raises(Exception, match="Couldn't find client"):
            first.get_models(NAME)
        assert second.get_models(NAME) == []
        hopsworks.logout()
        assert backend.certificate_files() == []


SESSION_PROBE = """
import sys, time
from pathlib import Path
from unittest import mock
import hopsworks, pandas as pd
from energy_assets.resources.hopsworks import HopsworksFeatureStore
from energy_assets_tests.hopsworks_fake import FAKE_API_KEY, FAKE_PROJECT, FakeHopsworks
from energy_assets_tests.test_hopsworks import START, rows

root, role = Path(sys.argv[1]), sys.argv[2]
backend = FakeHopsworks(root / "hopsworks")
mock.patch.object(hopsworks, "login", backend.login).start()
mock.patch.object(hopsworks, "logout", backend.logout).start()
store = HopsworksFeatureStore(api_key=FAKE_API_KEY, project=FAKE_PROJECT)
store.insert(rows()) if role == "first" else store.read(START, START + pd.Timedelta(hours=1))
(root / f"{role}.ready").touch()
if role == "first":
    while not (root / "second.ready").exists() or not (root / "second.exited").exists():
        time.sleep(0.05)
    # The other process logged out at its exit; this one still reads and writes.
    assert len(store.read(START, START + pd.Timedelta(hours=4))) == 8
    store.insert(rows(value=2.0))
"""


def _probe(tmp_path, role: str) -> subprocess.Popen:
    # The temp folder of this test stands for the host's: the processes' session folders go there.
    env = {**os.environ, "TMPDIR": str(tmp_path / "host_tmp")}
    return subprocess.Popen([sys.executable, "-c", SESSION_PROBE, str(tmp_path), role], cwd=REPO_ROOT, env=env, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_one_process_logging_out_leaves_the_certificates_of_the_others_on_the_same_host(tmp_path):
    (tmp_path / "host_tmp").mkdir()
    first = _probe(tmp_path, "first")
    while not (tmp_path / "first.ready").exists():
        assert first.poll() is None, first.stderr.read()[-2000:]
        time.sleep(0.05)
    second = _probe(tmp_path, "second")
    assert second.wait(timeout=120) == 0, second.stderr.read()[-2000:]
    (tmp_path / "second.exited").touch()

    assert first.wait(timeout=120) == 0, first.stderr.read()[-2000:]
    # Each process's certificates and downloads were in a folder of its own, removed at its exit.
    assert list((tmp_path / "host_tmp").iterdir()) == []
    assert FakeHopsworks(tmp_path / "hopsworks").certificate_files() == []


@pytest.mark.slow
def test_the_process_logs_out_at_exit_so_no_client_certificates_remain(tmp_path):
    # The SDK's login and logout are replaced by the fake's for the whole process, exit included.
    script = f"""
from pathlib import Path
from unittest import mock
import hopsworks
from energy_assets.resources.hopsworks import CONNECTION, HopsworksModelRegistry
from energy_assets_tests.hopsworks_fake import FAKE_API_KEY, FAKE_PROJECT, FakeHopsworks

backend = FakeHopsworks(Path({str(tmp_path)!r}) / "hopsworks")
mock.patch.object(hopsworks, "login", backend.login).start()
mock.patch.object(hopsworks, "logout", backend.logout).start()
HopsworksModelRegistry(api_key=FAKE_API_KEY, project=FAKE_PROJECT).versions("m")
assert len(backend.certificate_files()) == 6
assert CONNECTION.folder() in backend.certificate_files()[0].parents
print(CONNECTION.folder())
"""
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)

    assert completed.returncode == 0, completed.stderr[-2000:]
    assert not Path(completed.stdout.strip()).exists()


def test_a_session_folder_left_by_a_killed_process_is_removed_by_the_next_login(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    abandoned = tmp_path / f"energy_assets_hopsworks_{dead.stdout.strip()}_x1y2"
    (abandoned / "certificates").mkdir(parents=True)
    (abandoned / "certificates" / "client_key.pem").write_text("a private key")
    live = tmp_path / f"energy_assets_hopsworks_{os.getpid()}_a1b2"
    live.mkdir()

    assert remove_abandoned_session_folders() == [abandoned]
    assert not abandoned.exists() and live.is_dir()


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        ({"api_key": "", "project": FAKE_PROJECT}, "FS_API_KEY"),
        ({"api_key": "  ", "project": FAKE_PROJECT}, "FS_API_KEY"),
        ({"api_key": FAKE_API_KEY, "project": ""}, "FS_PROJECT_NAME"),
        ({"api_key": FAKE_API_KEY, "project": FAKE_PROJECT, "host": ""}, "FS_HOST"),
    ],
)
def test_missing_settings_raise_an_error_naming_the_variable_without_calling_the_sdk(
    unreachable_login, settings, variable
):
    store, registry = resources(**settings)

    with pytest.raises(HopsworksLoginError, match=variable):
        store.read(START, START + pd.Timedelta(hours=1))
    with pytest.raises(HopsworksLoginError, match=variable):
        registry.versions(NAME)


def test_the_api_key_is_in_no_repr(tmp_path):
    for resource in resources(api_key=FAKE_API_KEY, project=FAKE_PROJECT):
        assert FAKE_API_KEY not in repr(resource)
        assert FAKE_API_KEY not in str(resource)


def test_a_rejected_key_gives_a_login_error_without_the_key(tmp_path):
    wrong_key = "wrong-key-abcdef"
    with fake_hopsworks(tmp_path):
        store = HopsworksFeatureStore(api_key=wrong_key, project=FAKE_PROJECT)
        with pytest.raises(HopsworksLoginError) as raised:
            store.read(START, START + pd.Timedelta(hours=1))

    assert isinstance(raised.value.__cause__, RestAPIError)
    assert wrong_key not in "".join(traceback.format_exception(raised.value))


def test_a_login_error_quoting_the_key_is_redacted_and_not_chained(monkeypatch):
    def leaky_login(**kwargs):
        raise ConnectionError(f"could not connect with key {kwargs['api_key_value']}")

    monkeypatch.setattr(hopsworks, "login", leaky_login)
    store = HopsworksFeatureStore(api_key=FAKE_API_KEY, project=FAKE_PROJECT)

    with pytest.raises(HopsworksLoginError, match="<FS_API_KEY>") as raised:
        store.read(START, START + pd.Timedelta(hours=1))

    assert raised.value.__cause__ is None and raised.value.__context__ is None
    assert FAKE_API_KEY not in "".join(traceback.format_exception(raised.value))


def test_an_unknown_project_fails_with_the_sdk_error_as_cause(tmp_path):
    with fake_hopsworks(tmp_path):
        registry = HopsworksModelRegistry(api_key=FAKE_API_KEY, project="someone_elses")
        with pytest.raises(HopsworksLoginError, match="someone_elses") as raised:
            registry.versions(NAME)

    assert isinstance(raised.value.__cause__, ProjectException)


def test_sdk_variables_that_only_fill_unset_arguments_change_nothing(tmp_path, monkeypatch):
    for variable, value in {"HOPSWORKS_API_KEY": "someone-elses-key", "HOPSWORKS_PROJECT": "other", "HOPSWORKS_HOST": "elsewhere.test",
                            "HOPSWORKS_CERT_FOLDER": str(tmp_path / "shared"), "HOPSWORKS_ENGINE": "spark"}.items():
        monkeypatch.setenv(variable, value)
    with fake_hopsworks(tmp_path) as backend:
        HopsworksModelRegistry(api_key=FAKE_API_KEY, project=FAKE_PROJECT, host=FAKE_HOST).versions(NAME)

    login = backend.logins[-1]
    assert (login["host"], login["port"], login["project"], login["engine"]) == (FAKE_HOST, 443, FAKE_PROJECT, "python")
    assert hopsworks_connection.folder() in Path(login["cert_folder"]).parents


def test_sdk_variables_that_replace_the_project_s_settings_are_named(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("HOPSWORKS_PORT", "8181")
    monkeypatch.setenv("HOPSWORKS_HOSTNAME_VERIFICATION", "false")
    with fake_hopsworks(tmp_path) as backend:
        HopsworksModelRegistry(api_key=FAKE_API_KEY, project=FAKE_PROJECT, host=FAKE_HOST).versions(NAME)

    assert (backend.logins[-1]["port"], backend.logins[-1]["hostname_verification"]) == ("8181", False)
    assert "HOPSWORKS_PORT=8181 replaces port 443" in caplog.text
    assert "HOPSWORKS_HOSTNAME_VERIFICATION=false replaces hostname_verification=True" in caplog.text


def test_inside_a_hopsworks_cluster_another_project_than_the_configured_one_is_refused(tmp_path, monkeypatch):
    # With REST_ENDPOINT set the SDK connects to the cluster's own project, whatever project was asked for.
    monkeypatch.setenv("REST_ENDPOINT", "https://hopsworks.internal:8181")
    monkeypatch.setenv("HOPSWORKS_PROJECT_NAME", FAKE_PROJECT)
    with fake_hopsworks(tmp_path):
        assert HopsworksModelRegistry(api_key=FAKE_API_KEY, project=FAKE_PROJECT).versions(NAME) == []
        with pytest.raises(HopsworksLoginError, match=f"gave project '{FAKE_PROJECT}', not FS_PROJECT_NAME='production'.*REST_ENDPOINT"):
            HopsworksModelRegistry(api_key=FAKE_API_KEY, project="production").versions(NAME)


def test_bad_rows_are_refused_before_logging_in(unreachable_login):
    store = HopsworksFeatureStore(api_key=FAKE_API_KEY, project=FAKE_PROJECT)

    with pytest.raises(ValueError, match=TARGET):
        store.insert(rows().drop(columns=TARGET))


# --- feature store ----------------------------------------------------------------------------------


def test_the_fake_insert_is_the_sdk_s_synchronous_delta_rs_merge_which_keeps_duplicate_keys(tmp_path):
    with fake_hopsworks(tmp_path):
        feature_store = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_feature_store()
        group = feature_store.get_or_create_feature_group(
            name="probe", version=1, primary_key=[AREA, CONSUMER_TYPE], event_time=DATETIME, time_travel_format="DELTA"
        )
        group.insert(rows())  # no wait: delta-rs writes before insert returns
        view = feature_store.create_feature_view(name="probe_view", version=1, query=group.select_all())
        window = {"start_time": START.to_pydatetime(), "end_time": (START + pd.Timedelta(hours=4)).to_pydatetime()}
        assert len(view.get_batch_data(**window)) == 8

        # A MERGE matches each source row on primary key + event time: a key twice in one insert is written twice.
        group.insert(pd.concat([rows(hours=1, value=5.0), rows(hours=1, value=6.0)]))
        read = view.get_batch_data(**window, primary_key=True, event_time=True)
        first_hour = read[read[DATETIME] == START.tz_localize(None)]

        assert sorted(first_hour[TARGET]) == [5.0, 5.0, 6.0, 6.0] and len(read) == 10
        # Each insert of new hours (what the hourly schedule does) adds a file until the table is compacted.
        files = len(group.data_files())
        group.insert(rows(hours=1).assign(**{DATETIME: START + pd.Timedelta(hours=4)}))
        assert len(group.data_files()) == files + 1


def test_the_fake_reads_back_the_sdk_s_nullable_dtypes_and_the_adapter_the_canonical_ones(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    store.insert(rows())
    raw = store._view().get_batch_data(primary_key=True, event_time=True)

    assert {column: str(dtype) for column, dtype in raw.dtypes.items()} == {
        DATETIME: "datetime64[us]", AREA: "Int32", CONSUMER_TYPE: "Int32", TARGET: "Float64"
    }
    read = store.read(START, START + pd.Timedelta(hours=4))
    assert {column: str(dtype) for column, dtype in read.dtypes.items()} == {
        DATETIME: "datetime64[us, UTC]", AREA: "int8", CONSUMER_TYPE: "int32", TARGET: "float64"
    }


def test_the_adapter_stores_one_row_per_key_when_an_insert_repeats_one(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    store.insert(pd.concat([rows(value=1.0), rows(value=2.0)]))
    store.insert(pd.concat([rows(value=3.0), rows(value=4.0)]))

    read = store.read(START, START + pd.Timedelta(hours=4))

    assert len(read) == 8 and set(read[TARGET]) == {4.0}


def test_the_adapter_waits_so_a_read_right_after_an_insert_sees_it(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    store.insert(rows(value=1.0))
    store.insert(rows(value=2.0))

    result = store.read(START, START + pd.Timedelta(hours=4))

    assert len(result) == 8 and set(result[TARGET]) == {2.0}


def test_the_feature_group_is_created_with_keys_event_time_descriptions_and_no_statistics_per_insert(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    for hour in range(3):
        store.insert(rows(hours=1).assign(**{DATETIME: START + pd.Timedelta(hours=hour)}))
    assert store._session._connection.backend.statistics_jobs == []  # no Hopsworks job per hourly insert

    with fake_hopsworks(tmp_path):
        feature_store = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_feature_store()
        group = feature_store.get_feature_group(FEATURE_GROUP_NAME, version=1)

    assert group.primary_key == [AREA, CONSUMER_TYPE] and group.event_time == DATETIME
    assert group._metadata["online_enabled"] is False
    assert group._metadata["statistics_config"] == {"enabled": False}
    assert {feature.name: feature.description for feature in group.columns} == FEATURE_DESCRIPTIONS
    assert group.time_travel_format == "DELTA" and group.expectation_suite is None


def test_the_feature_view_is_created_once_and_reused_across_runs(tmp_path):
    window = (START, START + pd.Timedelta(hours=4))
    hopsworks_feature_store(tmp_path).insert(rows())

    # Each run builds fresh resources; the fake refuses to create an existing view a second time.
    first = hopsworks_feature_store(tmp_path).read(*window)
    second = hopsworks_feature_store(tmp_path).read(*window)

    pd.testing.assert_frame_equal(first, second)
    views = sorted(path.relative_to(tmp_path / "hopsworks") for path in (tmp_path / "hopsworks").rglob("feature_views/**/*.json"))
    assert [str(view) for view in views] == ["feature_views/energy_consumption_denmark_view/1.json"]
    # The view the resource holds is the SDK's, its query every feature of the group, as the backend describes it.
    view = hopsworks_feature_store(tmp_path)._view()
    assert isinstance(view._sdk, FeatureView)
    assert [feature.name for feature in view._sdk.features] == list(OFFLINE_TYPES)


def test_a_group_an_earlier_release_created_with_statistics_gets_none_per_insert_from_then_on(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    backend = store._session._connection.backend
    store.insert(rows())
    metadata_path = backend.feature_group_dir(FEATURE_GROUP_NAME, 1) / "metadata.json"
    metadata_path.write_text(json.dumps({**json.loads(metadata_path.read_text()), "statistics_config": {"enabled": True}}))

    hopsworks_feature_store(tmp_path).insert(rows(value=2.0))
    hopsworks_feature_store(tmp_path).insert(rows(value=3.0))

    assert backend.statistics_jobs == [] and json.loads(metadata_path.read_text())["statistics_config"]["enabled"] is False


def test_maintenance_compacts_the_hourly_inserts_into_one_file_and_keeps_every_row(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    for hour in range(24):  # a day of the hourly schedule: one MERGE commit and one new file each
        store.insert(rows(hours=1, value=float(hour)).assign(**{DATETIME: START + pd.Timedelta(hours=hour)}))
    group = store._store().get_feature_group(FEATURE_GROUP_NAME, version=1)
    before = store.read(START, START + pd.Timedelta(days=1))
    assert len(group.data_files()) == 24

    facts = store.maintain()

    assert (facts["data_files_before"], facts["data_files_after"], facts["files_rewritten"]) == (24, 1, 24)
    assert len(group.data_files()) == 1
    pd.testing.assert_frame_equal(store.read(START, START + pd.Timedelta(days=1)), before)
    store.insert(rows(hours=1, value=9.0))  # writes go on after a compaction
    assert set(store.read(START, START + pd.Timedelta(hours=1))[TARGET]) == {9.0}


def test_maintenance_before_the_group_exists_does_nothing(tmp_path):
    assert hopsworks_feature_store(tmp_path).maintain() == {"compaction": "none: the feature group does not exist yet"}


def test_a_view_of_another_feature_group_version_is_refused(tmp_path):
    hopsworks_feature_store(tmp_path, feature_group_version=1).insert(rows())
    hopsworks_feature_store(tmp_path, feature_group_version=1).read(START, START + pd.Timedelta(hours=1))
    store = hopsworks_feature_store(tmp_path, feature_group_version=2)
    store.insert(rows())
    misconfigured = HopsworksFeatureStore(
        api_key=FAKE_API_KEY, project=FAKE_PROJECT, feature_group_version=2, feature_view_version=1
    )

    with fake_hopsworks(tmp_path), pytest.raises(ValueError, match="feature_view_version"):
        misconfigured.read(START, START + pd.Timedelta(hours=1))


def test_a_recorded_training_dataset_keeps_the_window_as_read_when_later_upserts_change_it(tmp_path):
    window = (START, START + pd.Timedelta(hours=4))
    store = hopsworks_feature_store(tmp_path)
    recording = HopsworksFeatureStore(api_key=FAKE_API_KEY, project=FAKE_PROJECT, host=FAKE_HOST, record_training_datasets=True)
    store.insert(rows(value=1.0))
    read_then = store.read(*window)

    source = recording.data_source(*window)
    store.insert(rows(value=2.0))  # a later upsert of the same hours

    assert source == {"feature_view": "energy_consumption_denmark_view", "feature_view_version": 1, "training_dataset_version": 1}
    assert frame_sha256(store.read(*window)) != frame_sha256(read_then)
    assert frame_sha256(recording.training_dataset(1)) == frame_sha256(read_then)
    assert store.data_source(*window) == {"feature_view": "energy_consumption_denmark_view", "feature_view_version": 1}


def test_the_fake_training_dataset_is_readable_only_once_its_job_ran(tmp_path):
    with fake_hopsworks(tmp_path) as backend:
        feature_store = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_feature_store()
        group = feature_store.get_or_create_feature_group(name="probe", version=1, primary_key=[AREA, CONSUMER_TYPE], event_time=DATETIME)
        group.insert(rows(), wait=True)
        view = feature_store.create_feature_view(name="probe_view", version=1, query=group.select_all())
        version, _job = view.create_training_data(start_time=START.to_pydatetime(), end_time=(START + pd.Timedelta(hours=2)).to_pydatetime())

        with pytest.raises(RestAPIError, match="not materialized"):
            view.get_training_data(version)
        backend.run_pending_jobs()
        features, labels = view.get_training_data(version, primary_key=True, event_time=True)

    assert len(features) == 4 and labels is None


# --- model registry ---------------------------------------------------------------------------------


def test_get_asks_for_the_exact_version_not_the_sdk_default_of_one(tmp_path):
    registry = hopsworks_model_registry(tmp_path)
    register(registry, tmp_path, "first")
    register(registry, tmp_path, "second", cutoff=START + pd.Timedelta(hours=1))

    second = registry.get(NAME, 2)

    assert (second.version, second.config, second.data_cutoff) == (2, {"tag": "second"}, START + pd.Timedelta(hours=1))
    assert (registry.download(second) / "model.txt").read_text() == "second"


def test_the_fake_get_model_without_version_warns_and_means_version_one(tmp_path):
    register(hopsworks_model_registry(tmp_path), tmp_path, "first")
    register(hopsworks_model_registry(tmp_path), tmp_path, "second")

    with fake_hopsworks(tmp_path):
        model_registry = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()
        with pytest.warns(VersionWarning):
            model = model_registry.get_model(NAME)

    assert model.version == 1
    assert model_registry.get_model(NAME, version=3) is None


def test_a_model_version_without_training_facts_is_reported_by_version_and_blocks_no_other(tmp_path, caplog):
    directory = model_dir(tmp_path, "manual")
    with fake_hopsworks(tmp_path):
        model_registry = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()
        model_registry.python.create_model(name=NAME, description="uploaded by hand").save(str(directory))

    registry = hopsworks_model_registry(tmp_path)
    assert registry.versions(NAME) == []
    assert f"model {NAME!r} version 1 was not registered by this release" in caplog.text
    with pytest.raises(ValueError, match=rf"{NAME}.*version 1"):
        registry.get(NAME, 1)


def test_registering_refuses_a_missing_folder_and_non_json_config(tmp_path):
    registry = hopsworks_model_registry(tmp_path)
    facts = {"data_cutoff": START, "training_start": START, "feature_group_version": 1, "metrics": {}}

    with pytest.raises(NotADirectoryError, match="missing"):
        registry.register(NAME, tmp_path / "missing", config={}, **facts)
    with pytest.raises(ValueError, match="JSON"):
        registry.register(NAME, model_dir(tmp_path, "a"), config={"when": pd.Timestamp(0)}, **facts)
    assert registry.versions(NAME) == []


def test_the_description_fits_the_backend_and_choosing_the_model_in_effect_downloads_nothing(tmp_path):
    registry = hopsworks_model_registry(tmp_path)
    excluded = [{"area": 1, "consumer_type": 100 + n, "hours_available": n} for n in range(10)]
    search = [{"n_estimators": 100 * n, "num_leaves": 31, "mape": 0.05, "rmspe": 0.07} for n in range(12)]
    config = ForecasterConfig().to_dict()
    for day in range(3):
        registry.register(
            NAME, model_dir(tmp_path, f"day{day}"), data_cutoff=START + pd.Timedelta(days=day), training_start=START,
            feature_group_version=1, config=config, metrics={"model_mape": 0.05},
            extra={"training_window_days": 30, "excluded_series": excluded, "hyperparameter_search": search},
        )
    backend = registry._session._connection.backend
    descriptions = [FakeModel.from_backend(None, path.parent).description for path in backend.root.glob("models/*/*/model.json")]
    assert len(descriptions) == 3 and all(len(description) <= DESCRIPTION_BUDGET for description in descriptions)

    in_effect = registry.latest(NAME, at_or_before=START + pd.Timedelta(days=1, hours=5))

    assert in_effect.version == 2 and in_effect.config == config
    assert in_effect.extra["training_window_days"] == 30 and "hyperparameter_search" in in_effect.extra
    assert backend.downloads == []
    assert in_effect.extra["excluded_series"] == excluded  # read from the model files when asked for
    assert backend.downloads == [(NAME, 2)]


def test_a_model_name_suffix_keeps_throw_away_models_apart_under_their_logical_name(tmp_path):
    plain = hopsworks_model_registry(tmp_path)
    throw_away = HopsworksModelRegistry(
        api_key=FAKE_API_KEY, project=FAKE_PROJECT, host=FAKE_HOST, model_name_suffix="_live_1a2b"
    )
    register(plain, tmp_path, "plain")

    registered = register(throw_away, tmp_path, "throw-away")

    assert (registered.name, registered.version, registered.config) == (NAME, 1, {"tag": "throw-away"})
    assert (tmp_path / "hopsworks" / "models" / f"{NAME}_live_1a2b" / "1" / "model.json").exists()
    assert [model.config for model in plain.versions(NAME)] == [{"tag": "plain"}]
    assert (throw_away.download(registered) / "model.txt").read_text() == "throw-away"


def test_the_fake_refuses_a_description_over_1000_characters_like_the_backend(tmp_path):
    with fake_hopsworks(tmp_path):
        model_registry = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()
        with pytest.raises(RestAPIError, match="too long"):
            model_registry.python.create_model(name=NAME, description="x" * 1001).save(str(model_dir(tmp_path, "a")))
        assert model_registry.get_models(NAME) == []


def test_the_fake_answers_with_the_sdk_model_so_metric_names_come_back_decamelized(tmp_path):
    with fake_hopsworks(tmp_path):
        model_registry = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()
        model_registry.python.create_model(name=NAME, metrics={"snaive168_mape": 0.1}).save(str(model_dir(tmp_path, "a")))
        model = model_registry.get_model(NAME, version=1)

    assert isinstance(model, PythonModel)
    assert model.training_metrics == {"snaive_168__mape": 0.1}


def test_a_save_that_outlasts_its_wait_is_confirmed_by_looking_the_version_up(tmp_path):
    # hsml 5.2 raises AttributeError (None.get_url()) when its wait for the registration runs out.
    registry = hopsworks_model_registry(tmp_path).model_copy(update={"registration_wait_seconds": 0.5})
    register(registry, tmp_path, "first")
    backend = registry._session._connection.backend
    backend.unconfirmed_saves, backend.registration_lag_lookups = 1, 2

    second = register(registry, tmp_path, "second")

    assert second.version == 2 and second.config == {"tag": "second"}
    assert [model.version for model in registry.versions(NAME)] == [1, 2]


def test_a_registration_never_confirmed_fails_naming_the_version(tmp_path):
    registry = hopsworks_model_registry(tmp_path).model_copy(update={"registration_wait_seconds": 0.2})
    backend = registry._session._connection.backend
    backend.unconfirmed_saves, backend.registration_lag_lookups = 1, 10**6

    with pytest.raises(ModelRegistrationError, match=f"did not confirm model '{NAME}' version 1"):
        register(registry, tmp_path, "first")


def test_the_fake_save_fails_as_hsml_does_when_the_registration_outlasts_its_wait(tmp_path):
    with fake_hopsworks(tmp_path) as backend:
        model_registry = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT).get_model_registry()
        backend.unconfirmed_saves = 1
        model = model_registry.python.create_model(name=NAME)
        with pytest.raises(AttributeError, match="'NoneType' object has no attribute 'get_url'"):
            model.save(str(model_dir(tmp_path, "a")))

        assert model.version == 1  # set before the upload, as hsml's _set_model_version does
        assert model_registry.get_model(NAME, version=1) is None  # registered, not yet visible
        assert model_registry.get_model(NAME, version=1).version == 1


# --- the course's feature group -------------------------------------------------------------------------


def test_the_courses_feature_group_is_detected_and_never_written(tmp_path):
    store = hopsworks_feature_store(tmp_path)
    backend = store._session._connection.backend
    backend.add_course_feature_group(FEATURE_GROUP_NAME, version=1)
    group_dir = backend.feature_group_dir(FEATURE_GROUP_NAME, 1)
    before = sorted(path.name for path in group_dir.rglob("*"))

    with pytest.raises(FeatureGroupMismatchError) as raised:
        store.insert(rows())

    message = str(raised.value)
    for difference in ("'HUDI'", "Great Expectations", "STRICT", "bigint", "ENERGY_ASSETS_FEATURE_GROUP_VERSION=2"):
        assert difference in message
    assert sorted(path.name for path in group_dir.rglob("*")) == before
    with pytest.raises(FeatureGroupMismatchError, match="ENERGY_ASSETS_FEATURE_GROUP_VERSION=2"):
        hopsworks_feature_store(tmp_path).read(START, START + pd.Timedelta(hours=4))

    next_version = hopsworks_feature_store(tmp_path, feature_group_version=2)
    next_version.insert(rows())
    assert len(next_version.read(START, START + pd.Timedelta(hours=4))) == 8


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"primary_key": ["area"]}, "primary key"),
        ({"event_time": None}, "event time"),
        ({"time_travel_format": "HUDI", "expectation_suite": None}, "time travel format"),
    ],
)
def test_each_difference_of_an_existing_group_is_named(tmp_path, changes, named):
    store = hopsworks_feature_store(tmp_path)
    store.insert(rows())
    backend = store._session._connection.backend
    metadata = json.loads((backend.feature_group_dir(FEATURE_GROUP_NAME, 1) / "metadata.json").read_text())
    ours = {"features": metadata["features"], "expectation_suite": None, "time_travel_format": "DELTA"}
    backend.add_course_feature_group(FEATURE_GROUP_NAME, version=3, **{**ours, **changes})

    with pytest.raises(FeatureGroupMismatchError, match=named) as raised:
        hopsworks_feature_store(tmp_path, feature_group_version=3).insert(rows())
    assert "ENERGY_ASSETS_FEATURE_GROUP_VERSION=4" in str(raised.value)


# --- the fake keeps the SDK's contract -----------------------------------------------------------------


def test_the_fake_returns_none_for_absent_entities_like_the_sdk(tmp_path):
    with fake_hopsworks(tmp_path):
        project = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT)
        feature_store, model_registry = project.get_feature_store(), project.get_model_registry()

        assert feature_store.get_feature_group("absent", version=1) is None
        assert feature_store.get_feature_view("absent", version=1) is None
        assert model_registry.get_model("absent", version=1) is None
        assert model_registry.get_models("absent") == []
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(VersionWarning):
                feature_store.get_feature_group("absent")


def test_the_fake_raises_the_sdk_errors(tmp_path):
    with fake_hopsworks(tmp_path):
        project = hopsworks.login(api_key_value=FAKE_API_KEY, project=FAKE_PROJECT)
        feature_store = project.get_feature_store()
        group = feature_store.get_or_create_feature_group(
            name="probe", version=1, primary_key=[AREA, CONSUMER_TYPE], event_time=DATETIME
        )
        with pytest.raises(RestAPIError):
            feature_store.create_feature_view(name="probe_view", version=1, query=group.select_all())
        group.insert(rows(), wait=True)
        again = feature_store.get_or_create_feature_group(name="probe", version=1, description="changed", primary_key=[AREA])
        assert (again.description, again.primary_key) == ("", [AREA, CONSUMER_TYPE])  # get, never update

        with pytest.raises(FeatureStoreException, match="wrong type"):
            group.insert(rows().astype({AREA: "float64"}))
        feature_store.create_feature_view(name="probe_view", version=1, query=group.select_all())
        with pytest.raises(RestAPIError, match="already exists"):
            feature_store.create_feature_view(name="probe_view", version=1, query=group.select_all())
        with pytest.raises(TypeError):
            group.insert(rows(), wait_for_job=True)  # not an SDK parameter

        model_registry = project.get_model_registry()
        model_registry.python.create_model(name=NAME, version=1).save(str(model_dir(tmp_path, "a")))
        with pytest.raises(ModelRegistryException, match="already exists"):
            model_registry.python.create_model(name=NAME, version=1).save(str(model_dir(tmp_path, "b")))
        for name, version in (("Energy_View", 1), ("energy-view", 1), ("v" * 64, 1), ("energy_view", 0)):
            with pytest.raises(RestAPIError, match="invalid"):
                feature_store.create_feature_view(name=name, version=version, query=group.select_all())
        with pytest.raises(ProjectException):
            hopsworks.login(api_key_value=FAKE_API_KEY, project="other")


def test_resources_work_inside_a_dagster_run_with_the_login_patched(tmp_path):
    @dg.asset
    def stored_rows(feature_store: FeatureStore) -> None:
        feature_store.insert(rows())

    @dg.asset(deps=[stored_rows])
    def read_back(feature_store: FeatureStore) -> int:
        return len(feature_store.read(START, START + pd.Timedelta(hours=4)))

    store = HopsworksFeatureStore(api_key=FAKE_API_KEY, project=FAKE_PROJECT)
    with fake_hopsworks(tmp_path):
        result = dg.materialize([stored_rows, read_back], resources={"feature_store": store})

    assert result.output_for_node("read_back") == 8
