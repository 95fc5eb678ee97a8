"""`embedllm route`: pick the model most likely to answer a question (or a JSONL file of them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WarehouseOpt, app, resolve_warehouse
from embedllm.errors import InputError


def read_questions(path: Path) -> tuple[list[dict], list[str]]:
    """Return (records, texts) from a JSONL file with a "prompt" or "question" field per line (and optionally a
    "benchmark" one)."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    records, texts = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{n}:{exc.colno}: not valid JSON ({exc.msg})") from exc
        text = record.get("prompt", record.get("question")) if isinstance(record, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise InputError(f'{path}:{n}: each line needs a "prompt" or "question" string field')
        if not isinstance(record.get("benchmark", ""), (str, type(None))):
            raise InputError(f'{path}:{n}: "benchmark" must be a string (a benchmark the run was trained on)')
        records.append(record)
        texts.append(text)
    if not texts:
        raise InputError(f'{path}: no questions (one JSON object per line with a "prompt" field)')
    return records, texts


def print_choice(choice, console) -> None:
    """Print one routing decision: the chosen model and the alternatives with probabilities."""
    from rich.table import Table

    table = Table(title_justify="left", title=f"question: {choice.question[:100]}")
    for col in ("rank", "model", "P(correct)", "utility", "cost/Mtok"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for i, c in enumerate(choice.ranked, start=1):
        table.add_row(
            "chosen" if i == 1 else str(i),
            c.model,
            f"{c.p_correct:.3f}",
            f"{c.utility:.3f}",
            "-" if c.cost_per_mtok is None else f"{c.cost_per_mtok:g}",
        )
    console.print(table)


@app.command()
def route(
    question: Annotated[Optional[str], typer.Argument(help="Question text to route", show_default=False)] = None,
    file: Annotated[
        Optional[Path],
        typer.Option(
            "--file",
            "-f",
            help='JSONL file, one {"prompt": ...} or {"question": ...} per line',
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option(
            "--out", "-o", help="Where --file's choices go [default: <file>.routes.jsonl]", show_default=False
        ),
    ] = None,
    cost_weight: Annotated[
        float,
        typer.Option(
            "--cost-weight",
            "-c",
            min=0.0,
            help="Trade P(correct) against cost: utility = P - W * cost_per_mtok / max cost_per_mtok",
        ),
    ] = 0.0,
    top_k: Annotated[
        int, typer.Option("--top-k", "-k", min=1, help="Models to show per question (chosen + alternatives)")
    ] = 3,
    run: Annotated[
        Optional[str], typer.Option("--run", help="Training run id [default: the latest]", show_default=False)
    ] = None,
    benchmark: Annotated[
        Optional[str],
        typer.Option(
            "--benchmark",
            "-b",
            help="The question's benchmark, when it comes from one the run was trained on (for --file: lines "
            'without their own "benchmark" field) [default: unknown]',
            show_default=False,
        ),
    ] = None,
    warehouse: WarehouseOpt = None,
) -> None:
    """Route a question to the active model most likely to answer it correctly (optionally cost-aware).

    The text is embedded with the embedder the training run used. Models without a registered cost count as free.
    Naming the question's benchmark helps a run trained with benchmark input (the default preset).

    Examples: embedllm route "What is the capital of France?"
              embedllm route --benchmark arithmetic "What is 17 + 25?"
              embedllm route --file questions.jsonl --cost-weight 0.2
    """
    db = resolve_warehouse(warehouse)
    from collections import Counter

    from rich.console import Console

    from tasks.route import route as route_stage

    if (question is None) == (file is None):
        raise typer.BadParameter("give either a QUESTION argument or --file questions.jsonl (not both)")
    console = Console(highlight=False)
    records, texts = read_questions(file) if file else ([{"question": question}], [question])
    benchmarks = [r.get("benchmark", benchmark) for r in records]
    choices = route_stage(db, texts, run_id=run, cost_weight=cost_weight, top_k=top_k, benchmarks=benchmarks)
    if question is not None:
        print_choice(choices[0], console)
        return
    target = out or file.with_name(file.name.removesuffix(".jsonl") + ".routes.jsonl")
    with target.open("w", encoding="utf-8") as fh:
        for record, choice in zip(records, choices):
            fh.write(json.dumps({**record, "route": choice.to_dict()}) + "\n")
    counts = Counter(c.model for c in choices)
    console.print(f"routed {len(choices)} questions -> {target}")
    for model, n in counts.most_common():
        console.print(f"  {n:6d}  {model}")
