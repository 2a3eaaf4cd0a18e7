"""What only the embedded stores promise: on-disk layout, input casting, concurrent writers, crash safety."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from energy_assets.resources.local_feature_store import LocalFeatureStore
from energy_assets.resources.local_model_registry import LocalModelRegistry
from energy_assets.schema import (
    AREA,
    CONSUMER_TYPE,
    CONSUMPTION_COLUMNS,
    DATETIME,
    FEATURE_GROUP_NAME,
    TARGET,
    de35_series,
)
from energy_assets_tests.test_feature_store_contract import canonical, consumption_rows
from energy_assets_tests.test_model_registry_contract import NAME, files_of, register

DAY = pd.Timestamp("2023-01-05", tz="UTC")
SERIES = de35_series()
# Fork keeps the workers cheap to start; they only use what the test module already imported.
PROCESSES = multiprocessing.get_context("fork")


def day_rows(day: pd.Timestamp = DAY, offset: float = 0.0) -> pd.DataFrame:
    """All 76 series for the 24 hours of `day`."""
    return consumption_rows(SERIES, pd.date_range(day, periods=24, freq="h"), offset)


def store_dir(root: Path, version: int = 1) -> Path:
    """Where the local store keeps one feature-group version."""
    return root / FEATURE_GROUP_NAME / f"v{version}"


def run_processes(target, argument_lists: list[tuple]) -> list[int]:
    """Start one real process per argument tuple, all released together by a barrier; their exit codes."""
    barrier = PROCESSES.Barrier(len(argument_lists))
    processes = [PROCESSES.Process(target=target, args=(*arguments, barrier)) for arguments in argument_lists]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    return [process.exitcode for process in processes]


def _insert_hours_one_by_one(root: str, hours: list[pd.Timestamp], barrier) -> None:
    store = LocalFeatureStore(root_dir=root)
    barrier.wait()
    for hour in hours:
        store.insert(consumption_rows(SERIES, pd.DatetimeIndex([hour])))


def _insert_then_die_before_rename(root: str, barrier) -> None:
    barrier.wait()
    os.replace = lambda *_: os._exit(9)  # the process dies with the new day file written but not renamed
    LocalFeatureStore(root_dir=root).insert(day_rows(offset=1000.0))


def _register_model(root: str, model_dir: str, tag: str, barrier) -> None:
    barrier.wait()
    LocalModelRegistry(root_dir=root).register(
        NAME,
        model_dir,
        data_cutoff=DAY,
        training_start=DAY - pd.Timedelta(days=14),
        feature_group_version=1,
        config={"tag": tag},
        metrics={},
    )


def _register_then_die_before_rename(root: str, model_dir: str, barrier) -> None:
    barrier.wait()
    os.rename = lambda *_: os._exit(9)  # the process dies with the version staged but not renamed
    _register_model(root, model_dir, "killed", PROCESSES.Barrier(1))


# Feature store


def test_one_parquet_file_per_utc_day_per_version(tmp_path):
    LocalFeatureStore(root_dir=str(tmp_path), feature_group_version=2).insert(
        consumption_rows(SERIES, pd.date_range(DAY - pd.Timedelta(hours=2), periods=4, freq="h"))
    )

    assert sorted(path.name for path in store_dir(tmp_path, 2).glob("*.parquet")) == [
        "2023-01-04.parquet",
        "2023-01-05.parquet",
    ]


def test_read_opens_only_the_day_files_of_the_window(tmp_path):
    store = LocalFeatureStore(root_dir=str(tmp_path))
    store.insert(pd.concat([day_rows(DAY - pd.Timedelta(days=1)), day_rows(), day_rows(DAY + pd.Timedelta(days=1))]))
    for outside in ["2023-01-04.parquet", "2023-01-06.parquet"]:
        (store_dir(tmp_path) / outside).write_bytes(b"not parquet")

    pd.testing.assert_frame_equal(store.read(DAY, DAY + pd.Timedelta(days=1)), canonical(day_rows()))


def test_insert_names_the_missing_columns(tmp_path):
    with pytest.raises(ValueError, match=rf"\['{CONSUMER_TYPE}', '{TARGET}'\]"):
        LocalFeatureStore(root_dir=str(tmp_path)).insert(day_rows().drop(columns=[CONSUMER_TYPE, TARGET]))


@pytest.mark.parametrize(
    ("column", "bad_value", "problem"),
    [
        (AREA, "DK1", "does not cast"),
        (AREA, 300, "does not cast"),
        (CONSUMER_TYPE, 111.5, "does not cast"),
        (DATETIME, "yesterday", "does not cast"),
        (TARGET, None, "missing value"),
    ],
)
def test_insert_refuses_rows_that_do_not_cast_and_keeps_what_is_stored(tmp_path, column, bad_value, problem):
    store = LocalFeatureStore(root_dir=str(tmp_path))
    store.insert(day_rows())
    bad = day_rows(offset=500.0).astype({column: object})
    bad.loc[3, column] = bad_value

    with pytest.raises(ValueError, match=f"'{column}' .*{problem}"):
        store.insert(bad)

    pd.testing.assert_frame_equal(store.read(DAY, DAY + pd.Timedelta(days=1)), canonical(day_rows()))


def test_insert_casts_to_canonical_dtypes_takes_naive_times_as_utc_and_drops_other_columns(tmp_path):
    store = LocalFeatureStore(root_dir=str(tmp_path))
    loose = day_rows().astype({AREA: "float64", CONSUMER_TYPE: "int64", TARGET: "int64"})
    loose[DATETIME] = loose[DATETIME].dt.tz_localize(None)
    loose["source_note"] = "extra"

    store.insert(loose)

    expected = canonical(day_rows().astype({TARGET: "int64"}))
    pd.testing.assert_frame_equal(store.read(DAY, DAY + pd.Timedelta(days=1)), expected)


def test_two_processes_writing_interleaved_hours_of_one_day_lose_nothing(tmp_path):
    hours = list(pd.date_range(DAY, periods=24, freq="h"))

    exit_codes = run_processes(_insert_hours_one_by_one, [(str(tmp_path), hours[0::2]), (str(tmp_path), hours[1::2])])

    assert exit_codes == [0, 0]
    expected = pd.concat([consumption_rows(SERIES, pd.DatetimeIndex([hour])) for hour in hours])
    stored = LocalFeatureStore(root_dir=str(tmp_path)).read(DAY, DAY + pd.Timedelta(days=1))
    pd.testing.assert_frame_equal(stored, canonical(expected))


def _raise_on_replace(monkeypatch):
    def fail(*_):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", fail)


def _write_half_a_file_then_raise(monkeypatch):
    def half_write(table, where, **_):
        where.write(b"PAR1 truncated")
        raise OSError("simulated crash while writing")

    monkeypatch.setattr(pq, "write_table", half_write)


@pytest.mark.parametrize("crash", [_raise_on_replace, _write_half_a_file_then_raise])
def test_a_write_failing_midway_leaves_the_previous_day_file_and_no_temp_file(tmp_path, monkeypatch, crash):
    store = LocalFeatureStore(root_dir=str(tmp_path))
    store.insert(day_rows())
    crash(monkeypatch)

    with pytest.raises(OSError, match="simulated crash"):
        store.insert(day_rows(offset=1000.0))

    assert sorted(path.name for path in store_dir(tmp_path).iterdir()) == [".2023-01-05.lock", "2023-01-05.parquet"]
    pd.testing.assert_frame_equal(store.read(DAY, DAY + pd.Timedelta(days=1)), canonical(day_rows()))


def test_a_writer_killed_before_rename_leaves_the_previous_data_and_no_stuck_lock(tmp_path):
    store = LocalFeatureStore(root_dir=str(tmp_path))
    store.insert(day_rows())

    assert run_processes(_insert_then_die_before_rename, [(str(tmp_path),)]) == [9]

    assert len(list(store_dir(tmp_path).glob(".*.tmp"))) == 1  # the dead writer's file is left, never read
    pd.testing.assert_frame_equal(store.read(DAY, DAY + pd.Timedelta(days=1)), canonical(day_rows()))
    store.insert(day_rows(offset=2000.0))
    pd.testing.assert_frame_equal(store.read(DAY, DAY + pd.Timedelta(days=1)), canonical(day_rows(offset=2000.0)))


def test_thirty_days_of_all_76_series_round_trip(tmp_path):
    hours = pd.date_range(DAY, periods=30 * 24, freq="h")
    rows = consumption_rows(SERIES, hours)
    rows[TARGET] = np.random.default_rng(0).gamma(2.0, 500.0, len(rows))
    store = LocalFeatureStore(root_dir=str(tmp_path))

    store.insert(rows)

    pd.testing.assert_frame_equal(store.read(hours[0], hours[-1] + pd.Timedelta(hours=1)), canonical(rows))
    week = (hours[100], hours[100] + pd.Timedelta(days=7))
    some = SERIES.iloc[[0, 40, 75]]
    in_week = rows[(rows[DATETIME] >= week[0]) & (rows[DATETIME] < week[1])].merge(some)[CONSUMPTION_COLUMNS]
    pd.testing.assert_frame_equal(store.read(*week, series=some), canonical(in_week))


# Model registry


def test_concurrent_registrations_get_versions_one_to_n_with_their_own_files(tmp_path):
    root, tags = tmp_path / "registry", ["w0", "w1", "w2", "w3"]
    model_dirs = {tag: tmp_path / tag for tag in tags}
    for tag, directory in model_dirs.items():
        directory.mkdir()
        (directory / "model.bin").write_bytes(tag.encode() * 10_000)

    exit_codes = run_processes(_register_model, [(str(root), str(model_dirs[tag]), tag) for tag in tags])

    assert exit_codes == [0, 0, 0, 0]
    registry = LocalModelRegistry(root_dir=str(root))
    versions = registry.versions(NAME)
    assert [model.version for model in versions] == [1, 2, 3, 4]
    assert sorted(model.config["tag"] for model in versions) == tags
    for model in versions:
        assert files_of(registry.download(model)) == files_of(model_dirs[model.config["tag"]])


def test_a_registration_failing_before_rename_leaves_no_version_and_no_staging(tmp_path, monkeypatch):
    registry = LocalModelRegistry(root_dir=str(tmp_path / "registry"))

    def fail(*_):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "rename", fail)
    with pytest.raises(OSError, match="simulated crash"):
        register(registry, tmp_path)
    monkeypatch.undo()

    assert registry.versions(NAME) == []
    assert [path.name for path in (tmp_path / "registry" / NAME).iterdir()] == [".lock"]
    assert register(registry, tmp_path, tag="b").version == 1


def test_a_registration_killed_before_rename_is_invisible_and_numbering_goes_on(tmp_path):
    root, model_dir = tmp_path / "registry", tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.bin").write_bytes(b"weights")

    assert run_processes(_register_then_die_before_rename, [(str(root), str(model_dir))]) == [9]

    registry = LocalModelRegistry(root_dir=str(root))
    assert registry.versions(NAME) == []
    assert register(registry, tmp_path).version == 1


def test_metadata_keeps_times_as_utc_iso_strings(tmp_path):
    registry = LocalModelRegistry(root_dir=str(tmp_path / "registry"))

    (tmp_path / "model").mkdir()
    model = registry.register(
        NAME,
        tmp_path / "model",
        data_cutoff=pd.Timestamp("2023-01-05 13:00", tz="Europe/Copenhagen"),
        training_start=pd.Timestamp("2022-12-22 00:00"),
        feature_group_version=1,
        config={},
        metrics={"mae": np.float32(1.5)},
    )

    metadata = json.loads((tmp_path / "registry" / NAME / "v1" / "metadata.json").read_text())
    assert metadata["data_cutoff"] == "2023-01-05T12:00:00+00:00"
    assert metadata["training_start"] == "2022-12-22T00:00:00+00:00"
    assert model.data_cutoff == pd.Timestamp("2023-01-05 12:00", tz="UTC")
    assert model.metrics == {"mae": 1.5}


def test_registered_files_are_marked_read_only(tmp_path):
    registry = LocalModelRegistry(root_dir=str(tmp_path / "registry"))
    stored = registry.download(register(registry, tmp_path))

    assert all(path.stat().st_mode & 0o222 == 0 for path in stored.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    ("name", "model_dir", "config", "error", "match"),
    [
        ("../escape", "model", {}, ValueError, "model name"),
        (NAME, "absent", {}, NotADirectoryError, "absent"),
        (NAME, "model", {"when": pd.Timestamp("2023-01-01")}, ValueError, "JSON"),
    ],
)
def test_bad_registrations_are_refused_and_store_nothing(tmp_path, name, model_dir, config, error, match):
    (tmp_path / "model").mkdir()
    registry = LocalModelRegistry(root_dir=str(tmp_path / "registry"))

    with pytest.raises(error, match=match):
        registry.register(
            name, tmp_path / model_dir, data_cutoff=DAY, training_start=DAY, feature_group_version=1,
            config=config, metrics={},
        )

    assert not (tmp_path / "registry").exists()
