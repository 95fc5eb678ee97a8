"""Synthetic correctness matrices with known true probabilities, for benchmarks and tests.

The generative model mirrors what EmbedLLM assumes: each model has a general ability, per-benchmark skills and a
latent vector; each question has a difficulty and a latent vector near its benchmark's centre; the chance of a
correct answer is a guessing floor plus a logistic of ability + skill - difficulty + <model latent, question
latent>. Question "embeddings" are a noisy linear image of the question's latent state, so a learner that sees
only embeddings and labels can recover the structure; the true probabilities give the Bayes limit.

Two kinds of per-benchmark skill (`skills=`):

- `independent` (the default): every (model, benchmark) skill is its own draw, so a model's answers on one
  benchmark say nothing about its skill on another; few answers cannot beat the per-benchmark mean by much.
- `correlated`: skills come from a few latent abilities (knowledge, reasoning, maths) that benchmarks load on,
  each question with its own mix. Families share their abilities, one model in five is a specialist (strong in
  one ability), and a small residual per (model, benchmark) stays. Answers on mmlu then inform gpqa, and
  question-level mixes give routing something to exploit, as in real fleets.

Either way the matrix carries its generator's truth (`truth`): logit = features @ theta_m - difficulty, with the
guessing floor on top, and the prior of theta (mean, variance), so a benchmark can score an oracle that knows
everything about the questions and fits only the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PAPER_BENCHMARKS = {  # benchmark -> (share of questions, number of choices or 0 for generative)
    "mmlu": (0.39, 4),
    "truthfulqa": (0.02, 4),
    "social_iqa": (0.05, 3),
    "piqa": (0.05, 2),
    "medmcqa": (0.12, 4),
    "mathqa": (0.08, 5),
    "logiqa": (0.02, 4),
    "gsm8k": (0.04, 0),
    "gpqa": (0.01, 4),
    "asdiv": (0.06, 0),
    "other_mc": (0.16, 4),
}
# correlated skills: the latent ability each benchmark loads on most (0 knowledge, 1 reasoning, 2 maths)
ABILITIES = ("knowledge", "reasoning", "maths")
MAIN_ABILITY = {
    "mmlu": 0,
    "truthfulqa": 0,
    "medmcqa": 0,
    "gpqa": 0,
    "other_mc": 0,
    "social_iqa": 1,
    "piqa": 1,
    "logiqa": 1,
    "mathqa": 2,
    "gsm8k": 2,
    "asdiv": 2,
}
SKILLS = ("independent", "correlated")


@dataclass
class Truth:
    """The generator's parameters: logit(m, i) = features[i] @ theta[m] - difficulty[i]; p = floor + (1-floor) sigmoid."""

    features: np.ndarray  # (n_questions, k) what each question is (constant, benchmark, latent, ability mix)
    theta: np.ndarray  # (n_models, k) what each model is
    difficulty: np.ndarray  # (n_questions,)
    floor: np.ndarray  # (n_questions,) guessing floor: 1 / choices, 0 for generative
    prior_mean: np.ndarray  # (k,) the population theta is drawn from (mean and variance per coordinate)
    prior_var: np.ndarray  # (k,)

    def p_correct(self, theta: np.ndarray) -> np.ndarray:
        """Return P(correct) (n_questions, K) of model parameters theta (K, k)."""
        z = self.features @ theta.T - self.difficulty[:, None]
        return self.floor[:, None] + (1 - self.floor[:, None]) / (1 + np.exp(-z))

    def oracle_benchmark_accuracy(
        self, idx: np.ndarray, y: np.ndarray, codes: np.ndarray, n_bench: int, n_draws: int = 200, seed: int = 0
    ) -> np.ndarray:
        """Return the posterior-mean accuracy (n_bench,) of a model seen only through answers y on questions idx.

        The oracle of the few-label benchmarks: it knows every question's features and difficulty and the
        population prior, and fits only the model's theta (MAP, then 200 draws from the Laplace posterior), so
        no forecaster working from the same answers can do better on average.
        """
        import torch

        x = torch.as_tensor(self.features, dtype=torch.float64)
        d = torch.as_tensor(self.difficulty, dtype=torch.float64)
        f = torch.as_tensor(self.floor, dtype=torch.float64)
        mean = torch.as_tensor(self.prior_mean, dtype=torch.float64)
        var = torch.as_tensor(self.prior_var, dtype=torch.float64)
        xi, di, fi = x[idx], d[idx], f[idx]
        yi = torch.as_tensor(np.asarray(y), dtype=torch.float64)

        def neg_log_post(th: torch.Tensor) -> torch.Tensor:
            p = (fi + (1 - fi) * torch.sigmoid(xi @ th - di)).clamp(1e-9, 1 - 1e-9)
            return -(yi * p.log() + (1 - yi) * (1 - p).log()).sum() + 0.5 * ((th - mean) ** 2 / var).sum()

        th = mean.clone().requires_grad_(True)
        opt = torch.optim.LBFGS([th], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            value = neg_log_post(th)
            value.backward()
            return value

        opt.step(closure)
        hess = torch.autograd.functional.hessian(neg_log_post, th.detach())
        gen = torch.Generator().manual_seed(seed)
        eps = torch.randn(n_draws, len(mean), dtype=torch.float64, generator=gen)
        draws = th.detach() + eps @ torch.linalg.cholesky(torch.linalg.inv(hess)).T  # (n_draws, k)
        p = self.p_correct(draws.numpy()).mean(1)  # (Q,)
        return np.bincount(codes, weights=p, minlength=n_bench) / np.maximum(
            np.bincount(codes, minlength=n_bench), 1
        )


@dataclass
class SyntheticMatrix:
    """A generated matrix: labels, true probabilities, and what a warehouse would hold about each side."""

    labels: np.ndarray  # (n_models, n_questions) int8 in {0, 1}
    p_true: np.ndarray  # (n_models, n_questions) float32 true P(correct)
    embeddings: np.ndarray  # (n_questions, emb_dim) float32 question embeddings
    benchmark: np.ndarray  # (n_questions,) benchmark name per question
    n_choices: np.ndarray  # (n_questions,) options per question, 0 = generative
    split: np.ndarray  # (n_questions,) train / val / test (80/10/10, random)
    model_names: list[str]
    model_latent: np.ndarray  # (n_models, latent_dim) the planted model vectors
    truth: Truth | None = field(default=None, repr=False)

    def bayes_accuracy(self, mask: np.ndarray | None = None) -> float:
        """Return the accuracy of predicting with the true probabilities (the best any forecaster can do)."""
        best = np.maximum(self.p_true, 1 - self.p_true)
        return float(best[:, mask].mean() if mask is not None else best.mean())


def make_matrix(
    n_models: int = 112,
    n_questions: int = 36_000,
    *,
    latent_dim: int = 12,
    emb_dim: int = 384,
    emb_noise: float = 0.3,
    skills: str = "independent",
    seed: int = 0,
) -> SyntheticMatrix:
    """Return a synthetic correctness matrix with realistic structure (families of models, benchmark skills)."""
    if skills not in SKILLS:
        raise ValueError(f"skills must be one of {', '.join(SKILLS)}, got {skills!r}")
    rng = np.random.default_rng(seed)
    names = list(PAPER_BENCHMARKS)
    shares = np.array([PAPER_BENCHMARKS[b][0] for b in names])
    bench_idx = rng.choice(len(names), size=n_questions, p=shares / shares.sum())
    n_choices = np.array([PAPER_BENCHMARKS[b][1] for b in names])[bench_idx]

    n_families = max(1, n_models // 8)
    family = rng.integers(0, n_families, size=n_models)
    family_latent = rng.normal(0, 1, (n_families, latent_dim))
    model_latent = family_latent[family] + rng.normal(0, 0.5, (n_models, latent_dim))
    ability = rng.normal(0, 1, n_models)
    skill_sd = 0.6 if skills == "independent" else 0.2  # correlated: what the abilities leave unexplained
    skill = rng.normal(0, 1, (n_models, len(names))) * skill_sd

    centres = rng.normal(0, 1, (len(names), latent_dim))
    q_latent = centres[bench_idx] * 0.7 + rng.normal(0, 0.7, (n_questions, latent_dim))
    difficulty = rng.normal(0, 1, n_questions)

    onehot = np.eye(len(names))[bench_idx]
    features = [np.ones((n_questions, 1)), onehot, q_latent / np.sqrt(latent_dim)]
    theta = [ability[:, None], skill, model_latent]
    prior_var = [np.ones(1), np.full(len(names), skill_sd**2), np.full(latent_dim, 1.25)]
    prior_mean = [np.zeros(1 + len(names) + latent_dim)]
    if skills == "correlated":  # its own stream, so the independent matrices stay what they always were
        mix, strength, mean, var = _abilities(
            np.random.default_rng([seed, 1]), names, bench_idx, family, n_families
        )
        features.append(mix)
        theta.append(strength)
        prior_mean.append(mean)
        prior_var.append(var)
    features, theta = np.concatenate(features, 1), np.concatenate(theta, 1)
    floor = np.where(n_choices > 0, 1.0 / np.maximum(n_choices, 1), 0.0)
    truth = Truth(
        features=features,
        theta=theta,
        difficulty=difficulty,
        floor=floor,
        prior_mean=np.concatenate(prior_mean),
        prior_var=np.concatenate(prior_var),
    )
    p_true = truth.p_correct(theta).T.astype(np.float32)  # (n_models, n_questions)
    labels = (rng.random(p_true.shape) < p_true).astype(np.int8)

    state = np.concatenate([q_latent, difficulty[:, None], onehot] + ([mix] if skills == "correlated" else []), 1)
    proj = rng.normal(0, 1 / np.sqrt(state.shape[1]), (state.shape[1], emb_dim))
    emb = state @ proj + rng.normal(0, emb_noise, (n_questions, emb_dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)

    u = rng.random(n_questions)
    split = np.where(u < 0.8, "train", np.where(u < 0.9, "val", "test"))
    model_names = [f"synthetic/family{f:02d}-model{i:03d}" for i, f in enumerate(family)]
    return SyntheticMatrix(
        labels=labels,
        p_true=p_true,
        embeddings=emb.astype(np.float32),
        benchmark=np.array(names)[bench_idx],
        n_choices=n_choices,
        split=split,
        model_names=model_names,
        model_latent=model_latent.astype(np.float32),
        truth=truth,
    )


def _abilities(
    rng: np.random.Generator, names: list[str], bench_idx: np.ndarray, family: np.ndarray, n_families: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (question mix (Q, A), model strength (M, A), prior mean (A,), prior variance (A,)) of the abilities.

    A benchmark loads 1.0 on its main ability and 0.25 on the others; each question varies around that (sd
    0.3). A model's strength is its family's (sd 0.8) plus its own (sd 0.4), and a specialist (one in five) adds
    1.5 to one ability drawn at random.
    """
    n_abilities, n_models = len(ABILITIES), len(family)
    load = np.full((len(names), n_abilities), 0.25)
    load[np.arange(len(names)), [MAIN_ABILITY.get(b, 0) for b in names]] = 1.0
    mix = load[bench_idx] + rng.normal(0, 0.3, (len(bench_idx), n_abilities))
    strength = rng.normal(0, 0.8, (n_families, n_abilities))[family] + rng.normal(0, 0.4, (n_models, n_abilities))
    special = rng.random(n_models) < 0.2
    strength[np.flatnonzero(special), rng.integers(0, n_abilities, int(special.sum()))] += 1.5
    p_boost = 0.2 / n_abilities
    mean = np.full(n_abilities, 1.5 * p_boost)
    var = np.full(n_abilities, 0.64 + 0.16 + 1.5**2 * p_boost * (1 - p_boost))
    return mix, strength, mean, var


# ------------------------------------------------------------------------------------ EmbedLLM CSV layout

EMBEDLLM_CSV_COLUMNS = ["prompt_id", "model_id", "category_id", "label", "prompt", "model_name", "category"]
_WORDS = np.array(
    "the of a which is what an that following best describes answer value most likely when two "
    "three number cell energy law state market patient drug court theory process function water "
    "system change rate force species protein acid tax contract sample light heat".split()
)


def _synthetic_prompts(benchmark: np.ndarray, rng: np.random.Generator, words: int = 90) -> list[str]:
    """Return one multiple-choice-looking prompt per question (~600 characters, with commas and newlines)."""
    body = rng.choice(_WORDS, size=(len(benchmark), words))
    out = []
    for i, (b, w) in enumerate(zip(benchmark, body)):
        stem = " ".join(w[: words - 16])
        opts = "\n".join(
            f"{letter}. {' '.join(w[words - 16 + 4 * k : words - 12 + 4 * k])}" for k, letter in enumerate("ABCD")
        )
        out.append(f'[{b} #{i}] {stem}, "quoted", which one?\n{opts}\nAnswer:')
    return out


def write_embedllm_csv(
    matrix: SyntheticMatrix, directory, duplicate_fraction: float = 0.01, seed: int = 0, chunk_models: int = 8
) -> dict:
    """Write MATRIX in the published EmbedLLM layout; return counts of rows, duplicate pairs and conflicts.

    Files: train.csv / val.csv / test.csv (columns prompt_id, model_id, category_id, label, prompt, model_name,
    category; one row per (model, question) in the question's split), question_order.csv (prompt_id, prompt) and
    model_order.csv (model_id, model_name). A `duplicate_fraction` of the (model, question) pairs get a second row
    appended to their split file; half of those carry the flipped label (a conflict), like the published data.
    """
    from pathlib import Path

    import polars as pl

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_models, n_q = matrix.labels.shape
    cats = sorted(set(matrix.benchmark.tolist()))
    cat_id = np.searchsorted(np.array(cats), matrix.benchmark)
    prompts = pl.Series("prompt", _synthetic_prompts(matrix.benchmark, rng))
    names = pl.Series("model_name", matrix.model_names)
    pl.DataFrame({"prompt_id": np.arange(n_q), "prompt": prompts}).write_csv(directory / "question_order.csv")
    pl.DataFrame({"model_id": np.arange(n_models), "model_name": names}).write_csv(directory / "model_order.csv")

    def frame(m_idx: np.ndarray, q_idx: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
        """Return rows in the published column order."""
        return pl.DataFrame(
            {
                "prompt_id": q_idx,
                "model_id": m_idx,
                "category_id": cat_id[q_idx],
                "label": labels,
                "prompt": prompts.gather(q_idx),
                "model_name": names.gather(m_idx),
                "category": matrix.benchmark[q_idx],
            }
        ).select(EMBEDLLM_CSV_COLUMNS)

    counts = {"n_rows": 0, "n_duplicate_pairs": 0, "n_conflicts": 0}
    for split in ("train", "val", "test"):
        q = np.flatnonzero(matrix.split == split)
        with open(directory / f"{split}.csv", "wb") as fh:
            for start in range(0, n_models, chunk_models):
                m = np.arange(start, min(start + chunk_models, n_models))
                mm, qq = np.repeat(m, len(q)), np.tile(q, len(m))
                frame(mm, qq, matrix.labels[mm, qq]).write_csv(fh, include_header=start == 0)
                counts["n_rows"] += len(mm)
                dup = rng.random(len(mm)) < duplicate_fraction
                flip = dup & (rng.random(len(mm)) < 0.5)
                lab = np.where(flip, 1 - matrix.labels[mm, qq], matrix.labels[mm, qq])[dup]
                if dup.any():
                    frame(mm[dup], qq[dup], lab.astype(np.int8)).write_csv(fh, include_header=False)
                counts["n_rows"] += int(dup.sum())
                counts["n_duplicate_pairs"] += int(dup.sum())
                counts["n_conflicts"] += int(flip.sum())
    return counts
