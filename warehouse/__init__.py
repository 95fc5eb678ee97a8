"""The one module that talks to DuckDB: connect, migrate, load frames, run named queries.

The default database file lives beside this module (warehouse/embedllm.duckdb, git-ignored); callers pass the
path explicitly (the CLI and the flows resolve it from --warehouse / EMBEDLLM_WAREHOUSE). DuckDB allows one
writing process per file: parallel work writes staging Parquet and one loader commits it here in a transaction.
The SQL this module runs lives in the top-level sql/ folder, shipped with the package (schema, views, queries).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from embedllm.errors import WarehouseError, WarehouseLocked

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SQL_DIR = Path(__file__).resolve().parent.parent / "sql"  # the checkout's sql/, or the installed `sql` package


def _lock_message(path: Path, exc: Exception) -> str:
    """Return the one-line message for a file held by another process."""
    holder = re.search(r"held in (.+?) \(PID (\d+)\)", str(exc))
    who = f" by PID {holder.group(2)} ({holder.group(1)})" if holder else ""
    return (
        f"warehouse {path} is locked{who}: another embedllm command or pipeline run is using it; "
        "wait for it to finish or point --warehouse / EMBEDLLM_WAREHOUSE at another file"
    )


def connect(
    path: str | Path, *, read_only: bool = False, migrate_schema: bool = True, wait: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """Return a connection to the warehouse, migrated unless read-only; retry a held lock for `wait` seconds."""
    db = Path(path)
    if read_only and not db.exists():
        raise WarehouseError(
            f"no warehouse at {db}: run `embedllm run` or an `embedllm import` first, "
            "or point --warehouse at an existing file"
        )
    if not read_only:
        db.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        try:
            con = duckdb.connect(str(db), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise WarehouseError(f"cannot open warehouse {db}: {exc}") from exc
            if time.monotonic() >= deadline:
                raise WarehouseLocked(_lock_message(db, exc)) from exc
            time.sleep(0.5)
    if not read_only and migrate_schema:
        migrate(con)
    return con


@contextlib.contextmanager
def session(
    path: str | Path, *, read_only: bool = False, wait: float = 0.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Yield a short-lived connection and close it, so the file lock is held no longer than needed."""
    con = connect(path, read_only=read_only, wait=wait)
    try:
        yield con
    finally:
        con.close()


READ_STATEMENTS = ("SELECT", "EXPLAIN")  # DESCRIBE, SHOW, SUMMARIZE, FROM ... and WITH ... parse as SELECT
LOCKED_DOWN = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}


def read_only_statement(text: str) -> str:
    """Return TEXT if DuckDB's parser finds exactly one read-only statement in it; WarehouseError otherwise."""
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise WarehouseError(f"sql: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise WarehouseError(f"sql: give exactly one statement, not {len(statements)} (no `;`-separated lists)")
    kind = statements[0].type.name
    if kind not in READ_STATEMENTS:
        raise WarehouseError(
            f"sql: {kind} statements are not allowed: `embedllm sql` is read-only (SELECT, "
            "DESCRIBE, SHOW, EXPLAIN); write through the embedllm commands"
        )
    return text


def connect_for_queries(path: str | Path, *, allow_files: bool = False) -> duckdb.DuckDBPyConnection:
    """Return a read-only connection with extensions, configuration changes and (unless allowed) files locked."""
    db = Path(path)
    if not db.exists():
        raise WarehouseError(
            f"no warehouse at {db}: run `embedllm run` or an `embedllm import` first, "
            "or point --warehouse at an existing file"
        )
    config = {**LOCKED_DOWN, "enable_external_access": allow_files}
    try:
        return duckdb.connect(str(db), read_only=True, config=config)
    except duckdb.IOException as exc:
        raise (
            WarehouseLocked(_lock_message(db, exc))
            if "lock" in str(exc).lower()
            else WarehouseError(f"cannot open warehouse {db}: {_first_line(exc)}")
        ) from exc


def _first_line(exc: BaseException, limit: int = 300) -> str:
    """Return the first line of an exception's message, capped (quoted input can be long)."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= limit else line[:limit] + "..."


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: commit on success, roll back everything on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


# ---------------------------------------------------------------------------------------------------- schema


def _sql_files(kind: str) -> list[Path]:
    """Return the .sql files of sql/<kind>/ in name order."""
    return sorted((SQL_DIR / kind).glob("*.sql"))


def migrate(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply the numbered schema files not yet recorded in _migrations, then (re)create all views; return new names."""
    con.execute("""CREATE TABLE IF NOT EXISTS _migrations (
        name VARCHAR PRIMARY KEY, checksum VARCHAR NOT NULL, applied_at TIMESTAMP DEFAULT current_timestamp)""")
    done = {r[0] for r in con.execute("SELECT name FROM _migrations").fetchall()}
    applied = []
    for f in _sql_files("schema"):
        if f.stem in done:
            continue
        text = f.read_text()
        with transaction(con):
            con.execute(text)
            con.execute(
                "INSERT INTO _migrations (name, checksum) VALUES (?, ?)",
                [f.stem, hashlib.sha256(text.encode()).hexdigest()[:16]],
            )
        applied.append(f.stem)
    _create_views(con)
    return applied


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)create every view in sql/views/; a view that reads another is retried after it."""
    pending = _sql_files("views")
    while pending:
        failed = []
        for f in pending:
            try:
                con.execute(f.read_text())
            except duckdb.CatalogException:
                failed.append(f)
        if len(failed) == len(pending):
            con.execute(failed[0].read_text())  # raise the real error
        pending = failed


# ----------------------------------------------------------------------------------------------- statements


def sql_text(name: str) -> str:
    """Return the text of the named query sql/queries/<name>.sql."""
    f = SQL_DIR / "queries" / f"{name}.sql"
    if not f.exists():
        raise WarehouseError(f"no named query {name!r} in {f.parent}")
    return f.read_text()


def query(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | list | None = None) -> pl.DataFrame:
    """Run the named query with bound parameters and return a polars frame."""
    return pl.from_arrow(con.sql(sql_text(name), params=params or None).to_arrow_table())


def execute(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any] | list | None = None) -> None:
    """Run the named statement with bound parameters."""
    con.execute(sql_text(name), params or [])


def quote(identifier: str) -> str:
    """Return a safely quoted identifier (table or column name)."""
    if not _IDENT.match(identifier):
        raise WarehouseError(f"invalid identifier {identifier!r}")
    return f'"{identifier}"'


def upsert(con: duckdb.DuckDBPyConnection, table: str, frame: pl.DataFrame, *, replace: bool = True) -> int:
    """Insert a frame's rows into TABLE by column name (OR REPLACE on the primary key, or OR IGNORE); return rows."""
    if frame.height == 0:
        return 0
    cols = ", ".join(quote(c) for c in frame.columns)
    verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
    con.register("_upsert_frame", frame.to_arrow())
    try:
        con.execute(f"{verb} INTO {quote(table)} ({cols}) SELECT {cols} FROM _upsert_frame")
    finally:
        con.unregister("_upsert_frame")
    return frame.height


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Return whether a table or view of that name exists in the main schema."""
    n = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0]
    return n > 0
