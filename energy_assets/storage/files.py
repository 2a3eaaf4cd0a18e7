"""Crash-safe file primitives shared by the embedded local resources."""

from __future__ import annotations

import fcntl
import glob
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
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


def write_concurrently(write: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
    """`write(item)` for every item, `WRITES_IN_FLIGHT` at a time, the results in order. The first error
    raises once the writes in flight have ended; each write must touch files no other item's write does."""
    if len(items) < 2:
        return [write(item) for item in items]
    with ThreadPoolExecutor(WRITES_IN_FLIGHT) as pool:
        return list(pool.map(write, items))


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
