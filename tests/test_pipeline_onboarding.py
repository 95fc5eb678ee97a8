"""New models are onboarded first by the pipeline: the policy, the registry fields, the plan, sparse validation, and
the pipeline end to end on tiny random LMs with the real lm-eval, DuckDB, Great Expectations and Prefect.

The end-to-end fixture runs the pipeline twice on a fresh warehouse: run 1 with two models in the registry file
(no training run yet: both evaluated fully), then three more models are added to the file with their own
full_evaluation field (budget:3, never, nightly) and run 2 onboards them on ONBOARD_QUESTIONS questions each.
A third run (on a copy) applies each follow-up policy and retrains.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

import warehouse
from embedllm.errors import ConfigError
from embedllm.policy import BUDGET, FULL, NOTHING, ONBOARD, ModelState, Policy, decide, for_model, make_policy

LIMIT = 6  # documents per mini-suite task: 12 questions in all
ONBOARD_QUESTIONS = 4  # questions each new model is onboarded on (the mini suite has 2 benchmarks)
BUDGET_N = 3
NEW_MODELS = {"tiny-2": "budget:3", "tiny-3": "never", "tiny-4": "nightly"}


# ================================================================================================ the policy


def state(n_labels=0, onboarded=False, full_started=False, run_exists=True) -> ModelState:
    """Return a ModelState with defaults: a new model and a training run to place it in."""
    return ModelState(n_labels=n_labels, onboarded=onboarded, full_started=full_started, run_exists=run_exists)


@pytest.mark.parametrize(
    ("policy", "model", "expected"),
    [
        (Policy(128, "never"), state(), ONBOARD),  # new, a run exists
        (Policy(128, "never"), state(run_exists=False), FULL),  # a fresh warehouse: evaluated fully
        (Policy(0, "never"), state(), FULL),  # onboarding off
        (Policy(128, "never"), state(n_labels=12, onboarded=True), NOTHING),
        (Policy(128, "nightly"), state(n_labels=12, onboarded=True), FULL),
        (Policy(128, "budget:5"), state(n_labels=12, onboarded=True), BUDGET),
        (Policy(128, "budget:5"), state(n_labels=0, onboarded=True), ONBOARD),  # its onboarding never landed
        (Policy(128, "never"), state(n_labels=40, onboarded=True, full_started=True), FULL),  # nightly ran
        (Policy(128, "never"), state(n_labels=30), FULL),  # labels from an import or a full evaluation
        (Policy(128, "never"), state(full_started=True), FULL),  # a full evaluation that failed stays full
    ],
)
def test_decide_maps_each_model_state_to_its_action(policy, model, expected):
    assert decide(policy, model) == expected


def test_policy_values_are_normalised_and_the_model_field_overrides_the_parameter():
    assert make_policy(0, "Budget: 32") == Policy(0, "budget:32")
    assert Policy(128, "budget:32").budget == 32 and Policy(128, "nightly").budget == 0
    default = Policy(128, "never")
    assert for_model(default, None, None) == default
    assert for_model(default, 16, "nightly") == Policy(16, "nightly")
    assert for_model(default, 0, None) == Policy(0, "never")


@pytest.mark.parametrize(
    ("questions", "full", "field"),
    [
        (128, "sometimes", "full_evaluation"),
        (128, "budget:0", "full_evaluation"),
        (-1, "never", "onboard_questions"),
    ],
)
def test_bad_policy_value_is_a_one_line_error_naming_the_field(questions, full, field):
    with pytest.raises(ConfigError) as err:
        make_policy(questions, full)
    text = str(err.value)
    assert "\n" not in text and field in text and ("never, nightly or budget:N" in text or ">= 0" in text)


def test_registry_file_fields_are_read_and_a_bad_value_names_file_entry_and_field(tmp_path, tiny_models):
    from embedllm.registry import read_registry_file

    path = tmp_path / "models.yaml"
    entry = {"name": tiny_models[0], "onboard_questions": 64, "full_evaluation": "budget:16"}
    path.write_text(yaml.safe_dump({"models": [entry]}))
    (read,) = read_registry_file(path)
    assert (read.onboard_questions, read.full_evaluation) == (64, "budget:16")
    path.write_text(yaml.safe_dump({"models": [{**entry, "full_evaluation": "weekly"}]}))
    with pytest.raises(ConfigError) as err:
        read_registry_file(path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and "entry 1" in text and "full_evaluation" in text
    assert "'weekly'" in text and "budget:N" in text


def test_sync_and_models_add_store_the_policy_fields(warehouse_path, tiny_models, tmp_path):
    from tasks.register import add_model, get_model, sync_registry

    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": tiny_models[0], "full_evaluation": "nightly"}]}))
    sync_registry(warehouse_path, path)
    assert get_model(warehouse_path, tiny_models[0]).full_evaluation == "nightly"
    path.write_text(yaml.safe_dump({"models": [{"name": tiny_models[0], "onboard_questions": 8}]}))
    changes = sync_registry(warehouse_path, path).changes
    assert changes[0].change == "updated" and set(changes[0].fields) == {"onboard_questions", "full_evaluation"}
    stored = get_model(warehouse_path, tiny_models[0])
    assert (stored.onboard_questions, stored.full_evaluation) == (8, None)
    added = add_model(warehouse_path, tiny_models[1], onboard_questions=0, full_evaluation="budget:4")
    assert (added.onboard_questions, added.full_evaluation) == (0, "budget:4")
    with pytest.raises(ConfigError, match="--full-evaluation: 'often'"):
        add_model(warehouse_path, tiny_models[1], full_evaluation="often")


def test_cli_run_with_an_unknown_full_evaluation_is_a_one_line_error(warehouse_path, capsys, monkeypatch):
    import sys

    from embedllm.cli import main

    monkeypatch.setattr(sys, "argv", ["embedllm", "run", "--full-evaluation", "weekly", "-w", str(warehouse_path)])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 1 and err.startswith("error: embedllm run full_evaluation: 'weekly'")
    assert "\n" not in err and "budget:N" in err
    assert not warehouse_path.exists()  # refused before anything ran


def test_run_parameters_match_the_flow_and_the_deployments():
    import inspect

    from embedllm.cli.run import run
    from flows.pipeline import pipeline

    flow_defaults = {k: v.default for k, v in inspect.signature(pipeline.fn).parameters.items()}
    cli_defaults = {k: v.default for k, v in inspect.signature(run).parameters.items()}
    deployments = yaml.safe_load((Path(__file__).parent.parent / "prefect.yaml").read_text())["deployments"]
    for name in ("onboard_questions", "full_evaluation"):
        assert cli_defaults[name] == flow_defaults[name]
        for d in deployments:
            if d["entrypoint"].endswith(":pipeline"):
                assert d["parameters"][name] == flow_defaults[name], (d["name"], name)


# ================================================================================================ end to end


def scalar(db: Path, sql: str, params: list | None = None):
    """Return the single value of a query on a short read-only session."""
    with warehouse.session(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()[0][0]


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Return the rows of a query on a short read-only session."""
    with warehouse.session(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def write_registry(path: Path, models: dict[str, str], policies: dict[str, str]) -> None:
    """Write a registry file with one entry per model folder (name -> path), with its full_evaluation if given."""
    entries = [
        {"name": p, **({"full_evaluation": policies[n]} if n in policies else {})} for n, p in models.items()
    ]
    path.write_text(yaml.safe_dump({"models": entries}))


def run_pipeline(db: Path, registry: Path, suite: str):
    """Run the pipeline flow on the tiny models with the test's policy; return its PipelineResult."""
    from embedllm.embedders import DEMO_EMBEDDER
    from flows.pipeline import pipeline

    return pipeline(
        warehouse=str(db),
        registry=str(registry),
        suite=suite,
        limit=LIMIT,
        embedder=DEMO_EMBEDDER,
        onboard_questions=ONBOARD_QUESTIONS,
    )


def model_counts(db: Path, name: str) -> dict:
    """Return a model's labels, lm-eval samples (eval_runs), partial runs and planned pairs by reason."""
    model_id = scalar(db, "SELECT model_id FROM models WHERE name = ?", [name])
    return {
        "labels": scalar(db, "SELECT count(*) FROM correctness WHERE model_id = ?", [model_id]),
        "samples": scalar(db, "SELECT coalesce(sum(n_samples), 0) FROM eval_runs WHERE model_id = ?", [model_id]),
        "full_runs": scalar(db, "SELECT count(*) FROM eval_runs WHERE model_id = ? AND NOT partial", [model_id]),
        "plan": dict(
            rows(db, "SELECT reason, count(*) FROM evaluation_plan WHERE model_id = ? GROUP BY 1", [model_id])
        ),
    }


@pytest.fixture(scope="module")
def onboarding_runs(tmp_path_factory, prefect_harness, mini_suite) -> dict:
    """Run 1 (two models, fresh warehouse) and run 2 (three models added to the registry file) of the pipeline."""
    from embedllm.tiny_lm import build_tiny_lm

    root = tmp_path_factory.mktemp("onboarding")
    folders = {f"tiny-{s}": str(build_tiny_lm(root / "models" / f"tiny-{s}", seed=s)) for s in range(5)}
    db, registry = root / "wh.duckdb", root / "models.yaml"
    write_registry(registry, {n: folders[n] for n in ("tiny-0", "tiny-1")}, {})
    first = run_pipeline(db, registry, mini_suite)
    after_first = {n: model_counts(db, folders[n]) for n in ("tiny-0", "tiny-1")}
    n_questions = scalar(db, "SELECT count(*) FROM questions")
    write_registry(registry, folders, NEW_MODELS)
    second = run_pipeline(db, registry, mini_suite)
    return {
        "db": db,
        "registry": registry,
        "folders": folders,
        "first": first,
        "second": second,
        "after_first": after_first,
        "n_questions": n_questions,
        "suite": mini_suite,
    }


def test_first_run_on_a_fresh_warehouse_evaluates_every_model_fully(onboarding_runs):
    runs = onboarding_runs
    assert runs["n_questions"] == 2 * LIMIT
    for counts in runs["after_first"].values():
        assert counts["labels"] == counts["samples"] == 2 * LIMIT and counts["full_runs"] == 2
        assert counts["plan"] == {}
    first = {s["stage"]: s for s in runs["first"].stages}
    assert first["onboard"]["skipped"] and "no completed training run yet" in first["onboard"]["note"]
    assert first["train"]["rows"].get("training_runs") == 1


def test_models_added_between_runs_are_onboarded_on_at_most_onboard_questions(onboarding_runs):
    db, folders, second = onboarding_runs["db"], onboarding_runs["folders"], onboarding_runs["second"]
    stages = {s["stage"]: s for s in second.stages}
    assert second.training_run == onboarding_runs["first"].training_run  # placed, not retrained
    assert stages["train"]["skipped"] and not stages["onboard"]["skipped"]
    assert stages["onboard"]["rows"]["onboarded_models"] == len(NEW_MODELS)
    for name in NEW_MODELS:
        counts = model_counts(db, folders[name])
        assert 1 <= counts["samples"] <= ONBOARD_QUESTIONS  # lm-eval saw the chosen questions only
        assert counts["labels"] == counts["samples"] and counts["full_runs"] == 0
        assert counts["plan"] == {"onboard": ONBOARD_QUESTIONS}
    for name in ("tiny-0", "tiny-1"):  # the models evaluated already were not asked again
        assert model_counts(db, folders[name]) == onboarding_runs["after_first"][name]


def test_onboarded_forecasts_with_intervals_land_in_the_same_run(onboarding_runs):
    db, folders, run_id = onboarding_runs["db"], onboarding_runs["folders"], onboarding_runs["second"].training_run
    n_q = onboarding_runs["n_questions"]
    for name in NEW_MODELS:
        forecasts = rows(
            db,
            "SELECT count(*), min(f.source), max(f.source) FROM latest_correctness_forecasts f "
            "JOIN models m USING (model_id) WHERE m.name = ?",
            [folders[name]],
        )
        assert forecasts == [(n_q, "onboarded", "onboarded")]
        bench = rows(
            db,
            "SELECT benchmark, predicted_low, predicted_accuracy, predicted_high, run_id "
            "FROM latest_benchmark_forecasts WHERE model = ? ORDER BY benchmark",
            [folders[name]],
        )
        assert [b for b, *_ in bench] == ["arithmetic", "gen_math"]
        assert all(lo <= p <= hi and r == run_id for _, lo, p, hi, r in bench)


def test_validation_passes_on_the_sparse_matrix_and_checks_each_model_against_its_plan(onboarding_runs):
    import json

    db, folders = onboarding_runs["db"], onboarding_runs["folders"]
    stages = {s["stage"]: s for s in onboarding_runs["second"].stages}
    assert stages["validate"]["rows"] == {"validation_runs": 1}  # validated anew after the onboarding loads
    success, summary = rows(db, "SELECT success, summary FROM validation_runs ORDER BY created_at DESC LIMIT 1")[0]
    assert success
    checks = {c["check"]: c for c in json.loads(summary)["checks"]}
    assert checks["coverage"]["status"] == "pass"
    n_labels = scalar(db, "SELECT count(*) FROM correctness")
    assert n_labels < len(folders) * onboarding_runs["n_questions"]  # sparse indeed


def test_a_label_missing_from_the_plan_fails_coverage_naming_the_model(onboarding_runs, tmp_path):
    from tasks.validate import validate

    db, folders = tmp_path / "wh.duckdb", onboarding_runs["folders"]
    shutil.copy(onboarding_runs["db"], db)
    name = folders["tiny-2"]
    with warehouse.session(db) as con:
        con.execute(
            "DELETE FROM correctness WHERE model_id = (SELECT model_id FROM models WHERE name = ?) AND "
            "question_id = (SELECT min(question_id) FROM evaluation_plan p JOIN models m USING (model_id) "
            "WHERE m.name = ?)",
            [name, name],
        )
    done = validate(db, suite=onboarding_runs["suite"], force=True, data_docs=False)
    assert not done.success
    coverage = done.result.check("coverage")
    assert coverage.status == "fail" and coverage.unexpected_count == 1
    gap = coverage.examples[0]
    assert gap["model"] == name and gap["plan"] == "plan" and str(gap["n_missing"]) == "1"


def test_artifacts_and_report_say_which_models_are_onboarded_and_how_sure(onboarding_runs):
    import json

    from prefect.artifacts import Artifact

    folders = onboarding_runs["folders"]
    table = Artifact.get("onboarded-models")
    assert table is not None
    data = json.loads(table.data) if isinstance(table.data, str) else table.data  # the rows
    assert {r["model"] for r in data} == {folders[n] for n in NEW_MODELS}
    assert all(r["n_answers"] <= ONBOARD_QUESTIONS and 0 < r["mean_interval_width"] <= 1 for r in data)
    assert {r["model"]: r["full_evaluation"] for r in data} == {folders[n]: p for n, p in NEW_MODELS.items()}
    index = settings_report(onboarding_runs["db"], onboarding_runs["second"].training_run)
    page = index.read_text()
    assert "Onboarded models" in page and "mean interval width" in page
    assert all(folders[n] in page for n in NEW_MODELS)


def settings_report(db: Path, run_id: str) -> Path:
    """Return the run's report index.html (where the pipeline's report step writes it)."""
    from embedllm import settings

    return settings.beside(db, "reports") / run_id / "index.html"


@pytest.fixture(scope="module")
def third_run(onboarding_runs, tmp_path_factory) -> dict:
    """Run 3 on a copy of the warehouse after run 2: each onboarded model's follow-up policy, then a retrain."""
    root = tmp_path_factory.mktemp("third")
    db = root / "wh.duckdb"
    shutil.copy(onboarding_runs["db"], db)
    before = {n: model_counts(db, onboarding_runs["folders"][n]) for n in NEW_MODELS}
    result = run_pipeline(db, onboarding_runs["registry"], onboarding_runs["suite"])
    after = {n: model_counts(db, onboarding_runs["folders"][n]) for n in NEW_MODELS}
    return {"db": db, "before": before, "after": after, "result": result}


def test_budget_adds_at_most_n_questions_in_the_next_run(third_run):
    before, after = third_run["before"]["tiny-2"], third_run["after"]["tiny-2"]
    added = after["samples"] - before["samples"]
    assert 1 <= added <= BUDGET_N and after["labels"] - before["labels"] == added
    assert after["plan"] == {"onboard": ONBOARD_QUESTIONS, "budget": BUDGET_N} and after["full_runs"] == 0


def test_never_adds_nothing_and_nightly_evaluates_the_rest_of_the_suite(third_run):
    assert third_run["after"]["tiny-3"] == third_run["before"]["tiny-3"]
    nightly = third_run["after"]["tiny-4"]
    assert nightly["labels"] == 2 * LIMIT and nightly["full_runs"] == 2


def test_the_next_retrain_absorbs_the_new_labels_on_the_sparse_matrix(third_run, onboarding_runs):
    db, result = third_run["db"], third_run["result"]
    assert result.training_run != onboarding_runs["second"].training_run
    sources = dict(rows(db, "SELECT model, source FROM latest_model_embeddings"))
    # tiny-3 (4 onboarding answers) is few-label next to 2 x LIMIT = 12 (under half the median): the run places
    # it from its answers, with intervals, as onboarding did; tiny-2 (4 + 3 budget = 7) and the rest are trained
    few = {"tiny-3"}
    assert sources == {f: "placed" if n in few else "trained" for n, f in onboarding_runs["folders"].items()}
    intervals = rows(
        db,
        "SELECT m.name, bool_and(f.predicted_low <= f.predicted_accuracy AND f.predicted_accuracy <= "
        "f.predicted_high) FROM latest_benchmark_forecasts f JOIN models m USING (model_id) "
        "WHERE f.source = 'placed' GROUP BY m.name",
    )
    assert sorted(intervals) == sorted((onboarding_runs["folders"][n], True) for n in few)
    n_models, n_q = len(onboarding_runs["folders"]), onboarding_runs["n_questions"]
    assert scalar(db, "SELECT count(*) FROM correctness") < n_models * n_q  # trained on a sparse matrix
    assert scalar(db, "SELECT count(*) FROM latest_correctness_forecasts") == n_models * n_q
    assert scalar(db, "SELECT success FROM validation_runs ORDER BY created_at DESC LIMIT 1")


# ================================================================================================ imports


def import_batches(kind: str) -> list:
    """Return loader batches of model a (40 questions) and b (the first 20 only), imported as KIND."""
    import polars as pl

    from embedllm.ids import question_id
    from tasks.load import Batch, Meta

    out = []
    for model, n in (("a", 40), ("b", 20)):
        rows = pl.DataFrame(
            {
                "model": model,
                "question_id": [question_id("t", f"{i:064x}") for i in range(n)],
                "benchmark": "b",
                "task": "t",
                "doc_id": list(range(n)),
                "prompt": [f"question {i}" for i in range(n)],
                "label": [(i * 7 + len(model)) % 3 % 2 for i in range(n)],
            }
        )
        out.append(Batch(Meta(kind=kind, content_hash=f"{kind}-{model}", model=model, task="t"), rows))
    return out


@pytest.mark.parametrize(("kind", "passes"), [("lm-eval-import", True), ("embedllm-csv", False)])
def test_an_lm_eval_import_counts_as_planned_for_what_it_holds(warehouse_path, kind, passes):
    from tasks.load import load_batches
    from tasks.validate import validate

    with warehouse.session(warehouse_path) as con:
        load_batches(con, import_batches(kind))
    done = validate(warehouse_path, data_docs=False)
    assert done.result.check("coverage").status == ("pass" if passes else "fail")
    planned = scalar(warehouse_path, "SELECT count(*) FROM evaluation_plan WHERE reason = 'import'")
    assert planned == (60 if kind == "lm-eval-import" else 0)
