"""`embedllm sql "SELECT ..."` (read-only ad hoc queries) and `embedllm status` (what the warehouse holds)."""

from __future__ import annotations

import json
from enum import Enum
from typing import Annotated

import typer

from embedllm.cli.app import WarehouseOpt, app, resolve_warehouse
from embedllm.errors import EmbedLLMError

TABLE_MAX_ROWS = 200


class Format(str, Enum):
    """Output formats of `embedllm sql`."""

    table = "table"
    csv = "csv"
    json = "json"


def run_sql(con, text: str):
    """Return the polars frame of one read-only statement; EmbedLLMError with DuckDB's first line on failure."""
    import duckdb
    import polars as pl

    import warehouse as wh

    try:
        rel = con.sql(wh.read_only_statement(text))
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        hint = " (the connection is read-only)" if "read-only" in str(exc).lower() else ""
        if "disabled by configuration" in str(exc):
            hint = " (other files are off limits: pass --allow-files to read them with read_parquet, read_csv ...)"
        raise EmbedLLMError(f"sql: {first}{hint}") from None
    if rel is None:
        return pl.DataFrame()
    return pl.from_arrow(rel.to_arrow_table())


def render(frame, fmt: Format, title: str | None = None, max_rows: int | None = TABLE_MAX_ROWS) -> str:
    """Return FRAME as a text table, CSV or a JSON array of objects."""
    if fmt == Format.csv:
        return frame.write_csv().rstrip("\n")
    if fmt == Format.json:
        return json.dumps(frame.to_dicts(), default=str, ensure_ascii=False, indent=1)
    return _table(frame, title, max_rows)


def _cell(value) -> str:
    """Return one table cell's text."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _table(frame, title: str | None, max_rows: int | None) -> str:
    """Return a plain aligned text table (stable, copy-pastable output)."""
    rows = frame.rows() if max_rows is None else frame.head(max_rows).rows()
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(frame.columns)]
    numeric = [frame.schema[c].is_numeric() for c in frame.columns]

    def line(values):
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [title] if title else []
    out += [line(frame.columns), line(["-" * w for w in widths])] + [line(r) for r in cells]
    if max_rows is not None and frame.height > max_rows:
        out.append(f"... {frame.height - max_rows} more rows (use --format csv or json for all)")
    out.append(f"({frame.height} row{'s' if frame.height != 1 else ''})")
    return "\n".join(out)


@app.command("sql")
def sql(
    statement: Annotated[
        str,
        typer.Argument(
            help="one SQL statement (DuckDB dialect); tables: models, questions, "
            "correctness, loads, ... and the leaderboard view",
            show_default=False,
        ),
    ],
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
    allow_files: Annotated[
        bool,
        typer.Option(
            "--allow-files",
            help="let the query read other files (read_parquet, read_csv, glob); writing stays impossible",
        ),
    ] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run one read-only statement (SELECT, DESCRIBE, SHOW, EXPLAIN) on a locked-down connection.

    The connection cannot write, attach other databases, install or load extensions, change settings or, without
    --allow-files, touch any file but the warehouse.

    Example: embedllm sql "SELECT * FROM leaderboard WHERE benchmark = 'gsm8k'" --format csv

    Example: embedllm sql "SELECT count(*) FROM read_parquet('staging/*.parquet')" --allow-files
    """
    import warehouse as wh

    con = wh.connect_for_queries(resolve_warehouse(warehouse), allow_files=allow_files)
    try:
        frame = run_sql(con, statement)
    finally:
        con.close()
    typer.echo(render(frame, fmt))


def status_sections(con) -> list[tuple[str, object]]:
    """Return (title, frame) pairs describing the warehouse; sections of other stages only if their tables exist."""
    import warehouse as wh

    sections = [
        ("models", wh.query(con, "status_models")),
        ("correctness labels", wh.query(con, "status_labels")),
        ("questions by benchmark and split", wh.query(con, "status_questions")),
        ("last loads", wh.query(con, "status_last_loads", [5])),
    ]
    for table, name, title in (
        ("question_embeddings", "status_embeddings", "question embeddings"),
        ("eval_runs", "status_eval_runs", "evaluation runs"),
        ("validation_runs", "status_validation_runs", "latest validation"),
        ("training_runs", "status_training_runs", "latest training runs"),
    ):
        if wh.table_exists(con, table):
            sections.append((title, wh.query(con, name)))
    return sections


@app.command("status")
def status(
    fmt: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
    warehouse: WarehouseOpt = None,
) -> None:
    """Show what the warehouse holds: models, questions by benchmark and split, labels, last loads and runs.

    Example: embedllm status --warehouse /tmp/test.duckdb
    """
    import warehouse as wh

    db = resolve_warehouse(warehouse)
    with wh.session(db, read_only=True) as con:
        sections = status_sections(con)
    if fmt == Format.json:
        typer.echo(
            json.dumps({"warehouse": str(db), **{t: f.to_dicts() for t, f in sections}}, default=str, indent=1)
        )
        return
    if fmt == Format.csv:
        for title, frame in sections:
            typer.echo(f"# {title}\n{render(frame, Format.csv)}\n")
        return
    typer.echo(f"warehouse {db}\n")
    for title, frame in sections:
        typer.echo(render(frame, Format.table, title=f"== {title}", max_rows=None) + "\n")
