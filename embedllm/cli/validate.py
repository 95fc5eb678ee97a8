"""`embedllm validate`: Great Expectations checks on the warehouse; a one-screen summary, non-zero exit on failure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse


def print_result(result) -> None:
    """Print a validation result: one table row per expectation, the failures in detail, the Data Docs path."""
    from rich.console import Console
    from rich.table import Table

    from embedllm.validation import format_example

    console = Console(highlight=False)
    style = {"pass": "green", "fail": "red", "error": "magenta"}
    table = Table(
        title=f"validation run {result.run_id}" + (f" (suite {result.suite})" if result.suite else ""),
        title_justify="left",
    )
    for col in ("check", "status", "column", "unexpected"):
        table.add_column(col, justify="right" if col == "unexpected" else "left", no_wrap=True)
    for c in result.checks:
        count = "" if c.unexpected_count is None else f"{c.unexpected_count:,}"
        table.add_row(c.check, f"[{style[c.status]}]{c.status.upper()}[/]", c.column, count)
    console.print(table)
    for c in result.failed:
        counts = (
            f": {c.unexpected_count:,} unexpected of {c.element_count:,} rows"
            if isinstance(c.unexpected_count, int) and isinstance(c.element_count, int)
            else ""
        )
        console.print(
            f"[red]FAILED[/] {c.check}: {c.description}\n    {c.expectation} on {c.frame}.{c.column}{counts}",
            soft_wrap=True,
        )
        for example in c.examples:
            console.print(f"    - {format_example(example)}", soft_wrap=True)
    for c in result.errors:
        console.print(
            f"[magenta]ERROR[/] {c.check}: {c.expectation} on {c.frame}.{c.column} could not be computed "
            f"inside Great Expectations: {c.message}",
            soft_wrap=True,
        )
    colour = "green" if result.success else "red"
    console.print(f"[{colour}]{result.headline()}[/]")
    if result.data_docs_path:
        console.print(f"Data Docs: {result.data_docs_path}", soft_wrap=True)


@app.command()
def validate(
    suite: Annotated[
        Optional[str],
        typer.Option(
            "--suite",
            "-s",
            help="Check coverage against this suite's "
            "questions only (a name in embedllm/config/suites/ or a YAML "
            "path); default: every question",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option(
            "--config", help="YAML merged over embedllm/config/validation.yaml (thresholds)", show_default=False
        ),
    ] = None,
    no_docs: Annotated[
        bool, typer.Option("--no-docs", help="Skip writing Great Expectations Data Docs HTML")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Validate even when the latest run passed after the "
            "latest load with this suite and config (nothing new to check)",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Check the correctness matrix with Great Expectations before training; exit 1 when a check fails.

    Checks labels (0/1, not null, one per model and question, known questions), questions (prompt, benchmark,
    split), split shares, coverage of the suite by every active model, all-equal labels and accuracy below
    chance. Thresholds: embedllm/config/validation.yaml. Results go to the validation_runs table and to Data
    Docs HTML beside the warehouse. When the latest run passed and nothing was loaded since, it says so and
    stops (as `embedllm run` does); --force validates again.

    Example: embedllm validate --suite demo
    """
    db = resolve_warehouse(warehouse)
    from tasks.validate import validate as validate_stage

    done = validate_stage(db, suite=suite, config_path=config, data_docs=not no_docs, force=force, wait=wait)
    if done.result is None:
        typer.echo(done.headline())
        return
    print_result(done.result)
    done.result.raise_for_failure()
