"""`embedllm validate`: Great Expectations checks on the warehouse; a one-screen summary, non-zero exit on failure."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WarehouseOpt, app, use_warehouse


def print_result(result) -> None:
    """Print a validation result: one table row per expectation, the failures in detail, the Data Docs path."""
    from rich.console import Console
    from rich.table import Table

    from tasks.validate import format_example

    console = Console(highlight=False)
    style = {"pass": "green", "fail": "red", "error": "magenta"}
    table = Table(title=f"validation run {result.run_id}" + (f" (suite {result.suite})" if result.suite else ""),
                  title_justify="left")
    for col in ("check", "status", "column", "unexpected"):
        table.add_column(col, justify="right" if col == "unexpected" else "left", no_wrap=True)
    for c in result.checks:
        count = "" if c.unexpected_count is None else f"{c.unexpected_count:,}"
        table.add_row(c.check, f"[{style[c.status]}]{c.status.upper()}[/]", c.column, count)
    console.print(table)
    for c in result.failed:
        counts = (f": {c.unexpected_count:,} unexpected of {c.element_count:,} rows"
                  if isinstance(c.unexpected_count, int) and isinstance(c.element_count, int) else "")
        console.print(f"[red]FAILED[/] {c.check}: {c.description}\n"
                      f"    {c.expectation} on {c.frame}.{c.column}{counts}", soft_wrap=True)
        for example in c.examples:
            console.print(f"    - {format_example(example)}", soft_wrap=True)
    for c in result.errors:
        console.print(f"[magenta]ERROR[/] {c.check}: {c.expectation} on {c.frame}.{c.column} could not be computed "
                      f"inside Great Expectations: {c.message}", soft_wrap=True)
    colour = "green" if result.success else "red"
    console.print(f"[{colour}]{result.headline()}[/]")
    if result.data_docs_path:
        console.print(f"Data Docs: {result.data_docs_path}", soft_wrap=True)


@app.command()
def validate(
    suite: Annotated[Optional[str], typer.Option("--suite", "-s", help="Check coverage against this suite's "
                                                 "questions only (a name in embedllm/config/suites/ or a YAML "
                                                 "path); default: every question", show_default=False)] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="YAML merged over embedllm/config/"
                                                   "validation.yaml (thresholds)", show_default=False)] = None,
    no_docs: Annotated[bool, typer.Option("--no-docs", help="Skip writing Great Expectations Data Docs HTML")]
    = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """Check the correctness matrix with Great Expectations before training; exit 1 when a check fails.

    Checks labels (0/1, not null, one per model and question, known questions), questions (prompt, benchmark,
    split), split shares, coverage of the suite by every active model, all-equal labels and accuracy below
    chance. Thresholds: embedllm/config/validation.yaml. Results go to the validation_runs table and to Data
    Docs HTML beside the warehouse.

    Example: embedllm validate --suite demo
    """
    use_warehouse(warehouse)
    import warehouse as wh
    from tasks.validate import validate as run_validation

    with wh.session(wait=10) as con:
        result = run_validation(con, suite=suite, config_path=config, data_docs=not no_docs)
    print_result(result)
    result.raise_for_failure()
