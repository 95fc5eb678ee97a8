"""The EmbedLLM model: shapes, the all-models identity, noise, checkpoints, learning a known structure; KNN."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedllm import metrics
from embedllm.errors import ConfigError
from embedllm.model import EmbedderMismatch, EmbedLLM, EmbedLLMConfig, KNNBaseline, load_checkpoint, preset_config
from embedllm.synthetic import make_matrix
from embedllm.training import Part, fit, matrix_from_synthetic, train_matrix


@pytest.fixture
def small_model():
    """A randomly initialised model: 5 models, 16-d questions, d = 4."""
    torch.manual_seed(0)
    return EmbedLLM(EmbedLLMConfig(n_models=5, question_dim=16, dim=4)).eval()


def test_forward_and_all_model_scores_have_the_documented_shapes(small_model):
    q = torch.randn(7, 16)
    assert small_model(torch.tensor([0, 4, 2]), q[:3]).shape == (3,)
    assert small_model.project(q).shape == (7, 4)
    assert small_model.logits_all(q).shape == (7, 5)
    p = small_model.predict_all(q.numpy())
    assert p.shape == (7, 5) and p.dtype == np.float32 and ((p > 0) & (p < 1)).all()


def test_scoring_all_models_equals_the_classifier_on_each_pair(small_model):
    q = torch.randn(7, 16)
    models, questions = torch.arange(5).repeat(7), torch.arange(7).repeat_interleave(5)
    per_pair = small_model(models, q[questions]).reshape(7, 5)
    torch.testing.assert_close(small_model.logits_all(q), per_pair, atol=1e-5, rtol=1e-5)


def test_the_collapsed_linear_form_gives_the_same_logits(small_model):
    q = torch.randn(6, 16)
    A, c = small_model.collapsed()
    assert A.shape == (16, 5) and c.shape == (5,)
    torch.testing.assert_close(q @ A + c, small_model.logits_all(q), atol=1e-5, rtol=1e-5)
    vectors = torch.randn(2, 4)
    A2, c2 = small_model.collapsed(vectors)
    torch.testing.assert_close(q @ A2 + c2, small_model.logits_all(q, vectors), atol=1e-5, rtol=1e-5)


def test_logit_is_the_difference_of_the_two_classifier_outputs(small_model):
    q = torch.randn(1, 16)
    with torch.no_grad():
        out = small_model.classifier(small_model.model_embedding.weight[2:3] * small_model.project(q))
        assert small_model(torch.tensor([2]), q).item() == pytest.approx((out[0, 1] - out[0, 0]).item(), abs=1e-6)


def test_noise_is_added_in_training_mode_only(small_model):
    q = torch.randn(3, 16)
    small_model.eval()
    torch.testing.assert_close(small_model.project(q), small_model.project(q))
    small_model.train()
    assert not torch.allclose(small_model.project(q), small_model.project(q))
    small_model.config.noise_alpha = 0.0
    torch.testing.assert_close(small_model.project(q), small_model.project(q))


def test_checkpoint_round_trip_keeps_config_meta_and_weights(small_model, tmp_path):
    small_model.meta = {"model_ids": [3, 4, 5, 6, 7], "embedder": "all-MiniLM-L6-v2"}
    path = small_model.save_checkpoint(tmp_path / "ckpt" / "run.pt")
    loaded = load_checkpoint(path)
    assert loaded.config == small_model.config and loaded.meta == small_model.meta and not loaded.training
    q = torch.randn(4, 16)
    torch.testing.assert_close(loaded.logits_all(q), small_model.logits_all(q))


def test_question_embeddings_of_another_size_are_refused(small_model):
    with pytest.raises(EmbedderMismatch, match="have 8 dimensions but the model expects 16"):
        small_model.logits_all(torch.randn(2, 8))


def test_presets_fix_the_paper_recipe_and_reject_unknown_names():
    paper = preset_config("paper", n_models=112, question_dim=768)
    assert (
        paper.optimizer,
        paper.lr,
        paper.batch_size,
        paper.epochs,
        paper.dim,
        paper.noise_alpha,
        paper.weight_decay,
        paper.patience,
        paper.batching,
    ) == ("adam", 1e-4, 2048, 50, 232, 0.05, 1e-5, None, "pairs")
    with pytest.raises(ConfigError, match="did you mean 'paper'"):
        preset_config("papr", n_models=2, question_dim=4)
    with pytest.raises(ConfigError, match="batching"):
        EmbedLLMConfig(batching="rows").validate()


@pytest.fixture(scope="module")
def known_structure():
    """12 synthetic models x 2,000 questions with planted abilities, skills and latent vectors."""
    sm = make_matrix(n_models=12, n_questions=2000, emb_dim=64, seed=1)
    return sm, matrix_from_synthetic(sm)


def test_default_preset_clearly_beats_the_per_model_mean(known_structure):
    sm, matrix = known_structure
    result = train_matrix(
        matrix, preset_config("default", n_models=12, question_dim=64, dim_grid=[16]), "cpu", knn=False
    )
    m = result.metrics
    # the per-model mean ignores the question; the model must read the question embedding to do better
    assert m["test_accuracy"] >= m["model_mean_test_accuracy"] + 0.03
    assert m["test_auc"] > 0.70 and m["test_ece"] < 0.06
    assert m["test_accuracy"] <= sm.bayes_accuracy(sm.split == "test") + 0.02  # nothing beats the truth by much


def test_paper_batching_of_pairs_learns_too(known_structure):
    _, matrix = known_structure
    config = preset_config("paper", n_models=12, question_dim=64, dim=16, lr=3e-3, epochs=4)
    result = fit(matrix.part("train"), matrix.part("val"), config, "cpu")
    test = matrix.part("test")
    p = result.model.predict_all(test.emb)
    prior = metrics.per_model_accuracy(matrix.part("train").labels)
    assert metrics.accuracy(test.labels, p) > metrics.accuracy(test.labels, np.broadcast_to(prior, p.shape)) + 0.02
    assert len(result.history) == 4 and result.best_epoch == 4  # the paper recipe keeps the last epoch


def test_early_stopping_keeps_the_best_validation_epoch(known_structure):
    _, matrix = known_structure
    config = preset_config(
        "default",
        n_models=12,
        question_dim=64,
        dim=16,
        dim_grid=[],
        lr=0.05,
        lr_schedule="constant",
        weight_decay=0.0,
        noise_alpha=0.0,
        epochs=30,
        patience=2,
    )
    result = fit(matrix.part("train"), matrix.part("val"), config, "cpu")
    losses = [h["val_log_loss"] for h in result.history]
    assert result.val_log_loss == min(losses) and result.best_epoch == 1 + int(np.argmin(losses))
    assert len(losses) - result.best_epoch <= 2
    val = matrix.part("val")
    assert metrics.log_loss(val.labels, result.model.predict_all(val.emb, val.benchmark)) == pytest.approx(
        result.val_log_loss
    )


def test_knn_votes_over_the_nearest_train_questions_by_cosine():
    # train questions at angles; model 0 is right on the two "east" questions, model 1 only on "north"
    train_emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [-1, 0]], dtype=np.float32)
    labels = np.array([[1, 0], [1, 0], [0, 1], [0, 0]], dtype=np.int8)
    knn = KNNBaseline(train_emb, labels, k=3)
    # query near east: nearest are [1,0], [0.9,0.1], then [0,1] -> model 0: 2/3, model 1: 1/3
    np.testing.assert_allclose(knn.predict_proba(np.array([[10.0, 0.5]])), [[2 / 3, 1 / 3]], rtol=1e-6)
    scores = knn.tune_k(np.array([[1.0, 0.05], [0.05, 1.0]]), np.array([[1, 0], [0, 1]], dtype=np.int8), ks=(1, 3))
    # k=1: each query's nearest question votes right for both models (4/4). k=3: the "east" query is right for
    # both models; the "north" query's 3 nearest are [0,1], [.9,.1], [1,0] -> model 0 votes 2/3 (wrong, label 0),
    # model 1 votes 1/3 (wrong, label 1) -> 2/4
    assert scores == {1: 1.0, 3: 0.5} and knn.k == 1


def test_knn_skips_neighbours_a_model_never_answered():
    train_emb = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    labels = np.array([[-1, 1], [1, 0], [-1, 1]], dtype=np.int8)
    knn = KNNBaseline(train_emb, labels, k=2)
    # neighbours of [1, 0]: rows 0 and 1; model 0 only has row 1 (label 1); model 1 has both (1, 0)
    np.testing.assert_allclose(knn.predict_proba(np.array([[1.0, 0.0]])), [[1.0, 0.5]])


def test_fit_accepts_parts_directly():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 8)).astype(np.float32)
    labels = (rng.random((60, 3)) < 0.5).astype(np.int8)
    config = EmbedLLMConfig(n_models=3, question_dim=8, dim=4, epochs=2, batch_size=16, batching="questions")
    result = fit(Part(emb[:40], labels[:40]), Part(emb[40:], labels[40:]), config, "cpu")
    assert len(result.history) == 2 and np.isfinite(result.val_log_loss)


# ------------------------------------------------------------------------------------------------ benchmark input


@pytest.fixture
def shifted_model():
    """A randomly initialised model with a benchmark shift over two benchmarks (rows: unknown, arc, gsm8k)."""
    torch.manual_seed(0)
    config = EmbedLLMConfig(n_models=5, question_dim=16, dim=4, benchmark_shift=True, benchmarks=["arc", "gsm8k"])
    model = EmbedLLM(config).eval()
    with torch.no_grad():
        model.benchmark_shift.weight.normal_()
    return model


def test_benchmark_names_pick_their_shift_and_unknown_names_the_unknown_row(shifted_model):
    q = torch.randn(4, 16)
    codes = shifted_model.benchmark_codes(np.array(["gsm8k", "arc", "mmlu", "arc"]))
    assert codes.tolist() == [2, 1, 0, 1]
    with_names = shifted_model.predict_all(q.numpy(), np.array(["gsm8k", "arc", "mmlu", "arc"]))
    free_text = shifted_model.predict_all(q.numpy())
    np.testing.assert_allclose(with_names[2], free_text[2], rtol=1e-6)  # an unknown benchmark = free text
    assert not np.allclose(with_names[[0, 1, 3]], free_text[[0, 1, 3]])
    one = shifted_model.logits_all(q[1:2], bench=torch.tensor([1]))[0]
    torch.testing.assert_close(shifted_model.logits_all(q, bench=codes)[1], one)


def test_routing_form_of_a_shifted_model_is_the_unknown_benchmark(shifted_model):
    q = torch.randn(6, 16)
    A, c = shifted_model.collapsed()
    torch.testing.assert_close(q @ A + c, shifted_model.logits_all(q), atol=1e-5, rtol=1e-5)


def test_checkpoints_without_benchmark_input_still_load(small_model, tmp_path):
    path = small_model.save_checkpoint(tmp_path / "old.pt")
    blob = torch.load(path, weights_only=True)
    for key in ("benchmark_shift", "hide_benchmark", "benchmarks"):  # a checkpoint written before these fields
        del blob["config"][key]
    torch.save(blob, path)
    loaded = load_checkpoint(path)
    assert loaded.benchmark_shift is None
    q = torch.randn(3, 16)
    torch.testing.assert_close(loaded.logits_all(q), small_model.logits_all(q))
    np.testing.assert_allclose(
        loaded.predict_all(q.numpy(), np.array(["arc"] * 3)), small_model.predict_all(q.numpy())
    )


def test_benchmark_input_learns_what_the_question_text_does_not_say():
    # embeddings that carry nothing about the benchmark, and models whose skill differs by benchmark: only the
    # benchmark tells them apart, so the default (with benchmark input) must beat the text-only preset
    rng = np.random.default_rng(3)
    n_q, n_m, names = 3000, 8, np.array(["arc", "gsm8k", "mmlu"])
    benchmark = names[rng.integers(0, 3, n_q)]
    skill = rng.normal(0, 1.5, size=(3, n_m))  # (benchmark, model) logit
    codes = np.searchsorted(names, benchmark)
    labels = (rng.random((n_q, n_m)) < 1 / (1 + np.exp(-skill[codes]))).astype(np.int8)
    emb = rng.normal(size=(n_q, 16)).astype(np.float32)
    split = np.array(["train", "val", "test"])[rng.choice(3, n_q, p=[0.7, 0.1, 0.2])]
    from embedllm.training import Matrix

    matrix = Matrix(
        emb, labels, split, benchmark, [f"q{i}" for i in range(n_q)], list(range(n_m)), list("abcdefgh")
    )
    figures = {
        preset: train_matrix(
            matrix, preset_config(preset, n_models=n_m, question_dim=16, dim_grid=[8]), "cpu", knn=False
        ).metrics
        for preset in ("default", "text-only")
    }
    p_true = 1 / (1 + np.exp(-skill[codes[split == "test"]]))
    bayes = float(((p_true > 0.5) == labels[split == "test"]).mean())
    assert figures["default"]["test_accuracy"] >= figures["text-only"]["test_accuracy"] + 0.05
    assert figures["default"]["test_accuracy"] >= bayes - 0.02
    assert figures["default"]["route_accuracy"] > figures["text-only"]["route_accuracy"]
