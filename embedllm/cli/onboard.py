"""`embedllm onboard NAME`: place a registered model in the trained run from a few evaluated questions."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse


def print_result(result) -> None:
    """Print the per-benchmark forecast with its interval, then what the onboarding cost and saved."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{result.model}: forecast accuracy per benchmark (run {result.run_id}, 90 % interval)",
        title_justify="left",
    )
    for col in ("benchmark", "forecast", "interval", "answered", "observed", "questions"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    for r in result.forecasts.iter_rows(named=True):
        observed = "-" if r["observed_accuracy"] is None else f"{r['observed_accuracy']:.3f}"
        table.add_row(
            r["benchmark"],
            f"{r['predicted_accuracy']:.3f}",
            f"{r['predicted_low']:.3f} - {r['predicted_high']:.3f}",
            str(r["n_observed"]),
            observed,
            str(r["n_benchmark_questions"]),
        )
    console = Console(highlight=False)
    console.print(table)
    console.print(result.summary())
    timing = f"fit {result.fit_seconds:.1f} s"
    if result.eval_seconds is not None:
        timing = f"lm-eval on the chosen questions {result.eval_seconds:.0f} s, " + timing
    console.print(timing + "; forecasts written with source 'onboarded' (the next training run replaces them)")
    if result.missing:
        console.print(f"[yellow]{len(result.missing)} chosen question(s) got no label and were left out[/]")


@app.command()
def onboard(
    name: Annotated[str, typer.Argument(help="a registered model (see `embedllm models list`)")],
    questions: Annotated[
        int, typer.Option("--questions", "-n", help="how many questions to evaluate it on")
    ] = 128,
    run: Annotated[
        Optional[str],
        typer.Option("--run", help="training run to place it in (default: the latest)", show_default=False),
    ] = None,
    suite: Annotated[
        str, typer.Option("--suite", "-s", help="suite whose tasks the questions come from")
    ] = "demo",
    seed: Annotated[int, typer.Option("--seed", help="seed of the bootstrap and tie-breaking")] = 0,
    device: Annotated[
        Optional[str],
        typer.Option(
            "--device",
            help="torch device for lm-eval (default: $EMBEDLLM_DEVICE, else cuda/mps/cpu)",
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bar or lm-eval logging")] = False,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Onboard a new model without retraining: evaluate it on a few chosen questions, fit its embedding.

    Chooses the questions that tell most about a new model (spread over every benchmark, where the existing
    models disagree), evaluates NAME on just those with lm-eval, fits its embedding with the run frozen, and
    writes its correctness and benchmark forecasts (source 'onboarded', with a 90 % bootstrap interval). The
    next `embedllm train` after its full evaluation replaces them.

    Examples:

      embedllm onboard gemma-3-270m-it-Q4_K_M

      embedllm onboard ./my-model --questions 64 --run 20250101T120000-1a2b3c
    """
    from tasks.onboard import onboard as run_onboard

    db = resolve_warehouse(warehouse)
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    t0 = time.perf_counter()
    result = run_onboard(
        db, name, questions, run_id=run, suite=suite, seed=seed, device=device, wait=wait, progress=not quiet
    )
    print_result(result)
    typer.echo(f"done in {time.perf_counter() - t0:.0f} s")
