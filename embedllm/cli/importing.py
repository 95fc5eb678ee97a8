"""`embedllm import lm-eval DIR --model NAME` and `embedllm import embedllm-csv DIR`: bring existing labels in."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from embedllm.cli.app import WaitOpt, WarehouseOpt, app, resolve_warehouse

import_app = typer.Typer(
    name="import",
    no_args_is_help=True,
    help="Import correctness labels produced elsewhere (idempotent: importing the same data twice changes nothing).\n\n"
    "Examples:\n\n"
    "  embedllm import lm-eval results/ --model meta-llama/Llama-3.2-1B "
    "--label-rule gsm8k=exact_match,strict-match\n\n"
    "  embedllm import embedllm-csv data/EmbedLLM/",
)
app.add_typer(import_app)


def _status(text: str):
    """Return a rich spinner context showing TEXT on stderr while a long step runs."""
    from rich.console import Console

    return Console(stderr=True).status(text)


@import_app.command("lm-eval")
def import_lm_eval(
    directory: Annotated[
        Path,
        typer.Argument(
            help="lm-eval --output_path folder (results_*.json + samples files "
            "from --log_samples), any lm-eval 0.4.x version",
            show_default=False,
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="model name to file the labels under (e.g. the HF repo id)", show_default=False
        ),
    ],
    label_rule: Annotated[
        Optional[list[str]],
        typer.Option(
            "--label-rule",
            "-l",
            help="TASK=RULE, RULE = metric[,filter][>threshold]; repeatable; overrides "
            "embedllm/config/label_rules.yaml",
            show_default=False,
        ),
    ] = None,
    revision: Annotated[
        Optional[str],
        typer.Option(
            "--revision", help="model revision to record (default: the one lm-eval logged)", show_default=False
        ),
    ] = None,
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Import an lm-eval output folder: one label per (model, question), checked against lm-eval's aggregates.

    Example: embedllm import lm-eval out/my-model --model my-org/my-model --label-rule truthfulqa_mc2=acc>0.5
    """
    from embedllm.labels import parse_overrides
    from tasks.ingest_lm_eval import import_lm_eval_dir

    db = resolve_warehouse(warehouse)
    with _status(f"importing {directory}"):
        done = import_lm_eval_dir(
            db, directory, model=model, rules=parse_overrides(label_rule), revision=revision, wait=wait
        )
    typer.echo(
        f"lm-eval results from {directory} for model {model}"
        + (f" (lm-eval {done.lm_eval_version})" if done.lm_eval_version else "")
    )
    typer.echo(
        f"  {'task':<24} {'benchmark':<16} {'rule':<30} {'labels':>7} {'new q':>6} {'mean':>7} {'lm-eval':>7}  "
        "status  (mean = per-sample metric mean)"
    )
    for r in done.tasks:
        agg = "" if r["aggregate"] is None else f"{r['aggregate']:.4f}"
        typer.echo(
            f"  {r['task']:<24} {r['benchmark']:<16} {r['label_rule']:<30} {r['labels']:>7} "
            f"{r['new_questions']:>6} {r['mean']:>7.4f} {agg:>7}  {r['status']}"
        )
    report = done.load
    typer.echo(
        f"loaded {report.n_labels} labels, {report.n_new_questions} new questions, "
        f"{report.n_new_models} new model(s); {len(report.skipped)} task(s) skipped as already loaded "
        f"({report.seconds:.1f} s)"
    )


@import_app.command("embedllm-csv")
def import_embedllm_csv(
    directory: Annotated[
        Path,
        typer.Argument(
            help="folder with train.csv, val.csv, test.csv (and optionally question_order.csv, model_order.csv)",
            show_default=False,
        ),
    ],
    wait: WaitOpt = 0.0,
    warehouse: WarehouseOpt = None,
) -> None:
    """Import the published EmbedLLM dataset layout, keeping its train/val/test split.

    Duplicate (model, question) rows are resolved by MAX (correct if any row says 1, as the EmbedLLM authors' code
    does); the command reports how many pairs were duplicated and how many of those conflicted.

    Example: embedllm import embedllm-csv ~/data/EmbedLLM
    """
    from tasks.ingest_embedllm_csv import import_embedllm_csv as run_import

    db = resolve_warehouse(warehouse)
    with _status(f"importing {directory}") as spinner:
        s = run_import(
            db, directory, progress=lambda text: spinner.update(f"{directory}: {text}"), wait=wait
        ).summary
    if s.already_loaded:
        typer.echo(
            f"{directory}: already loaded (same files, content {s.content_hash[:12]}); nothing changed "
            f"({s.seconds['total']:.1f} s)"
        )
        return
    r = s.report
    splits = ", ".join(f"{k} {v}" for k, v in sorted(s.questions_by_split.items(), key=lambda kv: kv[0]))
    typer.echo(
        f"EmbedLLM dataset {directory}: {s.n_rows:,} rows, {s.n_models} models x {s.n_questions:,} questions "
        f"({splits})"
    )
    typer.echo(
        f"duplicates: {s.n_duplicate_pairs:,} (model, question) pairs had more than one row "
        f"({s.n_extra_rows:,} extra rows); {s.n_conflicts:,} of them conflicted; resolved by MAX"
    )
    if s.n_multi_category_prompts or s.n_multi_split_prompts:
        typer.echo(
            f"prompts listed under several categories: {s.n_multi_category_prompts:,} (filed under the "
            f"first); in several split files: {s.n_multi_split_prompts:,} (test > val > train)"
        )
    typer.echo(
        f"loaded {r.n_labels:,} labels, {r.n_new_questions:,} new questions, {r.n_new_models} new models; "
        f"{len(r.skipped)} skipped as already loaded ({s.seconds['total']:.1f} s)"
    )
