"""`embedllm run`: the whole pipeline (Prefect flow `pipeline`) on the embedded defaults, then where to look.

With no PREFECT_API_URL set, Prefect runs in ephemeral mode: it starts its own temporary API process backed by
SQLite in PREFECT_HOME (default ~/.prefect/prefect.db), so no server is started by hand, and a later
`prefect server start` shows these runs and their artifacts in the UI. With PREFECT_API_URL set, runs go to
that server.
"""

from __future__ import annotations

import os
import shlex
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm import settings
from embedllm.cli.app import WarehouseOpt, app, use_warehouse

DEMO_SUITE = "demo"
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false"}


EPHEMERAL_START_TIMEOUT = 120  # seconds; Prefect's default (20 s) is too short on a busy 2-core machine


def start_prefect_early() -> threading.Thread | None:
    """Start Prefect's ephemeral API in a background thread while the pipeline imports; None if a server is set."""
    from prefect.settings import get_current_settings

    current = get_current_settings()
    if current.api.url or not current.server.ephemeral.enabled:
        return None
    try:
        from prefect.server.api.server import SubprocessASGIServer
    except ImportError:  # a Prefect without this class: the flow starts its ephemeral API itself, as usual
        return None
    server = SubprocessASGIServer()  # the process-wide instance the flow's client will find already running
    thread = threading.Thread(target=server.start, kwargs={"timeout": EPHEMERAL_START_TIMEOUT},
                              name="prefect-ephemeral-start", daemon=True)
    thread.start()
    return thread


def prefect_target() -> str:
    """Return where this run's Prefect state goes: the API URL, or the ephemeral SQLite file."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    url = PREFECT_API_URL.value()
    return url if url else f"ephemeral API, SQLite in {Path(PREFECT_HOME.value()) / 'prefect.db'}"


def example_commands(warehouse_flag: str) -> list[str]:
    """Return a few commands to try on the warehouse the run filled (with --warehouse when not the default)."""
    return [
        f'embedllm sql{warehouse_flag} "SELECT * FROM leaderboard"',
        f'embedllm sql{warehouse_flag} "SELECT model, benchmark, predicted_accuracy, observed_accuracy '
        'FROM latest_benchmark_forecasts"',
        f"embedllm route{warehouse_flag} \"What is 12 times 11?\"",
        f"embedllm status{warehouse_flag}",
        f"embedllm report{warehouse_flag}",
    ]


@app.command()
def run(
    suite: Annotated[Optional[str], typer.Option(help="Benchmark suite: a name in embedllm/config/suites/ or a "
                                                      "YAML path [default: demo]", show_default=False)] = None,
    model: Annotated[Optional[list[str]], typer.Option("--model", "-m", help="Evaluate only this registered "
                                                       "model (repeatable) [default: every active model]",
                                                       show_default=False)] = None,
    limit: Annotated[Optional[int], typer.Option(help="Evaluate at most N documents per task (quick look)",
                                                 min=1)] = None,
    dask: Annotated[bool, typer.Option("--dask", help="Evaluate models in parallel on a local Dask cluster "
                                                      "(prefect-dask)")] = False,
    dask_workers: Annotated[int, typer.Option(help="Dask worker processes with --dask", min=1)] = 2,
    dask_address: Annotated[Optional[str], typer.Option(help="Evaluate on an existing Dask cluster instead "
                                                             "(tcp://scheduler:8786; workers need the code, the "
                                                             "models and the staging folder)",
                                                        show_default=False)] = None,
    preset: Annotated[str, typer.Option(help="Training preset (embedllm/config/presets.yaml): default or paper")
                      ] = "default",
    embedder: Annotated[Optional[str], typer.Option(help="Question embedder: name or local path [default: "
                                                         "all-MiniLM-L6-v2, packaged]", show_default=False)] = None,
    device: Annotated[Optional[str], typer.Option(help="torch device for embedding and training [default: cuda "
                                                       "if present, else cpu]", show_default=False)] = None,
    skip_eval: Annotated[bool, typer.Option("--skip-eval", help="Skip evaluation: validate, embed and train on "
                                                                "what the warehouse holds (e.g. an import)")] = False,
    force: Annotated[bool, typer.Option("--force", help="Validate and retrain even when nothing is new")] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for another run on this warehouse to finish "
                                             "before giving up", min=0)] = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run the whole pipeline: evaluate -> load -> validate -> embed -> train -> forecast.

    Runs the Prefect flow `pipeline` (ephemeral mode, no server needed) offline on the demo suite and models.

    Ends by printing where the warehouse is and queries to try. A rerun with nothing new evaluates nothing.

    Example: embedllm run            (the demo; ~minutes on a laptop CPU)

    Example: embedllm run --limit 5 --dask --warehouse /tmp/demo.duckdb
    """
    use_warehouse(warehouse)
    t0 = time.perf_counter()
    resolved_suite = suite or (None if skip_eval else DEMO_SUITE)
    is_demo = resolved_suite in (DEMO_SUITE, None)
    if is_demo:
        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
    prefect_thread = start_prefect_early()

    from flows.pipeline import pipeline
    from tasks.embed import DEMO_EMBEDDER

    if prefect_thread is not None:
        prefect_thread.join()
    result = pipeline(suite=resolved_suite, models=model or None, limit=limit,
                      embedder=embedder or (DEMO_EMBEDDER if is_demo else None), preset=preset, device=device,
                      dask=dask, dask_workers=dask_workers, dask_address=dask_address, skip_eval=skip_eval,
                      register_demo=is_demo and not model and not skip_eval, force=force, lock_wait=wait)
    print_summary(result, time.perf_counter() - t0, warehouse is not None)


def print_summary(result, seconds: float, explicit_warehouse: bool) -> None:
    """Print the stages, the warehouse path, where Prefect recorded the run, and commands to try."""
    typer.echo("")
    for stage in result.stages:
        added = ", ".join(f"+{n} {t}" for t, n in stage["rows"].items() if n) or "no new rows"
        skipped = " (skipped: up to date)" if stage["skipped"] else ""
        typer.echo(f"  {stage['stage']:<9} {stage['seconds']:7.1f} s  {added}{skipped}")
    typer.echo(f"\nDone in {seconds:.1f} s. Training run: {result.training_run}")
    typer.echo(f"Warehouse: {result.warehouse}")
    typer.echo(f"Prefect:   {prefect_target()}")
    flag = f" -w {shlex.quote(result.warehouse)}" if explicit_warehouse or \
        Path(result.warehouse) != settings.DEFAULT_WAREHOUSE else ""
    typer.echo("\nTry:")
    for cmd in example_commands(flag):
        typer.echo(f"  {cmd}")
