"""One pipeline run per warehouse: an exclusive advisory file lock beside the DuckDB file.

DuckDB already refuses a second writing process, but only while a connection is open; the pipeline keeps its
connections short (one per stage), so two runs could interleave stages. The run lock spans the whole run:
`<warehouse>.lock` (e.g. warehouse/embedllm.duckdb.lock) is held with fcntl.flock for the run and records its
holder (PID, host, command, start time) so the second run can say who it is waiting for. The kernel drops the
lock when the holder dies, so a killed run never leaves a stale lock behind.

The lock is re-entrant within one process (the pipeline flow calls the evaluate and train flows, which take it
too) and is not shared with child processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from embedllm.errors import WarehouseLocked

POLL_SECONDS = 0.5


class RunLocked(WarehouseLocked):
    """Another pipeline run holds the warehouse's run lock."""


@dataclass
class _Held:
    """A lock this process holds: its open file descriptor and how many nested holders use it."""

    fd: int
    depth: int


_held: dict[Path, _Held] = {}
_guard = threading.Lock()


def lock_path(warehouse: str | os.PathLike) -> Path:
    """Return the lock file of a warehouse: the DuckDB file name plus `.lock`, in the same folder."""
    db = Path(warehouse).expanduser().resolve()
    return db.with_name(db.name + ".lock")


def holder_of(path: Path) -> dict:
    """Return what the lock file says about its holder ({} when it is empty or unreadable)."""
    try:
        text = path.read_text().strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def describe_holder(info: dict) -> str:
    """Return a short description of a holder record: `PID 123 on host (embedllm run) since 12:00:01`."""
    if not info:
        return "another process"
    parts = [f"PID {info.get('pid', '?')}"]
    if info.get("host") and info.get("host") != socket.gethostname():
        parts.append(f"on {info['host']}")
    if info.get("command"):
        parts.append(f"({info['command']})")
    if info.get("since"):
        parts.append(f"since {info['since']}")
    return " ".join(parts)


def _try_lock(fd: int) -> bool:
    """Return whether an exclusive non-blocking flock on fd succeeded."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _write_holder(fd: int, what: str) -> None:
    """Record this process as the holder in the lock file."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv and sys.argv[0] else what
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command,
        "what": what,
        "since": datetime.now().isoformat(timespec="seconds"),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)


def _acquire(path: Path, wait: float, what: str) -> int:
    """Open and flock the lock file, polling up to `wait` seconds; return the fd or raise RunLocked."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + max(wait, 0.0)
    while not _try_lock(fd):
        if time.monotonic() >= deadline:
            os.close(fd)
            waited = f" after waiting {wait:g} s" if wait > 0 else ""
            raise RunLocked(
                f"warehouse {path.with_suffix('')} is in use by {describe_holder(holder_of(path))}{waited}; "
                f"wait for that run to finish, pass --wait SECONDS to queue behind it, or use another --warehouse"
            )
        time.sleep(POLL_SECONDS)
    _write_holder(fd, what)
    return fd


@contextlib.contextmanager
def run_lock(warehouse: str | os.PathLike, *, wait: float = 0.0, what: str = "pipeline run") -> Iterator[Path]:
    """Hold the warehouse's run lock for the block (re-entrant in this process); yield the lock file path."""
    path = lock_path(warehouse)
    with _guard:
        held = _held.get(path)
        if held is not None:
            held.depth += 1
    if held is None:
        fd = _acquire(path, wait, what)
        with _guard:
            _held[path] = held = _Held(fd=fd, depth=1)
    try:
        yield path
    finally:
        with _guard:
            held.depth -= 1
            release = held.depth == 0
            if release:
                del _held[path]
        if release:
            os.ftruncate(held.fd, 0)
            fcntl.flock(held.fd, fcntl.LOCK_UN)
            os.close(held.fd)


def is_locked(warehouse: str | os.PathLike) -> bool:
    """Return whether some process (this one included) currently holds the run lock."""
    path = lock_path(warehouse)
    if path in _held:
        return True
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True
    finally:
        os.close(fd)
