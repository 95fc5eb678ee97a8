"""Train -> warehouse -> forecasts -> route, on small real warehouses built with the real loader."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

import warehouse
from embedllm.errors import InputError, PipelineStopped
from embedllm.ids import question_id
from embedllm.model import EmbedderMismatch, load_checkpoint
from embedllm.synthetic import make_matrix
from tasks.forecast import forecast
from tasks.load import Batch, Meta, load_batches
from tasks.route import route
from tasks.train import TrainingDataError, train

EMBEDDER = "synthetic-16"
QUICK = {"dim_grid": [8], "epochs": 4}  # keep every training in these tests to well under a second
CONTRACT_METRICS = {
    "test_accuracy",
    "test_auc",
    "test_log_loss",
    "test_ece",
    "route_accuracy",
    "single_best_accuracy",
    "oracle_accuracy",
    "knn_test_accuracy",
    "train_seconds",
}


def load_synthetic(con, n_models=6, n_questions=300, *, labels=None, seed=0, embed=True):
    """Load a synthetic matrix through the real loader, write its question embeddings; return (sm, question ids)."""
    sm = make_matrix(n_models, n_questions, emb_dim=16, seed=seed)
    lab = sm.labels if labels is None else labels
    qids = [question_id(f"syn_{b}", str(i)) for i, b in enumerate(sm.benchmark)]
    batches = []
    for m, name in enumerate(sm.model_names):
        rows = pl.DataFrame(
            {
                "question_id": qids,
                "benchmark": sm.benchmark.tolist(),
                "task": [f"syn_{b}" for b in sm.benchmark],
                "prompt": [f"question {i}" for i in range(n_questions)],
                "label": lab[m].astype(np.int8),
                "value": lab[m].astype(float),
            }
        )
        batches.append(Batch(Meta(kind="lm-eval-import", content_hash=f"{seed}-{name}", model=name), rows))
    load_batches(con, batches)
    if embed:
        write_embeddings(con, qids, sm.embeddings, EMBEDDER)
    return sm, qids


def write_embeddings(con, qids, vectors, embedder):
    """Insert question embeddings for an embedder."""
    frame = pl.DataFrame(
        {
            "question_id": qids,
            "embedder": embedder,
            "embedding": pl.Series([v for v in vectors.astype(np.float32)], dtype=pl.List(pl.Float32)),
        }
    )
    warehouse.upsert(con, "question_embeddings", frame)


def sql(db, statement, params=None):
    """Run one statement on a short session of the warehouse at db."""
    with warehouse.session(db) as con:
        con.execute(statement, params or [])


def mark_validated(con, success=True, when=None):
    """Record a validation run (as `embedllm validate` would) newer than every load."""
    when = when or datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
    con.execute(
        "INSERT INTO validation_runs (run_id, created_at, success, n_expectations, n_failed, n_errors) "
        "VALUES (?, ?, ?, 10, ?, 0)",
        [f"v{when:%H%M%S%f}", when, success, 0 if success else 2],
    )


@pytest.fixture
def trained(con, warehouse_path):
    """A warehouse with 6 synthetic models x 300 questions, validated and trained with the default preset."""
    sm, qids = load_synthetic(con)
    mark_validated(con)
    result = train(warehouse_path, overrides=QUICK)
    forecast(warehouse_path, result.run_id, probe=False)  # a run is completed with its forecasts
    return sm, qids, result


def test_a_run_is_invisible_until_its_forecasts_commit_and_the_next_train_cleans_it(con, warehouse_path):
    load_synthetic(con, n_questions=200)
    mark_validated(con)
    unfinished = train(warehouse_path, overrides=QUICK)  # killed before `forecast` committed, say
    assert con.execute("SELECT status FROM training_runs").fetchall() == [("trained",)]
    assert con.execute("SELECT count(*) FROM latest_training_run").fetchall() == [(0,)]
    assert unfinished.checkpoint_path.exists()
    stray = unfinished.checkpoint_path.with_name("19990101T000000-dead00.pt")
    stray.write_bytes(b"half a checkpoint")  # a file no run records
    finished = train(warehouse_path, overrides=QUICK)
    forecast(warehouse_path, finished.run_id, probe=False)
    assert con.execute("SELECT run_id, status FROM training_runs").fetchall() == [(finished.run_id, "completed")]
    assert con.execute(
        "SELECT count(*) FROM model_embeddings WHERE run_id = ?", [unfinished.run_id]
    ).fetchall() == [(0,)]
    assert not unfinished.checkpoint_path.exists() and not stray.exists() and finished.checkpoint_path.exists()
    assert con.execute("SELECT run_id FROM latest_training_run").fetchall() == [(finished.run_id,)]


def test_training_writes_run_embeddings_and_checkpoint(con, trained):
    _, _, result = trained
    row = con.execute("SELECT preset, embedder, config, metrics, status FROM training_runs").fetchall()
    assert len(row) == 1 and row[0][0] == "default" and row[0][1] == EMBEDDER and row[0][4] == "completed"
    config, metrics = json.loads(row[0][2]), json.loads(row[0][3])
    assert CONTRACT_METRICS <= set(metrics)
    assert config["n_models"] == 6 and config["n_questions"] == 300 and config["embedder"] == EMBEDDER
    assert config["dim"] == 8 and "code_version" in config
    assert con.execute("SELECT count(*), min(len(embedding)) FROM model_embeddings").fetchall() == [(6, 8)]
    model = load_checkpoint(result.checkpoint_path)
    assert model.meta["run_id"] == result.run_id and model.meta["embedder"] == EMBEDDER
    assert len(model.meta["model_ids"]) == 6 and model.config.question_dim == 16
    assert con.execute("SELECT run_id FROM latest_training_run").fetchall() == [(result.run_id,)]


def test_checkpoints_go_beside_the_given_database_file(tmp_path, monkeypatch):
    monkeypatch.delenv("EMBEDLLM_WAREHOUSE", raising=False)
    with warehouse.session(tmp_path / "elsewhere.duckdb") as other:
        load_synthetic(other)
        mark_validated(other)
    result = train(tmp_path / "elsewhere.duckdb", overrides=QUICK)
    assert result.checkpoint_path.parent == tmp_path / "elsewhere_checkpoints" and result.checkpoint_path.exists()


def test_forecasts_cover_every_model_and_question_even_unevaluated(con, warehouse_path, trained):
    sm, qids, result = trained
    # a question nobody answered yet still gets a forecast for every model
    con.execute(
        "INSERT INTO questions (question_id, benchmark, task, prompt, split, source) "
        "VALUES ('new-q', 'mmlu', 'syn_mmlu', 'a new question', 'test', 'test')"
    )
    write_embeddings(con, ["new-q"], sm.embeddings[:1], EMBEDDER)
    report = forecast(warehouse_path, result.run_id, probe=False)
    assert (
        report.correctness_forecasts == 6 * 301 and report.report.rows["correctness_forecasts"] == 6
    )  # replaced + 1 new q
    n, lo, hi = con.execute(
        "SELECT count(*), min(p_correct), max(p_correct) FROM latest_correctness_forecasts "
        "WHERE question_id = 'new-q'"
    ).fetchall()[0]
    assert n == 6 and 0 < lo <= hi < 1
    bench = con.execute(
        "SELECT benchmark, observed_accuracy, n_observed, predicted_accuracy "
        "FROM latest_benchmark_forecasts WHERE model = ? ORDER BY benchmark",
        [sm.model_names[0]],
    ).fetchall()
    expected = {
        b: (sm.labels[0][sm.benchmark == b].mean(), int((sm.benchmark == b).sum()))
        for b in set(sm.benchmark.tolist())
    }
    assert [b for b, *_ in bench] == sorted(expected)
    for b, observed, n_observed, predicted in bench:
        assert observed == pytest.approx(expected[b][0]) and n_observed == expected[b][1] and 0 < predicted < 1
    forecast(warehouse_path, result.run_id, probe=False)  # idempotent: replaces, never duplicates
    assert con.execute("SELECT count(*) FROM correctness_forecasts").fetchall()[0][0] == 6 * 301
    kept = forecast(warehouse_path, result.run_id, refresh=False, probe=False)  # has what is asked: left as is
    assert kept.skipped and kept.report.rows == {} and kept.probe is None


def test_probe_scores_every_benchmark_with_enough_models(con, warehouse_path):
    load_synthetic(con, n_models=8, n_questions=400)
    mark_validated(con)
    result = train(warehouse_path, overrides=QUICK)
    probe = forecast(warehouse_path, result.run_id, probe_epochs=2).probe
    rows = con.execute("SELECT benchmark, pearson_r, mae, n_models FROM benchmark_probe").fetchall()
    assert {r[0] for r in rows} == set(probe) and len(rows) >= 5
    assert all(n == 8 and 0 <= mae < 1 for _, _, mae, n in rows)


def test_route_round_trip_with_the_real_embedder(con, warehouse_path):
    from embedllm.embedders import encode

    sm, qids = load_synthetic(con, n_questions=150, embed=False)
    prompts = con.execute("SELECT question_id, prompt FROM questions ORDER BY question_id").fetchall()
    write_embeddings(
        con, [q for q, _ in prompts], encode([p for _, p in prompts], "all-MiniLM-L6-v2"), "all-MiniLM-L6-v2"
    )
    mark_validated(con)
    result = train(warehouse_path, overrides=QUICK)
    forecast(warehouse_path, result.run_id, probe=False)
    assert result.embedder == "all-MiniLM-L6-v2"
    con.close()  # routing opens a read-only session of its own
    choices = route(warehouse_path, ["What is 2 + 2?", "Who wrote Hamlet?"], top_k=3)
    assert [c.question for c in choices] == ["What is 2 + 2?", "Who wrote Hamlet?"]
    for choice in choices:
        assert len(choice.ranked) == 3 and choice.model in sm.model_names
        utilities = [c.utility for c in choice.ranked]
        assert utilities == sorted(utilities, reverse=True) and 0 < choice.p_correct < 1
    # a prohibitive cost on every model but one sends every question to the free one
    free = sm.model_names[3]
    sql(warehouse_path, "UPDATE models SET cost_per_mtok = 100 WHERE name <> ?", [free])
    assert {c.model for c in route(warehouse_path, ["What is 2 + 2?", "Who wrote Hamlet?"], cost_weight=10.0)} == {
        free
    }
    # an inactive model is never chosen
    sql(warehouse_path, "UPDATE models SET active = false WHERE name = ?", [free])
    assert free not in {
        c.model for c in route(warehouse_path, ["What is 2 + 2?"], cost_weight=10.0, top_k=6)[0].ranked
    }
    with pytest.raises(EmbedderMismatch, match="trained on all-MiniLM-L6-v2 question embeddings, not other"):
        route(warehouse_path, ["x"], embedder="other")
    # the router restricted to named models; unknown names and blank questions are one-line errors
    assert {
        c.model
        for c in route(warehouse_path, ["What is 2 + 2?"], allowed_names=sm.model_names[:2], top_k=6)[0].ranked
    } == set(sm.model_names[:2])
    with pytest.raises(InputError, match=f"unknown model 'nope' for run {result.run_id}"):
        route(warehouse_path, ["x"], allowed_names=["nope"])
    with pytest.raises(InputError, match="question 2 of 2 is empty or blank"):
        route(warehouse_path, ["x", "   "])


def test_empty_warehouse_is_refused(warehouse_path):
    with pytest.raises(TrainingDataError, match="no labels"):
        train(warehouse_path)


def test_unvalidated_warehouse_is_refused_unless_skipped(con, warehouse_path):
    load_synthetic(con)
    with pytest.raises(PipelineStopped, match="never validated"):
        train(warehouse_path, overrides=QUICK)
    mark_validated(con, success=False)
    with pytest.raises(PipelineStopped, match="failed"):
        train(warehouse_path, overrides=QUICK)
    assert train(warehouse_path, require_validation=False, overrides=QUICK).config["validation_run"] == "skipped"


def test_validation_older_than_the_latest_load_is_refused(con, warehouse_path):
    mark_validated(con, when=datetime(2000, 1, 1))
    load_synthetic(con)
    with pytest.raises(PipelineStopped, match="older than the latest load"):
        train(warehouse_path, overrides=QUICK)


def test_one_model_is_refused(con, warehouse_path):
    load_synthetic(con, n_models=1)
    mark_validated(con)
    with pytest.raises(TrainingDataError, match="only one model"):
        train(warehouse_path)


def test_one_class_is_refused(con, warehouse_path):
    load_synthetic(con, labels=np.ones((6, 300), dtype=np.int8))
    mark_validated(con)
    with pytest.raises(TrainingDataError, match="every label is correct"):
        train(warehouse_path)


def test_missing_or_unknown_embeddings_are_refused(con, warehouse_path):
    load_synthetic(con, embed=False)
    mark_validated(con)
    with pytest.raises(TrainingDataError, match="run `embedllm embed` first"):
        train(warehouse_path)
    qids = [r[0] for r in con.execute("SELECT question_id FROM questions ORDER BY question_id").fetchall()]
    write_embeddings(con, qids[:-5], np.random.default_rng(0).normal(size=(len(qids) - 5, 16)), EMBEDDER)
    with pytest.raises(TrainingDataError, match=f"5 labelled questions have no {EMBEDDER} embedding"):
        train(warehouse_path)
    with pytest.raises(EmbedderMismatch, match="no question embeddings from embedder 'all-mpnet-base-v2'"):
        train(warehouse_path, embedder="all-mpnet-base-v2")
    assert con.execute("SELECT count(*) FROM training_runs").fetchall()[0][0] == 0


def test_a_current_run_is_kept_until_something_new_is_loaded_or_embedded(con, warehouse_path):
    sm, qids = load_synthetic(con, n_questions=200)
    mark_validated(con)
    first = train(warehouse_path, preset="default", force=True)
    forecast(warehouse_path, first.run_id, probe=False)
    again = train(warehouse_path, preset="default")
    assert (again.trained, again.run_id, again.report.skipped, again.report.rows) == (
        False,
        first.run_id,
        True,
        {},
    )
    assert again.metrics["test_accuracy"] == pytest.approx(first.metrics["test_accuracy"])
    assert again.checkpoint_path == first.checkpoint_path and again.config["n_models"] == 6
    # new vectors recorded by the embed stage make the run stale
    con.execute(
        "INSERT INTO embedding_runs (run_id, embedder, n_questions, seconds, created_at) "
        "VALUES ('e1', ?, 5, 1.0, ?)",
        [EMBEDDER, datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=2)],
    )
    third = train(warehouse_path, preset="default")
    assert third.trained and third.run_id != first.run_id
    assert con.execute("SELECT count(*) FROM training_runs").fetchall()[0][0] == 2


HOLDER = textwrap.dedent("""
    import sys, time
    from embedllm.locking import run_lock
    with run_lock(sys.argv[1], what="test holder"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def hold_run_lock(db, seconds: float) -> subprocess.Popen:
    """Start a process holding the warehouse's run lock for SECONDS; return it once it holds the lock."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_cli_train_refuses_with_one_line_or_waits_while_another_process_holds_the_run_lock(con, warehouse_path):
    load_synthetic(con)
    mark_validated(con)
    con.close()
    command = ["embedllm", "train", "--no-probe", "-w", str(warehouse_path)]
    holder = hold_run_lock(warehouse_path, 120)
    try:
        refused = subprocess.run(command, capture_output=True, text=True, timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: warehouse {warehouse_path} is in use by PID {holder.pid}"
    )
    assert "--wait SECONDS" in lines[0]
    with warehouse.session(warehouse_path, read_only=True) as after:
        assert after.execute("SELECT count(*) FROM training_runs").fetchall() == [(0,)]
    holder = hold_run_lock(warehouse_path, 3)
    waited = subprocess.run([*command, "--wait", "120"], capture_output=True, text=True, timeout=600)
    assert holder.wait(timeout=60) == 0  # the holder finished first; the command queued behind it
    assert waited.returncode == 0, waited.stderr
    assert "test split" in waited.stdout and "forecasts: 1,800 correctness" in waited.stdout
    with warehouse.session(warehouse_path, read_only=True) as after:
        assert after.execute("SELECT count(*) FROM training_runs").fetchall() == [(1,)]


# ================================================================================================ the maths, by hand


def test_matrix_from_frames_places_each_label_and_marks_the_rest_missing():
    from embedllm.training import matrix_from_frames

    questions = pl.DataFrame(
        {
            "question_id": ["q1", "q2", "q3"],
            "benchmark": ["a", "a", "b"],
            "split": ["train", "val", "test"],
            "embedding": pl.Series([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=pl.List(pl.Float32)),
        }
    )
    labels = pl.DataFrame(
        {
            "model_id": [5, 5, 9, 9],
            "model": ["m5", "m5", "m9", "m9"],
            "question_id": ["q1", "q3", "q2", "gone"],
            "label": [1, 0, 1, 1],
        }
    )
    m = matrix_from_frames(questions, labels)
    # rows q1..q3, columns m5, m9; the label of a question without an embedding ('gone') is dropped
    assert m.labels.tolist() == [[1, -1], [-1, 1], [0, -1]] and m.labels.dtype == np.int8
    assert (m.model_ids, m.model_names, m.question_ids) == ([5, 9], ["m5", "m9"], ["q1", "q2", "q3"])
    assert m.emb.shape == (3, 2) and m.emb.dtype == np.float32 and m.split.tolist() == ["train", "val", "test"]
    assert m.part("train").labels.tolist() == [[1, -1]]
    assert m.part("test", rows=m.benchmark == "a").labels.shape == (0, 2)


def test_embedding_array_refuses_mixed_lengths():
    from embedllm.training import TrainingDataError, embedding_array

    assert embedding_array(pl.Series([[1.0, 2.0], [3.0, 4.0]])).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(TrainingDataError, match="mixed lengths \\(1..2\\)"):
        embedding_array(pl.Series([[1.0], [3.0, 4.0]]))


def test_correctness_table_is_model_major():
    from embedllm.training import correctness_table

    p = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])  # 3 questions x 2 models
    table = correctness_table("r", [7, 8], ["a", "b", "c"], p).to_pylist()
    assert [(r["model_id"], r["question_id"], round(r["p_correct"], 3)) for r in table] == [
        (7, "a", 0.1),
        (7, "b", 0.3),
        (7, "c", 0.5),
        (8, "a", 0.2),
        (8, "b", 0.4),
        (8, "c", 0.6),
    ]
    assert {r["run_id"] for r in table} == {"r"} and {r["source"] for r in table} == {"trained"}


def test_probe_baselines_and_skips_on_a_hand_made_matrix():
    from embedllm.probe import baseline_features, probe_rows, probe_scores, skip_reason
    from embedllm.training import Matrix

    # 4 questions x 3 models; benchmark b2 holds the last two questions, model 2 never answered b1
    labels = np.array([[1, 0, -1], [1, 1, -1], [0, 1, 1], [0, 0, 1]], dtype=np.int8)
    m = Matrix(
        emb=np.eye(4, dtype=np.float32),
        labels=labels,
        split=np.array(["train", "val", "train", "val"]),
        benchmark=np.array(["b1", "b1", "b2", "b2"]),
        question_ids=list("abcd"),
        model_ids=[1, 2, 3],
        model_names=["x", "y", "z"],
    )
    # accuracies on b1: 1.0, 0.5, never seen -> filled with the column mean 0.75
    assert baseline_features(m, "b2", ["b1", "b2"], np.arange(3)).tolist() == [[1.0], [0.5], [0.75]]
    inside = m.benchmark == "b2"
    assert skip_reason(m, inside, n_models=3, n_benchmarks=2) == "only 3 models evaluated on it (needs 4)"
    assert skip_reason(m, inside, n_models=3, n_benchmarks=1) == "needs at least two benchmarks"
    assert skip_reason(m, inside, n_models=3, n_benchmarks=2, min_models=3) is None
    r, mae = probe_scores(np.array([0.2, 0.4, 0.6]), np.array([0.3, 0.4, 0.5]))
    assert r == pytest.approx(1.0) and mae == pytest.approx(0.2 / 3)
    assert probe_scores(np.array([0.5, 0.5]), np.array([0.1, 0.9]))[0] is None
    (row,) = probe_rows("run", {"b1": {"pearson_r": 0.5, "mae": 0.1, "n_models": 3, "dim": 8}})
    assert row == {
        "run_id": "run",
        "benchmark": "b1",
        "pearson_r": 0.5,
        "mae": 0.1,
        "n_models": 3,
        "details": {"dim": 8},
    }
