"""Synthetic correctness matrices with known true probabilities, for benchmarks and tests.

The generative model mirrors what EmbedLLM assumes: each model has a general ability, per-benchmark skills and a
latent vector; each question has a difficulty and a latent vector near its benchmark's centre; the chance of a
correct answer is a guessing floor plus a logistic of ability + skill - difficulty + <model latent, question
latent>. Question "embeddings" are a noisy linear image of the question's latent state, so a learner that sees
only embeddings and labels can recover the structure; the true probabilities give the Bayes limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAPER_BENCHMARKS = {  # benchmark -> (share of questions, number of choices or 0 for generative)
    "mmlu": (0.39, 4), "truthfulqa": (0.02, 4), "social_iqa": (0.05, 3), "piqa": (0.05, 2),
    "medmcqa": (0.12, 4), "mathqa": (0.08, 5), "logiqa": (0.02, 4), "gsm8k": (0.04, 0),
    "gpqa": (0.01, 4), "asdiv": (0.06, 0), "other_mc": (0.16, 4),
}


@dataclass
class SyntheticMatrix:
    """A generated matrix: labels, true probabilities, and what a warehouse would hold about each side."""

    labels: np.ndarray          # (n_models, n_questions) int8 in {0, 1}
    p_true: np.ndarray          # (n_models, n_questions) float32 true P(correct)
    embeddings: np.ndarray      # (n_questions, emb_dim) float32 question embeddings
    benchmark: np.ndarray       # (n_questions,) benchmark name per question
    n_choices: np.ndarray       # (n_questions,) options per question, 0 = generative
    split: np.ndarray           # (n_questions,) train / val / test (80/10/10, random)
    model_names: list[str]
    model_latent: np.ndarray    # (n_models, latent_dim) the planted model vectors

    def bayes_accuracy(self, mask: np.ndarray | None = None) -> float:
        """Return the accuracy of predicting with the true probabilities (the best any forecaster can do)."""
        best = np.maximum(self.p_true, 1 - self.p_true)
        return float(best[:, mask].mean() if mask is not None else best.mean())


def make_matrix(n_models: int = 112, n_questions: int = 36_000, *, latent_dim: int = 12, emb_dim: int = 384,
                emb_noise: float = 0.3, seed: int = 0) -> SyntheticMatrix:
    """Return a synthetic correctness matrix with realistic structure (families of models, benchmark skills)."""
    rng = np.random.default_rng(seed)
    names = list(PAPER_BENCHMARKS)
    shares = np.array([PAPER_BENCHMARKS[b][0] for b in names])
    bench_idx = rng.choice(len(names), size=n_questions, p=shares / shares.sum())
    n_choices = np.array([PAPER_BENCHMARKS[b][1] for b in names])[bench_idx]

    n_families = max(1, n_models // 8)
    family = rng.integers(0, n_families, size=n_models)
    family_latent = rng.normal(0, 1, (n_families, latent_dim))
    model_latent = family_latent[family] + rng.normal(0, 0.5, (n_models, latent_dim))
    ability = rng.normal(0, 1, n_models)[:, None]
    skill = rng.normal(0, 0.6, (n_models, len(names)))

    centres = rng.normal(0, 1, (len(names), latent_dim))
    q_latent = centres[bench_idx] * 0.7 + rng.normal(0, 0.7, (n_questions, latent_dim))
    difficulty = rng.normal(0, 1, n_questions)

    logit = ability + skill[:, bench_idx] - difficulty[None, :] + model_latent @ q_latent.T / np.sqrt(latent_dim)
    floor = np.where(n_choices > 0, 1.0 / np.maximum(n_choices, 1), 0.0)[None, :]
    p_true = (floor + (1 - floor) / (1 + np.exp(-logit))).astype(np.float32)
    labels = (rng.random(p_true.shape) < p_true).astype(np.int8)

    state = np.concatenate([q_latent, difficulty[:, None], np.eye(len(names))[bench_idx]], axis=1)
    proj = rng.normal(0, 1 / np.sqrt(state.shape[1]), (state.shape[1], emb_dim))
    emb = state @ proj + rng.normal(0, emb_noise, (n_questions, emb_dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)

    u = rng.random(n_questions)
    split = np.where(u < 0.8, "train", np.where(u < 0.9, "val", "test"))
    model_names = [f"synthetic/family{f:02d}-model{i:03d}" for i, f in enumerate(family)]
    return SyntheticMatrix(labels=labels, p_true=p_true, embeddings=emb.astype(np.float32),
                           benchmark=np.array(names)[bench_idx], n_choices=n_choices, split=split,
                           model_names=model_names, model_latent=model_latent.astype(np.float32))
