"""Few-label models in a trained run: placed from their own answers like an onboarded model, with intervals."""

from __future__ import annotations

import numpy as np
import polars as pl
from test_train import EMBEDDER, write_embeddings

import warehouse
from embedllm.ids import question_id
from embedllm.onboarding import few_label_models
from embedllm.synthetic import make_matrix
from tasks.forecast import forecast
from tasks.load import Batch, Meta, load_batches
from tasks.route import route
from tasks.train import train

N_MODELS, N_QUESTIONS, N_SPARSE, N_LABELS = 14, 1500, 3, 120


def load_sparse(con, keep: dict[int, np.ndarray]):
    """Load a correlated-skills matrix, the models in KEEP with labels on those question positions only."""
    sm = make_matrix(N_MODELS, N_QUESTIONS, emb_dim=16, skills="correlated", seed=2)
    qids = [question_id(f"syn_{b}", str(i)) for i, b in enumerate(sm.benchmark)]
    batches = []
    for m, name in enumerate(sm.model_names):
        rows = np.arange(N_QUESTIONS) if m not in keep else keep[m]
        frame = pl.DataFrame(
            {
                "question_id": [qids[i] for i in rows],
                "benchmark": sm.benchmark[rows].tolist(),
                "task": [f"syn_{b}" for b in sm.benchmark[rows]],
                "prompt": [f"question {i}" for i in rows],
                "label": sm.labels[m, rows].astype(np.int8),
                "value": sm.labels[m, rows].astype(float),
            }
        )
        batches.append(Batch(Meta(kind="lm-eval-import", content_hash=f"sparse-{name}", model=name), frame))
    load_batches(con, batches)
    write_embeddings(con, qids, sm.embeddings, EMBEDDER)
    return sm


def test_few_label_rule_needs_both_few_answers_and_well_labelled_peers():
    counts = np.full((3000, 10), 1, np.int8)
    counts[100:, 9] = -1  # the last model: 100 labels, the others 3,000
    assert few_label_models(counts).tolist() == [False] * 9 + [True]
    assert not few_label_models(np.ones((50, 5), np.int8)).any()  # every model small: trained as usual
    assert not few_label_models(np.ones((5000, 5), np.int8)).any()


def test_few_label_models_get_placed_forecasts_with_intervals_closer_than_their_plain_mean(con, warehouse_path):
    rng = np.random.default_rng(0)
    sparse = list(range(N_MODELS - N_SPARSE, N_MODELS))
    keep = {m: np.sort(rng.choice(N_QUESTIONS, N_LABELS, replace=False)) for m in sparse}
    sm = load_sparse(con, keep)
    con.close()
    result = train(warehouse_path, require_validation=False, overrides={"dim_grid": [16], "epochs": 6})
    written = forecast(warehouse_path, result.run_id, probe=False)
    assert sorted(written.placed) == sorted(sm.model_names[m] for m in sparse)

    with warehouse.session(warehouse_path, read_only=True) as c:
        bench = c.sql(
            "SELECT m.name, f.benchmark, f.predicted_accuracy, f.predicted_low, f.predicted_high, f.source, "
            "f.n_observed FROM latest_benchmark_forecasts f JOIN models m USING (model_id)"
        ).pl()
        sources = c.sql(
            "SELECT m.name, min(f.source) AS source, max(f.source) AS same, count(*) AS n "
            "FROM latest_correctness_forecasts f JOIN models m USING (model_id) GROUP BY m.name"
        ).pl()
        vectors = dict(c.sql("SELECT model, source FROM latest_model_embeddings").fetchall())
    placed_names = {sm.model_names[m] for m in sparse}
    for name, source, same, n in sources.iter_rows():
        assert source == same == ("placed" if name in placed_names else "trained") and n == N_QUESTIONS
        assert vectors[name] == source
    mine = bench.filter(pl.col("source") == "placed")
    assert set(mine["name"]) == placed_names and mine["n_observed"].sum() == N_SPARSE * N_LABELS
    assert (mine["predicted_low"] <= mine["predicted_accuracy"]).all()
    assert (mine["predicted_accuracy"] <= mine["predicted_high"]).all()
    assert bench.filter(pl.col("source") == "trained")["predicted_low"].null_count() == bench.height - mine.height

    names, codes = np.unique(sm.benchmark, return_inverse=True)
    placed_err, mean_err = [], []
    for m in sparse:
        truth = np.bincount(codes, weights=sm.p_true[m]) / np.bincount(codes)
        got = mine.filter(pl.col("name") == sm.model_names[m]).sort("benchmark")["predicted_accuracy"].to_numpy()
        y, seen = sm.labels[m, keep[m]], codes[keep[m]]
        plain = np.array([y[seen == b].mean() if (seen == b).any() else y.mean() for b in range(len(names))])
        placed_err.append(np.abs(got - truth).mean())
        mean_err.append(np.abs(plain - truth).mean())
    assert np.mean(placed_err) < np.mean(mean_err)  # 120 answers over 11 benchmarks: the mean is noisy

    routed = route(warehouse_path, ["question 7"], q_emb=sm.embeddings[:1])  # placed vectors route too
    assert routed[0].model in set(sm.model_names) and len(routed[0].ranked) == 3
