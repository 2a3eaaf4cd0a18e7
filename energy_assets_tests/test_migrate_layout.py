"""`energy-assets migrate-layout`: old-layout objects move to the hive layout, dry run first, copy before delete."""

from __future__ import annotations

import pandas as pd
import pytest

from energy_assets.app.cli import main
from energy_assets.storage.buckets import Bucket, LocalBucket
from energy_assets.storage.forecasts import gather_forecasts
from energy_assets.storage.migration import CONFLICT, COPY, DELETE, apply_move, planned_moves
from energy_assets.storage.objects import legacy_partition_object_key, parquet_bytes, partition_object_key, to_arrow
from energy_assets_tests.test_forecast_store import ISSUED, forecast_rows

ASSETS = ["energy_forecasts", "forecast_accuracy"]


def publish_old_layout(bucket: Bucket) -> dict[str, bytes]:
    """Forecasts and accuracy objects where the layout before the hive one put them; old key -> bytes."""
    written = {}
    for asset in ASSETS:
        for key in ISSUED:
            data = parquet_bytes(to_arrow(forecast_rows(key)))
            old_key = legacy_partition_object_key("energy_assets", [asset], key)
            bucket.write_bytes(old_key, data)
            written[old_key] = data
    return written


def new_key(old_key: str) -> str:
    folder, _, name = old_key.rpartition("/")
    return partition_object_key(folder, [], name.removesuffix(".parquet"))


def test_migration_moves_every_object_byte_for_byte_and_is_idempotent(any_bucket):
    written = publish_old_layout(any_bucket)
    any_bucket.write_bytes("energy_assets/forecast_accuracy_summary.parquet", b"kept as it is")
    plan = planned_moves(any_bucket, "energy_assets")
    assert {(move.old_key, move.new_key, move.action) for move in plan} == {
        (old_key, new_key(old_key), COPY) for old_key in written
    }
    for move in plan:
        apply_move(any_bucket, move)
    assert sorted(any_bucket.list_keys("energy_assets/")) == sorted(
        [*(new_key(old_key) for old_key in written), "energy_assets/forecast_accuracy_summary.parquet"]
    )
    assert all(any_bucket.read_bytes(new_key(old_key)) == data for old_key, data in written.items())
    assert not any(":" in key for key in any_bucket.list_keys("energy_assets/"))
    assert planned_moves(any_bucket, "energy_assets") == []
    gathered = gather_forecasts(any_bucket, "2023-01-14 20:00", "2023-01-14 23:00")
    assert gathered["issued_at"].dt.hour.unique().tolist() == [20, 21, 23]


def test_an_interrupted_run_resumes_and_a_conflict_is_left_alone(any_bucket):
    written = publish_old_layout(any_bucket)
    first, second, *_ = sorted(written)
    # Interrupted after copying `first` but before deleting it.
    any_bucket.write_bytes(new_key(first), written[first])
    # Something else already sits where `second` would go.
    any_bucket.write_bytes(new_key(second), b"other bytes")
    actions = {move.old_key: move.action for move in planned_moves(any_bucket, "energy_assets")}
    assert actions[first] == DELETE and actions[second] == CONFLICT
    for move in planned_moves(any_bucket, "energy_assets"):
        apply_move(any_bucket, move)
    assert not any_bucket.exists(first) and any_bucket.read_bytes(new_key(first)) == written[first]
    assert any_bucket.read_bytes(second) == written[second]
    assert any_bucket.read_bytes(new_key(second)) == b"other bytes"


def test_an_hour_written_since_the_plan_is_not_overwritten_by_its_old_object(any_bucket):
    # On GCS the copy is conditional on the hive key not existing (ifGenerationMatch=0).
    written = publish_old_layout(any_bucket)
    move = planned_moves(any_bucket, "energy_assets")[0]
    any_bucket.write_bytes(move.new_key, b"a newer forecast of that hour")  # a run, between the plan and the copy

    with pytest.raises(FileExistsError, match=f"{any_bucket.uri(move.new_key)} exists"):
        apply_move(any_bucket, move)

    assert any_bucket.read_bytes(move.new_key) == b"a newer forecast of that hour"
    assert any_bucket.read_bytes(move.old_key) == written[move.old_key]
    assert {m.old_key: m.action for m in planned_moves(any_bucket, "energy_assets")}[move.old_key] == CONFLICT


def test_a_copy_that_does_not_read_back_keeps_the_old_object(tmp_path):
    class LossyBucket(LocalBucket):
        def write_bytes(self, key: str, data: bytes, create_only: bool = False) -> str:
            return super().write_bytes(key, data[:-1], create_only)

    bucket = LossyBucket(root_dir=str(tmp_path))
    written = publish_old_layout(LocalBucket(root_dir=str(tmp_path)))
    move = planned_moves(bucket, "energy_assets")[0]
    with pytest.raises(OSError, match="does not hold the bytes of .* after copying; the old object is kept"):
        apply_move(bucket, move)
    assert bucket.read_bytes(move.old_key) == written[move.old_key]


def test_the_command_is_a_dry_run_unless_applied(isolated_state, capsys):
    bucket = LocalBucket(root_dir=str(isolated_state / "bucket"))
    written = publish_old_layout(bucket)
    assert main(["migrate-layout"]) == 0
    out = capsys.readouterr().out
    assert f"dry run: {len(written)} object(s) to migrate, 0 conflict(s); run again with --apply" in out
    assert f"would copy {bucket.uri(sorted(written)[0])} -> {bucket.uri(new_key(sorted(written)[0]))}" in out
    assert sorted(bucket.list_keys("energy_assets/")) == sorted(written)
    assert main(["migrate-layout", "--apply"]) == 0
    assert f"migrated {len(written)} object(s); 0 conflict(s)" in capsys.readouterr().out
    assert main(["migrate-layout", "--apply"]) == 0
    assert "nothing to migrate under" in capsys.readouterr().out
    assert main(["latest", "--at", "2023-01-15", "--area", "DK1", "--consumer-type", "111"]) == 0
    assert "issued at 2023-01-14 23:00 UTC" in capsys.readouterr().out
    frame = pd.read_parquet(isolated_state / "bucket" / "energy_assets" / "energy_forecasts")
    assert len(frame) == len(ISSUED) * 48
