"""Crash-safe file primitives shared by the embedded local resources."""

from __future__ import annotations

import fcntl
import glob
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
# Files written at once by `write_concurrently`: each write waits on its own fsync, and the disk journals
# concurrent ones together (a year of hourly objects one after another waited on 17,520 fsyncs in turn).
WRITES_IN_FLIGHT = 8


@contextmanager
def exclusive_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `lock_path` (created if absent) across processes."""
    with open(lock_path, "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def fsync_dir(directory: Path) -> None:
    """Make a rename inside `directory` durable across a power loss."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path: Path, write: Callable[[BinaryIO], None], suffix: str = ".tmp") -> None:
    """Write through a hidden temp file beside `path`, fsync it and rename it over `path`.

    Readers see the old file or the new one, never a part. A crash leaves only a hidden temp file,
    named after its writer's process id; the next write of `path` removes those whose writer is gone.
    """
    remove_orphaned_temporaries(path, suffix)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f"{_temporary_prefix(path)}{os.getpid()}.", suffix=suffix)
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_concurrently(write: Callable[[Item], Result], items: Sequence[Item], in_flight: int = WRITES_IN_FLIGHT) -> list[Result]:
    """`write(item)` for every item, `in_flight` at a time, the results in order. Once a write fails no other
    starts, and when those in flight have ended the error of the earliest item that failed raises (every item
    before it was written). Each write must touch files no other item's write does."""
    if len(items) < 2 or in_flight < 2:
        return [write(item) for item in items]
    pool = ThreadPoolExecutor(in_flight, thread_name_prefix="write")
    try:
        futures = [pool.submit(write, item) for item in items]
        wait(futures, return_when=FIRST_EXCEPTION)
    finally:
        pool.shutdown(cancel_futures=True)  # after an error or an interrupt, the writes not started never start
    # Items start in order, so every item before the earliest failure has ended well, and none of them was cancelled.
    return [future.result() for future in futures]


def remove_orphaned_temporaries(path: Path, suffix: str) -> list[Path]:
    """Remove the temp files of `path` whose writing process no longer runs (it crashed); return them.

    A temp file of a live writer is kept: it is about to be renamed over `path`. Process ids are
    those of this machine, so the folder must not be written from several machines at once.
    """
    prefix = _temporary_prefix(path)
    removed = []
    for candidate in path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"):
        writer = candidate.name[len(prefix) :].split(".", 1)[0]
        if writer.isdigit() and not process_runs(int(writer)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _temporary_prefix(path: Path) -> str:
    return f".{path.name}."


def process_runs(pid: int) -> bool:
    """Whether a process with this id runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, under another user
    return True
