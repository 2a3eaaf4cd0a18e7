"""Moving objects written in the layout before the hive one (`<asset>/<YYYY-MM-DD-HH:MM>.parquet`) to it.

Each object is copied to its hive key, the copy read back and compared byte for byte, and only then is
the old object deleted; so an interrupted run loses nothing, and running again finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass

from energy_assets.storage.buckets import Bucket
from energy_assets.storage.objects import legacy_partition_key, partition_object_key

COPY = "copy"  # copy to the hive key, then delete the old object
DELETE = "delete"  # the hive key already holds the same bytes (a run interrupted after its copy): delete the old
CONFLICT = "conflict"  # the hive key holds different bytes: nothing is touched, a person decides


@dataclass(frozen=True)
class Move:
    """One old object and what migrating it does."""

    old_key: str
    new_key: str
    action: str


def planned_moves(bucket: Bucket, prefix: str) -> list[Move]:
    """What migrating every old-layout object under `prefix` would do, from one listing and one read per
    existing target; an empty list when nothing is left to migrate."""
    keys = bucket.list_keys(prefix.rstrip("/") + "/")
    existing = set(keys)
    moves = []
    for key in keys:
        folder, _, name = key.rpartition("/")
        partition_key = legacy_partition_key(name)
        if partition_key is None or not folder:
            continue
        new_key = partition_object_key(folder, [], partition_key)
        if new_key not in existing:
            action = COPY
        elif bucket.read_bytes(new_key) == bucket.read_bytes(key):
            action = DELETE
        else:
            action = CONFLICT
        moves.append(Move(key, new_key, action))
    return moves


def apply_move(bucket: Bucket, move: Move) -> None:
    """Carry out one planned move: copy and verify before deleting; a conflict is left alone."""
    if move.action == CONFLICT:
        return
    data = bucket.read_bytes(move.old_key)
    if move.action == COPY:
        # Only if the hive key is still free: a run may have written the hour since the plan (FileExistsError).
        bucket.write_bytes(move.new_key, data, create_only=True)
    if bucket.read_bytes(move.new_key) != data:
        raise OSError(
            f"{bucket.uri(move.new_key)} does not hold the bytes of {bucket.uri(move.old_key)} after copying; "
            "the old object is kept"
        )
    bucket.delete(move.old_key)
