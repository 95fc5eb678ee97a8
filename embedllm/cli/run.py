"""`embedllm run`: the whole pipeline (Prefect flow `pipeline`) on the embedded defaults, then where to look.

With no PREFECT_API_URL set, Prefect runs in ephemeral mode: a temporary API process backed by SQLite in
PREFECT_HOME (default ~/.prefect/prefect.db), so no server is started by hand, and a later `prefect server
start` shows these runs and their artifacts in the UI. With PREFECT_API_URL set (environment or profile), runs
go to that server.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm import settings
from embedllm.cli.app import WarehouseOpt, app, resolve_warehouse
from embedllm.policy import DEFAULT_FULL_EVALUATION, DEFAULT_ONBOARD_QUESTIONS, make_policy

DEMO_SUITE = "demo"
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


EPHEMERAL_START_TIMEOUT = 120.0  # seconds; Prefect's default (20 s) is too short on a busy 2-core machine


@dataclass
class EphemeralAPI:
    """Prefect's ephemeral API server process, started before this process imports Prefect.

    Prefect 3.8 starts the same process (uvicorn over prefect.server.api.server:create_app with the ephemeral
    flags, SQLite in PREFECT_HOME) when a flow runs without PREFECT_API_URL, but only after importing the whole
    server module into the client process first. Starting it here, while the pipeline modules import, saves
    several seconds of a run. Anything unexpected falls back to Prefect starting its own.
    """

    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        """Return the API URL of the server."""
        return f"http://127.0.0.1:{self.port}/api"

    @classmethod
    def start(cls) -> EphemeralAPI | None:
        """Return the started server process; None when a Prefect API is configured or ephemeral mode is off."""
        if api_configured() or os.environ.get("PREFECT_SERVER_EPHEMERAL_ENABLED", "").lower() in ("0", "false"):
            return None
        spec = importlib.util.find_spec("prefect")
        if spec is None or spec.origin is None:
            return None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # offline by design: no failing telemetry lines
            **os.environ,
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(Path(spec.origin).parent.parent),
                "--factory",
                "prefect.server.api.server:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "error",
                "--lifespan",
                "on",
            ],
            env=env,
        )
        api = cls(process, port)
        atexit.register(api.stop)  # registered before Prefect's own exit hooks, so it runs after they flush
        return api

    def ready(self, timeout: float = EPHEMERAL_START_TIMEOUT) -> bool:
        """Return whether the server answered /health within timeout seconds (False if it exited)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Terminate the server process (killed after 5 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def api_configured() -> bool:
    """Return whether a Prefect API URL is set: in settings if Prefect is loaded, else in env or profile."""
    if "prefect.settings" in sys.modules:  # already imported (e.g. under a test harness): ask it, it is free
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    return bool(os.environ.get("PREFECT_API_URL") or profile_api_url())


def profile_api_url() -> str | None:
    """Return PREFECT_API_URL from the active Prefect profile file, read without importing Prefect."""
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    return profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")


@contextlib.contextmanager
def prefect_api(api: EphemeralAPI | None) -> Iterator[str]:
    """Point Prefect at the early-started server for the block when nothing else is configured; yield the target."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        get_current_settings,
        temporary_settings,
    )

    configured = get_current_settings().api.url
    if api is not None and (configured or not api.ready()):
        api.stop()
        api = None
    if configured:
        yield configured
        return
    updates = {PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: EPHEMERAL_START_TIMEOUT}  # if Prefect starts it
    if api is not None:
        os.environ["PREFECT_API_URL"] = api.url  # for processes this run starts (Dask workers)
        updates[PREFECT_API_URL] = api.url
    with temporary_settings(updates=updates):
        yield ephemeral_description(PREFECT_HOME.value())


def ephemeral_description(home: str | Path) -> str:
    """Return where an ephemeral run's Prefect records live."""
    return f"ephemeral API, runs kept in {Path(home) / 'prefect.db'} (`prefect server start` shows them in the UI)"


def example_commands(warehouse_flag: str) -> list[str]:
    """Return a few commands to try on the warehouse the run filled (with --warehouse when not the default)."""
    return [
        f'embedllm sql{warehouse_flag} "SELECT * FROM leaderboard"',
        f'embedllm sql{warehouse_flag} "SELECT model, benchmark, predicted_accuracy, observed_accuracy '
        'FROM latest_benchmark_forecasts"',
        f'embedllm route{warehouse_flag} "What is 12 times 11?"',
        f"embedllm status{warehouse_flag}",
        f"embedllm report{warehouse_flag}",
    ]


@app.command()
def run(
    suite: Annotated[
        str, typer.Option(help="Benchmark suite: a name in embedllm/config/suites/ or a YAML path")
    ] = "demo",
    registry: Annotated[
        str,
        typer.Option(
            help="Registry file synced into the warehouse first (adds, updates, "
            "deactivates models): `demo` (the packaged demo models), a YAML "
            "path, or `none` to use the models registered already"
        ),
    ] = "demo",
    model: Annotated[
        Optional[list[str]],
        typer.Option(
            "--model",
            "-m",
            help="Evaluate only this registered model (repeatable) [default: every active model]",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        Optional[int], typer.Option(help="Evaluate at most N documents per task (quick look)", min=1)
    ] = None,
    onboard_questions: Annotated[
        int,
        typer.Option(
            help="Policy: once a training run exists, a new model is evaluated on this many chosen questions "
            "and placed in the run without retraining (0 = evaluate new models fully); a registry entry's "
            "onboard_questions overrides it",
            min=0,
        ),
    ] = DEFAULT_ONBOARD_QUESTIONS,
    full_evaluation: Annotated[
        str,
        typer.Option(
            help="Policy: what later runs evaluate for an onboarded model: never | nightly (the rest of the "
            "suite) | budget:N (N more questions per run); a registry entry's full_evaluation overrides it",
        ),
    ] = DEFAULT_FULL_EVALUATION,
    dask: Annotated[
        bool, typer.Option("--dask", help="Evaluate models in parallel on a local Dask cluster (prefect-dask)")
    ] = False,
    dask_workers: Annotated[int, typer.Option(help="Dask worker processes with --dask", min=1)] = 2,
    dask_address: Annotated[
        Optional[str],
        typer.Option(
            help="Evaluate on an existing Dask cluster instead "
            "(tcp://scheduler:8786; workers need the code, the "
            "models and the staging folder)",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str, typer.Option(help="Training preset (embedllm/config/presets.yaml): default, text-only or paper")
    ] = "default",
    embedder: Annotated[
        Optional[str],
        typer.Option(
            help="Question embedder: name or local path [default: all-MiniLM-L6-v2, installed by the set-up]",
            show_default=False,
        ),
    ] = None,
    device: Annotated[
        Optional[str],
        typer.Option(
            help="torch device for embedding and training [default: cuda if present, else cpu]", show_default=False
        ),
    ] = None,
    skip_eval: Annotated[
        bool,
        typer.Option(
            "--skip-eval",
            help="Skip evaluation: validate, embed and train on what the warehouse holds (e.g. an import)",
        ),
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Validate and retrain even when nothing is new")] = False,
    wait: Annotated[
        float,
        typer.Option(help="Seconds to wait for another run on this warehouse to finish before giving up", min=0),
    ] = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Run the whole pipeline: evaluate -> load -> validate -> embed -> train -> forecast.

    Runs the Prefect flow `pipeline` (ephemeral mode, no server needed) offline on the demo suite and models.

    Ends by printing where the warehouse is and queries to try. A rerun with nothing new evaluates nothing.

    Example: embedllm run            (the demo: 3 small LLMs x 356 questions, tens of minutes on a 2-core CPU)

    Example: embedllm run --limit 20 --dask --warehouse /tmp/demo.duckdb      (a quicker look)

    Example: embedllm run --registry models.yaml --onboard-questions 64 --full-evaluation budget:32
    """
    db = resolve_warehouse(warehouse)
    make_policy(onboard_questions, full_evaluation, where="embedllm run")  # one line before Prefect starts
    t0 = time.perf_counter()
    if suite == DEMO_SUITE:
        for key, value in OFFLINE_ENV.items():
            os.environ.setdefault(key, value)
    api = EphemeralAPI.start()  # boots while the pipeline modules import

    from flows.pipeline import pipeline

    with prefect_api(api) as target:
        result = pipeline(
            warehouse=str(db),
            registry=None if registry.lower() == "none" else registry,
            suite=suite,
            models=model or None,
            limit=limit,
            embedder=embedder,
            preset=preset,
            device=device,
            dask=dask,
            dask_workers=dask_workers,
            dask_address=dask_address,
            skip_eval=skip_eval,
            force=force,
            lock_wait=wait,
            onboard_questions=onboard_questions,
            full_evaluation=full_evaluation,
        )
    print_summary(result, time.perf_counter() - t0, warehouse is not None, target)


def print_summary(result, seconds: float, explicit_warehouse: bool, prefect: str) -> None:
    """Print the stages, the warehouse path, where Prefect recorded the run, and commands to try."""
    typer.echo("")
    for stage in result.stages:
        added = ", ".join(f"+{n} {t}" for t, n in stage["rows"].items() if n) or "no new rows"
        skipped = " (skipped: up to date)" if stage["skipped"] else ""
        typer.echo(f"  {stage['stage']:<9} {stage['seconds']:7.1f} s  {added}{skipped}")
    typer.echo(f"\nDone in {seconds:.1f} s. Training run: {result.training_run}")
    typer.echo(f"Warehouse: {result.warehouse}")
    typer.echo(f"Prefect:   {prefect}")
    flag = (
        f" -w {shlex.quote(result.warehouse)}"
        if explicit_warehouse or Path(result.warehouse) != settings.default_warehouse()
        else ""
    )
    typer.echo("\nTry:")
    for cmd in example_commands(flag):
        typer.echo(f"  {cmd}")
