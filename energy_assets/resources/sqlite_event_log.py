"""Dagster's SQLite event log, writing a batch of asset events in two transactions instead of two per event.

A single-run backfill of N hourly partitions logs a materialization event per asset and partition
(and, unless DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS is set, a planned event per asset and
partition). Dagster's SqliteEventLogStorage writes each one by itself: an engine, a connection and a
commit for the run's shard, another for the cross-run index, plus a schema probe, about 10 ms an
event on this machine, so 8,760 hours of raw + features spend minutes in the event log. Dagster hands
a storage the events of one output (or the planned events of a run) together when
DAGSTER_EVENT_BATCH_SIZE > 0, and its PostgreSQL storage writes such a batch at once; the SQLite one
loops. This class writes them at once too, with the same rows: every event is stored, in order, in
the run's shard and in the index with its tags, and the asset's entry is updated from the newest event
of each asset (what writing them one by one leaves there too).

Configured in the instance's dagster.yaml (the demo writes it, see `sqlite_instance_settings`):

    event_log_storage:
      module: energy_assets.resources.sqlite_event_log
      class: BatchingSqliteEventLogStorage
      config:
        base_dir: <DAGSTER_HOME>/history/runs

and takes effect in processes with DAGSTER_EVENT_BATCH_SIZE set (for example 1000).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from dagster._core.events import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

# Events whose whole storage is a row in the run's shard and the index, tags and the asset's entry:
# asset checks and run status changes write more, so they keep Dagster's own path.
_BATCHED = {
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_OBSERVATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}


class BatchingSqliteEventLogStorage(SqliteEventLogStorage):
    """SqliteEventLogStorage whose `store_event_batch` writes a run of asset events in one transaction per shard."""

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> BatchingSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Store the events in order: consecutive asset events of one run together, any other event alone."""
        pending: list[EventLogEntry] = []
        for event in events:
            if pending and (not _batchable(event) or event.run_id != pending[-1].run_id):
                self._store_asset_events(pending)
                pending = []
            if _batchable(event):
                pending.append(event)
            else:
                self.store_event(event)
        self._store_asset_events(pending)

    def _store_asset_events(self, events: list[EventLogEntry]) -> None:
        if len(events) <= 1:
            for event in events:
                self.store_event(event)
            return
        rows = [self._event_to_row(event) for event in events]
        with self.run_connection(events[0].run_id) as conn:
            conn.execute(SqlEventLogStorageTable.insert(), rows)
        # The index keeps its own ids; tags and the asset's entry point at them.
        with self.index_transaction() as conn:
            # SQLAlchemy's insertmanyvalues returns the ids in the order of `rows` when asked to sort.
            inserted = conn.execute(
                SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True),
                rows,
            )
            event_ids = [row[0] for row in inserted.fetchall()]
            self._store_asset_event_tags(conn, events, event_ids)
            newest = {event.get_dagster_event().asset_key: (event, event_id) for event, event_id in zip(events, event_ids)}
            for event, event_id in newest.values():
                self._store_asset_event(conn, event, event_id)


def _batchable(event: EventLogEntry) -> bool:
    return (
        event.is_dagster_event
        and event.get_dagster_event().event_type in _BATCHED
        and event.get_dagster_event().asset_key is not None
    )


def sqlite_instance_settings(dagster_home: Path) -> str:
    """The dagster.yaml lines giving the SQLite instance at `dagster_home` this event log (Dagster's
    default place for it, so an instance created without them reads the same files)."""
    return (
        "event_log_storage:\n"
        f"  module: {__name__}\n"
        f"  class: {BatchingSqliteEventLogStorage.__name__}\n"
        "  config:\n"
        f"    base_dir: {json.dumps(str(Path(dagster_home).resolve() / 'history' / 'runs'))}\n"
    )
