"""One helper per idea, used everywhere: did-you-mean, clocks and run ids, JSON cleaning, the code version."""

from __future__ import annotations

import difflib
import functools
import json
import math
import subprocess
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def did_you_mean(name: str, choices: Iterable[str], *, substring: bool = True) -> str:
    """Return ' (did you mean 'X'?)' for the closest choice (or one containing NAME), or ''."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    if not close and substring and name:  # a short name for a long one: 'smollm2' -> 'SmolLM2-135M-Instruct-Q4_1'
        close = [c for c in choices if name.lower() in c.lower()][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def utc_now() -> datetime:
    """Return the current UTC time as a naive datetime (how the warehouse stores TIMESTAMP columns)."""
    return datetime.now(UTC).replace(tzinfo=None)


def new_run_id(now: datetime | None = None) -> str:
    """Return a sortable, unique run id like 20250101T120000-1a2b3c."""
    return f"{now or utc_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def jsonable(value: Any) -> Any:
    """Return VALUE as plain JSON data: numpy scalars unwrapped, NaN/inf as None, tuples as lists, else str."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (ValueError, AttributeError, TypeError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def dumps(value: Any) -> str:
    """Return VALUE as JSON text, cleaned by `jsonable` (NaN and inf become null)."""
    return json.dumps(jsonable(value))


@functools.cache
def code_version() -> str:
    """Return the package version plus the git commit when run from a checkout (computed once per process)."""
    from embedllm import __version__

    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{__version__}+{sha}" if sha else __version__
