"""`embedllm train`: train EmbedLLM on the warehouse, write forecasts and the probe, print the metrics table."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse

METRIC_ROWS = [  # (label, EmbedLLM key, KNN key)
    ("test accuracy", "test_accuracy", "knn_test_accuracy"),
    ("test AUC", "test_auc", "knn_test_auc"),
    ("test log loss", "test_log_loss", "knn_test_log_loss"),
    ("test ECE (10 bins)", "test_ece", "knn_test_ece"),
    ("routing accuracy", "route_accuracy", "knn_route_accuracy"),
    ("single best model", "single_best_accuracy", "single_best_accuracy"),
    ("oracle", "oracle_accuracy", "oracle_accuracy"),
    ("per-model mean", "model_mean_test_accuracy", None),
]


def _fmt(value) -> str:
    """Return a metric as text (4 decimals, '-' when missing)."""
    return "-" if value is None else f"{value:.4f}"


def print_run(result, forecasts=None) -> None:
    """Print a training run: what it trained on, the test metrics against KNN, forecasts and the probe."""
    from rich.console import Console
    from rich.table import Table

    m, c = result.metrics, result.config
    console = Console(highlight=False)
    if not result.trained:
        console.print(
            f"up to date: run {result.run_id} was trained after the latest load and embedding; nothing "
            "new to learn (--force retrains)",
            soft_wrap=True,
        )
    console.print(
        f"run [bold]{result.run_id}[/]  preset {result.preset}  embedder {result.embedder}  "
        f"{c['n_models']} models x {c['n_questions']} questions  d={m['dim']} (chosen on validation)  "
        f"{m['epochs_run']} epochs  trained in {m['train_seconds']:.1f}s",
        soft_wrap=True,
    )
    table = Table(
        title=f"test split ({m['n_test_questions']} questions, {m['n_test_labels']} labels)", title_justify="left"
    )
    table.add_column("metric")
    table.add_column("EmbedLLM", justify="right")
    table.add_column(f"KNN (k={m.get('knn_k', '-')})", justify="right")
    for label, key, knn_key in METRIC_ROWS:
        table.add_row(label, _fmt(m.get(key)), _fmt(m.get(knn_key)) if knn_key else "")
    console.print(table)
    console.print(f"checkpoint: {result.checkpoint_path}", soft_wrap=True)
    if forecasts is not None:
        print_forecasts(forecasts, console)


def print_forecasts(forecasts, console) -> None:
    """Print what the forecast stage wrote: row counts and the probe table."""
    from rich.table import Table

    if forecasts.skipped:
        console.print(f"forecasts: kept the run's {forecasts.benchmark_forecasts:,} benchmark forecasts")
    else:
        console.print(
            f"forecasts: {forecasts.correctness_forecasts:,} correctness, "
            f"{forecasts.benchmark_forecasts:,} benchmark ({forecasts.seconds:.1f}s)"
        )
        probe = forecasts.probe or {}
        if probe:
            console.print(
                "probe: each benchmark's accuracy predicted from embeddings trained without it "
                "(ridge, leave-one-model-out); baseline = ridge on accuracies on the other benchmarks",
                soft_wrap=True,
            )
            pt = Table()
            for col in ("benchmark", "r", "MAE", "baseline r", "baseline MAE", "models"):
                pt.add_column(col, justify="left" if col == "benchmark" else "right")
            for bench, r in probe.items():
                pt.add_row(
                    bench,
                    _fmt(r.get("pearson_r")),
                    _fmt(r.get("mae")),
                    _fmt(r.get("baseline_pearson_r")),
                    _fmt(r.get("baseline_mae")),
                    str(r["n_models"]) + (f" ({r['skipped']})" if r.get("skipped") else ""),
                )
            console.print(pt)


@app.command()
def train(
    preset: Annotated[
        str,
        typer.Option(
            "--preset",
            "-p",
            help="Training preset from embedllm/config/presets.yaml: "
            "default (fast, tuned on validation, with the question's benchmark as input), text-only (the same "
            "without the benchmark) or paper (the paper's exact recipe)",
        ),
    ] = "default",
    device: Annotated[
        Optional[str],
        typer.Option(
            "--device",
            help="torch device, e.g. cpu or cuda:0 [default: $EMBEDLLM_DEVICE, else CUDA when present, else CPU]",
            show_default=False,
        ),
    ] = None,
    embedder: Annotated[
        Optional[str],
        typer.Option(
            "--embedder",
            "-e",
            help="Question embedder to train on [default: the one covering most labelled questions]",
            show_default=False,
        ),
    ] = None,
    skip_validation: Annotated[
        bool,
        typer.Option(
            "--skip-validation",
            help="Train even if the latest validation "
            "run failed or is older than the latest load (not recommended)",
        ),
    ] = False,
    no_probe: Annotated[
        bool,
        typer.Option(
            "--no-probe", help="Skip the leave-one-benchmark-out probe (one quick training per benchmark)"
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Train even when the latest run of this preset and embedder "
            "is newer than the latest load and embedding (nothing new to learn)",
        ),
    ] = False,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Train EmbedLLM on the warehouse's labels; write the run, model embeddings, forecasts and the probe.

    The embedding dimension, early stopping and KNN's k are chosen on the validation split; the test split is
    scored once at the end. Refuses to train unless the latest `embedllm validate` passed after the latest load.
    Like `embedllm run`, it keeps the latest run when nothing was loaded or embedded since (--force retrains)
    and then writes the run's forecasts if it lacks them.

    Example: embedllm train --preset default
    """
    db = resolve_warehouse(warehouse)
    import logging

    from embedllm.locking import run_lock
    from tasks.forecast import forecast
    from tasks.train import train as train_stage

    if skip_validation:
        typer.secho(
            "warning: --skip-validation: training on labels that did not pass `embedllm validate`",
            fg="yellow",
            err=True,
        )
    logging.getLogger("tasks.train").setLevel(logging.ERROR)  # the warning above already said it
    with run_lock(db, wait=wait, what="embedllm train"):  # train then forecast, as the train flow does
        result = train_stage(
            db,
            preset=preset,
            device=device,
            embedder=embedder,
            require_validation=not skip_validation,
            force=force,
            progress=True,
        )
        forecasts = forecast(db, result.run_id, refresh=result.trained, probe=not no_probe, device=device)
    print_run(result, forecasts)
