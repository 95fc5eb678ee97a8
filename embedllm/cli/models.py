"""`embedllm models add|list|remove|sync|demo`: the model registry the evaluate stage reads."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse

models_app = typer.Typer(
    name="models",
    no_args_is_help=True,
    help="Register the LLMs to evaluate (Hugging Face repo ids or local paths, GGUF files included).\n\n"
    "Examples:\n\n"
    "  embedllm models add HuggingFaceTB/SmolLM2-135M-Instruct --tag small\n\n"
    "  embedllm models add ./my-model --gguf-file model.Q4_K_M.gguf --cost-per-mtok 0.2\n\n"
    "  embedllm models add my-api-model --base-url http://127.0.0.1:8000/v1 --api-key-env MY_KEY\n\n"
    "  embedllm models sync models.yaml\n\n"
    "  embedllm models list\n\n"
    "  embedllm models remove ./my-model",
)
app.add_typer(models_app)


def _entry_row(e) -> dict:
    """Return the printable fields of a registry entry."""
    variant = ", ".join(f"{k}={v}" for k, v in e.eval_args.items())
    return {
        "name": e.name,
        "backend": e.backend,
        "revision": e.revision or "",
        "gguf_file": e.gguf_file or "",
        "variant": variant,
        "cost_per_mtok": "" if e.cost_per_mtok is None else f"{e.cost_per_mtok:g}",
        "tags": ",".join(e.tags),
        "trust_remote_code": "yes" if e.trust_remote_code else "",
        "endpoint": e.base_url or "",
        "policy": ", ".join(
            x
            for x in (
                "" if e.onboard_questions is None else f"onboard_questions={e.onboard_questions}",
                f"full_evaluation={e.full_evaluation}" if e.full_evaluation else "",
            )
            if x
        ),
        "status": "active" if e.active else "removed",
        "source": e.source,
    }


def _print_entries(entries: list, as_json: bool) -> None:
    """Print registry entries as a table (or JSON lines)."""
    rows = [_entry_row(e) for e in entries]
    if as_json:
        for e in entries:
            typer.echo(json.dumps({**_entry_row(e), "model_args": e.model_args, "eval_args": e.eval_args}))
        return
    from rich.console import Console
    from rich.table import Table

    if not rows:
        typer.echo("no models registered: add one with `embedllm models add NAME` or `embedllm models demo`")
        return
    table = Table(title=f"{len(rows)} model(s)", title_justify="left")
    cols = [c for c in rows[0] if c not in ("source",) and any(r[c] for r in rows)]
    for c in cols:
        table.add_column(c, overflow="fold")
    for r in rows:
        table.add_row(*(r[c] for c in cols))
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


@models_app.command("add")
def add(
    name: Annotated[
        str,
        typer.Argument(
            help="Hugging Face repo id (owner/name) or local path (a model folder, or a .gguf file)",
            show_default=False,
        ),
    ],
    revision: Annotated[
        Optional[str],
        typer.Option(
            "--revision",
            "-r",
            help="Hub branch, tag or commit; part of what 'already evaluated' means",
            show_default=False,
        ),
    ] = None,
    backend: Annotated[
        Optional[str],
        typer.Option(
            "--backend",
            "-b",
            help="lm-eval model type: hf | vllm | "
            "local-completions | ... [default: hf, local-completions with "
            "--base-url]",
            show_default=False,
        ),
    ] = None,
    model_args: Annotated[
        Optional[str],
        typer.Option(
            "--model-args",
            help="extra lm-eval model_args K=V,... "
            "(e.g. dtype=float32,batch_size=4; pretrained=PATH makes NAME "
            "a display name)",
            show_default=False,
        ),
    ] = None,
    gguf_file: Annotated[
        Optional[str],
        typer.Option(
            "--gguf-file",
            help="GGUF file name inside the NAME folder (loaded through transformers; needs gguf + accelerate)",
            show_default=False,
        ),
    ] = None,
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            "--trust-remote-code",
            help="allow the model's own Python code to run when loading (off unless given for this model)",
        ),
    ] = False,
    cost_per_mtok: Annotated[
        Optional[float],
        typer.Option(
            "--cost-per-mtok", help="cost per million tokens, for cost-aware routing", show_default=False
        ),
    ] = None,
    tag: Annotated[
        Optional[list[str]], typer.Option("--tag", "-t", help="label for grouping; repeatable", show_default=False)
    ] = None,
    chat_template: Annotated[
        bool,
        typer.Option(
            "--chat-template",
            help="prompt through the tokenizer's chat template (a prompting variant; give it its own NAME)",
        ),
    ] = False,
    num_fewshot: Annotated[
        Optional[int],
        typer.Option(
            "--num-fewshot", help="few-shot examples for every task (a prompting variant)", show_default=False
        ),
    ] = None,
    base_url: Annotated[
        Optional[str],
        typer.Option(
            "--base-url",
            help="OpenAI-compatible endpoint root serving NAME "
            "(e.g. http://127.0.0.1:8000/v1): evaluated through lm-eval's "
            "local-completions, never downloaded",
            show_default=False,
        ),
    ] = None,
    api_key_env: Annotated[
        Optional[str],
        typer.Option(
            "--api-key-env",
            help="NAME of the environment variable holding the endpoint's key (read at run time, never stored)",
            show_default=False,
        ),
    ] = None,
    onboard_questions: Annotated[
        Optional[int],
        typer.Option(
            "--onboard-questions",
            help="pipeline policy for this model: questions it is onboarded on when new (0 = evaluate it fully) "
            "[default: the pipeline's onboard_questions]",
            show_default=False,
        ),
    ] = None,
    full_evaluation: Annotated[
        Optional[str],
        typer.Option(
            "--full-evaluation",
            help="pipeline policy for this model once onboarded: never | nightly | budget:N "
            "[default: the pipeline's full_evaluation]",
            show_default=False,
        ),
    ] = None,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Register (or update) a model to evaluate. Nothing is downloaded; local paths must exist.

    Examples:

      embedllm models add HuggingFaceTB/SmolLM2-135M-Instruct --revision main --tag small

      embedllm models add ~/models/smollm2 --gguf-file SmolLM2-135M-Instruct.Q4_1.gguf

      embedllm models add smollm2-chat --model-args pretrained=~/models/smollm2 --gguf-file F.gguf --chat-template

      embedllm models add gpt-x --base-url http://127.0.0.1:8000/v1 --api-key-env GPT_X_KEY

      embedllm models add ./my-model --onboard-questions 64 --full-evaluation budget:32
    """
    from tasks.register import add_model

    db = resolve_warehouse(warehouse)
    eval_args: dict = {}
    if chat_template:
        eval_args["apply_chat_template"] = True
    if num_fewshot is not None:
        eval_args["num_fewshot"] = num_fewshot
    entry = add_model(
        db,
        name,
        revision=revision,
        backend=backend,
        model_args=model_args,
        gguf_file=gguf_file,
        trust_remote_code=trust_remote_code,
        cost_per_mtok=cost_per_mtok,
        tags=tag or (),
        eval_args=eval_args,
        base_url=base_url,
        api_key_env=api_key_env,
        onboard_questions=onboard_questions,
        full_evaluation=full_evaluation,
        wait=wait,
    )
    typer.echo(
        f"registered {entry.name} (model_id {entry.model_id}, backend {entry.backend}"
        + (f", gguf {entry.gguf_file}" if entry.gguf_file else "")
        + (f", endpoint {entry.base_url}" if entry.base_url else "")
        + (", trust_remote_code" if entry.trust_remote_code else "")
        + ")"
    )


@models_app.command("list")
def list_(
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="also removed models and names created by imports")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
    warehouse: WarehouseOpt = None,
) -> None:
    """List registered models.

    Examples:

      embedllm models list

      embedllm models list --all --json
    """
    from tasks.register import list_models

    entries = list_models(resolve_warehouse(warehouse), include_removed=all_, include_imported=all_)
    _print_entries(entries, as_json)


@models_app.command("remove")
def remove(
    name: Annotated[
        str, typer.Argument(help="registered name (as `embedllm models list` shows it)", show_default=False)
    ],
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Stop evaluating a model; its labels, loads and evaluation history stay in the warehouse.

    Example:

      embedllm models remove HuggingFaceTB/SmolLM2-135M-Instruct
    """
    from tasks.register import remove_model

    entry = remove_model(resolve_warehouse(warehouse), name, wait=wait)
    typer.echo(f"removed {entry.name} (history kept; `embedllm models add` re-activates it)")


@models_app.command("sync")
def sync(
    file: Annotated[
        Path,
        typer.Argument(
            help="registry YAML file: `models:` with one entry per model, the fields of "
            "`embedllm models add` (see embedllm/config/models.demo.yaml)",
            show_default=False,
        ),
    ],
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Make the registry say what FILE says: add new entries, update changed ones, deactivate the ones it dropped.

    Entries registered with `embedllm models add` are left alone; a deactivated model keeps its labels and history.

    Example:

      embedllm models sync models.yaml
    """
    from tasks.register import sync_registry

    typer.echo(sync_registry(resolve_warehouse(warehouse), file, wait=wait).line())


@models_app.command("demo")
def demo(wait: WaitOpt = 0.0, warehouse: WarehouseOpt = None) -> None:
    """Register the demo models that ship on PyPI (SmolLM2-135M-Instruct GGUF, plain and chat-template; Gemma 3 270M).

    The same as `embedllm models sync embedllm/config/models.demo.yaml`.

    Example:

      embedllm models demo && embedllm evaluate --suite demo --limit 20
    """
    from embedllm.registry import DEMO_REGISTRY
    from tasks.register import list_models, sync_registry

    db = resolve_warehouse(warehouse)
    names = {c.name for c in sync_registry(db, DEMO_REGISTRY, wait=wait).changes}
    _print_entries([e for e in list_models(db) if e.name in names], as_json=False)
