"""`embedllm report`: write the static HTML report of a training run and print the path of its index.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WarehouseOpt, app, resolve_warehouse


@app.command()
def report(
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out",
            "-o",
            help="Folder for index.html and the PNG plots (default: reports/<run_id>/ beside the warehouse)",
            show_default=False,
        ),
    ] = None,
    run: Annotated[
        Optional[str],
        typer.Option("--run", help="Training run id (default: the latest completed run)", show_default=False),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Write an HTML report (embedding map, accuracy heatmap, forecasts, calibration, routing, neighbours).

    Prints the path of index.html; open it in any browser (no server or network needed).

    Example: embedllm report --out /tmp/embedllm-report
    """
    db = resolve_warehouse(warehouse)
    from tasks.report import build_report

    typer.echo(str(build_report(db, out_dir=out, run_id=run)))
