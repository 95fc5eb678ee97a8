"""`embedllm serve`: the warm routing service (HTTP) with its OpenAI-compatible proxy."""

from __future__ import annotations

import os
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WarehouseOpt, app, resolve_warehouse
from embedllm.errors import ConfigError


@app.command()
def serve(
    host: Annotated[
        str, typer.Option(help="Interface to bind (0.0.0.0 exposes it beyond this machine)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8400,
    run: Annotated[
        Optional[str],
        typer.Option(
            "--run",
            help="Serve this training run [default: the latest completed one, followed]",
            show_default=False,
        ),
    ] = None,
    api_key_env: Annotated[
        Optional[str],
        typer.Option(
            "--api-key-env",
            help="Environment variable holding the key every request must send as `Authorization: Bearer KEY`",
            show_default=False,
        ),
    ] = None,
    reload_interval: Annotated[
        float, typer.Option("--reload-interval", min=0.0, help="Seconds between checks for a newer run (0: never)")
    ] = 5.0,
    max_prompt_chars: Annotated[
        int, typer.Option("--max-prompt-chars", min=1, help="Longest prompt accepted")
    ] = 32_000,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level")] = "info",
    warehouse: WarehouseOpt = None,
) -> None:
    """Serve routing over HTTP: POST /route, GET /models /health /metrics, and /v1/chat/completions and
    /v1/completions with `model: "router"` (forwarded to the chosen model's endpoint).

    The latest completed training run (or --run), its checkpoint, costs and embedder are loaded once and kept
    warm; a newer run, an onboarding or a registry change is swapped in without a failed request.

    Examples: embedllm serve
              EMBEDLLM_KEY=s3cret embedllm serve --port 8400 --api-key-env EMBEDLLM_KEY
              curl -s localhost:8400/route -H 'content-type: application/json' -d '{"prompt": "What is 12 times 11?"}'
    """
    import uvicorn

    from embedllm.service.app import create_app
    from embedllm.service.state import Limits, ServiceState

    db = resolve_warehouse(warehouse)
    if not db.exists():
        raise ConfigError(f"{db}: no such warehouse: run `embedllm run` (or give --warehouse PATH)")
    api_key = None
    if api_key_env is not None:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ConfigError(
                f"--api-key-env {api_key_env}: ${api_key_env} is not set: export {api_key_env}=KEY first"
            )
    state = ServiceState(
        db, run_id=run, reload_interval=reload_interval, limits=Limits(max_prompt_chars=max_prompt_chars)
    )
    loaded = state.refresh()
    if run is not None and not loaded:
        raise ConfigError(
            f"--run {run}: no such training run in {db}: `embedllm sql 'select * from training_runs'` lists them"
        )
    if not loaded:
        typer.secho(
            f"no completed training run in {db} yet: answering 409 until `embedllm train` lands one", err=True
        )
    else:
        typer.echo(
            f"serving run {state.served.router.run_id} on http://{host}:{port} (POST /route, /v1/chat/completions)"
        )
    uvicorn.run(create_app(state, api_key), host=host, port=port, log_level=log_level)
