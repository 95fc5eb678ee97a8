"""`embedllm evaluate`: run lm-eval for registered models that lack results for a suite, and load the labels."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse


def _print_plan(jobs: list) -> None:
    """Print what an evaluation would run, one line per model."""
    if not jobs:
        typer.echo("nothing to evaluate: every active model has results for every task of the suite")
    for j in jobs:
        typer.echo(f"{j.model}: {', '.join(t.task for t in j.tasks)}")


def _print_outcomes(outcomes: list, seconds: float) -> None:
    """Print a table of (model, task) results."""
    from rich.console import Console
    from rich.table import Table

    from tasks.evaluate import summarize

    rows = summarize(outcomes)
    table = Table(title=f"evaluated {len(outcomes)} model(s) in {seconds:.0f} s", title_justify="left")
    for c in ("model", "task", "status", "samples", "seconds"):
        table.add_column(c, overflow="fold", justify="right" if c in ("samples", "seconds") else "left")
    for r in rows:
        colour = "green" if r["status"] == "success" else "red"
        table.add_row(
            r["model"], r["task"], f"[{colour}]{r['status']}[/]", str(r["samples"]), f"{r['seconds']:.1f}"
        )
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


@app.command()
def evaluate(
    suite: Annotated[
        str,
        typer.Option(
            "--suite", "-s", help="suite name (embedllm/config/suites/NAME.yaml) or path of a suite YAML"
        ),
    ] = "demo",
    model: Annotated[
        Optional[list[str]],
        typer.Option(
            "--model",
            "-m",
            help="registered model to evaluate; repeatable (default: every active model)",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        Optional[int],
        typer.Option(
            "--limit",
            "-n",
            help="evaluate only the first N documents of each task (quick runs)",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        Optional[str],
        typer.Option(
            "--device",
            help="torch device for hf models (default: $EMBEDLLM_DEVICE, else cuda/mps/cpu)",
            show_default=False,
        ),
    ] = None,
    plan: Annotated[bool, typer.Option("--plan", help="only print which models and tasks would run")] = False,
    quiet: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="only errors and the result table (lm-eval's own request bars still show)"
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Evaluate every active model lacking results for the suite (current task versions and model revisions).

    Results go to staging Parquet; the one loader commits them after checking labels against lm-eval's aggregate.

    A failing model is recorded in eval_runs and the others go on; a rerun evaluates only what is missing.

    Exit code 1 when any (model, task) failed.

    Examples:

      embedllm evaluate

      embedllm evaluate --model SmolLM2-135M-Instruct-Q4_1 --limit 20

      embedllm evaluate --suite paper --model HuggingFaceTB/SmolLM2-135M-Instruct

      embedllm evaluate --plan
    """
    from tasks.evaluate import evaluate as run
    from tasks.evaluate import plan_evaluations

    db = resolve_warehouse(warehouse)
    if quiet:
        os.environ["TQDM_DISABLE"] = "1"  # lm-eval's and transformers' bars too
        for name in ("lm_eval", "transformers", "datasets", "tasks"):
            logging.getLogger(name).setLevel(logging.ERROR)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    t0 = time.perf_counter()
    if plan:
        _print_plan(plan_evaluations(db, suite, model, limit, device=device))
        return
    outcomes = run(db, suite, models=model, limit=limit, device=device, wait=wait, progress=not quiet).outcomes
    if not outcomes:
        typer.echo("nothing to evaluate: every active model has results for every task of the suite")
        return
    _print_outcomes(outcomes, time.perf_counter() - t0)
    failed: dict[tuple[str, str], list[str]] = {}
    for o in outcomes:
        for t in o.failed:
            failed.setdefault((o.job.model, t.error or "failed"), []).append(t.task)
    for (name, error), tasks in failed.items():
        which = tasks[0] if len(tasks) == 1 else f"{len(tasks)} tasks"
        typer.secho(f"error: {name} ({which}): {error}", fg="red", err=True)
    if failed:
        raise typer.Exit(1)
