"""The Typer app and the options every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm import settings

app = typer.Typer(
    name="embedllm",
    help="Learn compact embeddings of LLMs from their benchmark answers; route questions, forecast accuracy.\n\n"
    "Quick start: `embedllm run` evaluates the demo models on the demo suite, trains, and fills the "
    "warehouse (warehouse/embedllm.duckdb, or --warehouse / EMBEDLLM_WAREHOUSE).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

WarehouseOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--warehouse",
        "-w",
        help="DuckDB warehouse file (env EMBEDLLM_WAREHOUSE; default warehouse/embedllm.duckdb)",
        show_default=False,
    ),
]


def resolve_warehouse(path: Path | None) -> Path:
    """Return the warehouse this command works on: --warehouse, else $EMBEDLLM_WAREHOUSE, else the default."""
    return settings.resolve_warehouse(path)


WaitOpt = Annotated[
    float,
    typer.Option(
        "--wait",
        help="seconds to queue behind another writer of this warehouse (a pipeline run or "
        "another command) before giving up; 0 refuses at once with one line naming it",
    ),
]


@app.callback()
def _root() -> None:
    """Learn compact embeddings of LLMs; route questions; forecast benchmark accuracy."""
