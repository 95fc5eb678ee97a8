"""Onboarding maths: place a new model in a frozen trained run from a few answers (no warehouse, no SQL).

The fit. A trained EmbedLLM scores model m on question i as logit = (q_i * w) . p_m + b, where q_i = W e_i + b_W
is the projected question (plus its benchmark's shift, for a run with benchmark input) and (w, b) the classifier
collapsed to one logit (embedllm/model.py). With W and the classifier frozen the logit is LINEAR in the new
model's vector p, so fitting p from n labelled answers is a Bayesian logistic regression with n rows. We widen it
by one logit offset u_b per benchmark (a random effect:
the run's own vectors leave some per-model, per-benchmark skill and calibration unexplained, measurably so on
the benchmark matrix) and fit theta = (p, u):

    minimise  sum_i w_i [softplus(s_i) - y_i s_i] + 1/2 (theta - mu)' L (theta - mu),   s_i = z_i . p + u_b(i) + b

with z_i = q_i * w. The prior N(mu, L^-1) is the population of the run's existing models: their vectors p_m and
their offsets u_m (fitted on their labels with p_m fixed), mean and Ledoit-Wolf shrunk covariance. So the prior
is "an L2 prior towards the mean of the existing models", shaped like them. The objective is strictly convex;
damped Newton solves it exactly in ~10 steps, batched over bootstrap resamples (resampling the n answers with
replacement = integer weights w_i), one (B, k, k) solve per step. Uncertainty: each resample's fit plus one
draw from its Laplace posterior (bootstrap alone under-covers when the prior dominates: measured in
benchmarks/onboard_accuracy.py); the 5 % / 95 % quantiles of the per-benchmark forecast accuracy are the interval.

The questions. Chosen before the new model is seen, to make the forecast accuracy of EVERY benchmark as precise
as possible: a greedy Bayesian (c-optimal) design. Each question's expected information is the existing models'
mean p(1 - p) (forecasts near 0.5 tell most); its value is how much it shrinks the prior variance of each
benchmark's accuracy, which is largest where existing models disagree (large prior variance of the logit)
and falls for questions close in the projected embedding space to ones already chosen (the posterior is
updated after each pick, Sherman-Morrison, O(Q k) per pick). Every benchmark gets a floor of picks first.
Only questions with a known (task, doc_id) are eligible, so lm-eval can evaluate exactly those docs.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from embedllm.errors import ConfigError, EmbedLLMError

DEFAULT_QUESTIONS = 128
N_BOOTSTRAP = 30
INTERVAL = (0.05, 0.95)  # quantiles reported as predicted_low / predicted_high (a 90 % interval)


# ================================================================================================ the frozen run


@dataclass
class LinearForm:
    """A frozen run seen from one new model's side: logit(question i) = z[i] . theta + c[i]."""

    z: torch.Tensor  # (Q, k) float64
    c: torch.Tensor  # (Q,) float64

    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        """Return logits (Q, K) for vectors theta (K, k)."""
        return self.z @ theta.T + self.c[:, None]

    def subset(self, idx) -> LinearForm:
        """Return the form restricted to the questions at positions idx."""
        idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
        return LinearForm(z=self.z[idx], c=self.c[idx])

    def chunks(self, size: int = 8192):
        """Yield (start, sub-form) pieces of at most `size` questions."""
        for i in range(0, len(self.c), size):
            yield i, LinearForm(z=self.z[i : i + size], c=self.c[i : i + size])


@torch.no_grad()
def linear_form(model, q_emb: np.ndarray | torch.Tensor, benchmark=None, chunk: int = 8192) -> LinearForm:
    """Return the LinearForm (z = projected question * collapsed classifier) of a trained EmbedLLM, on CPU.

    BENCHMARK (Q,) names the questions' benchmarks for a model with a benchmark shift (None: unknown).
    """
    was_training = model.training
    model.eval()
    device = model.model_embedding.weight.device
    x = torch.tensor(np.asarray(q_emb, dtype=np.float32))  # a writable copy
    w, b = model.head_weights()  # (d,), ()
    bench = model.benchmark_codes(benchmark)
    parts = [
        model.project(x[i : i + chunk].to(device), None if bench is None else bench[i : i + chunk]).cpu().double()
        for i in range(0, len(x), chunk)
    ]
    model.train(was_training)
    q = torch.cat(parts) if parts else torch.zeros((0, model.config.dim), dtype=torch.float64)  # (Q, d)
    return LinearForm(z=q * w.detach().cpu().double(), c=torch.full((len(q),), float(b), dtype=torch.float64))


def existing_embeddings(model) -> torch.Tensor:
    """Return the run's trained model vectors (M, d) as float64 on CPU."""
    return model.model_embedding.weight.detach().cpu().double()


def with_offsets(form: LinearForm, codes: np.ndarray, n_bench: int) -> LinearForm:
    """Return the form widened by one indicator column per benchmark: logit = z.p + u[benchmark] + c."""
    onehot = F.one_hot(torch.as_tensor(codes, dtype=torch.long), n_bench).double()  # (Q, n_bench)
    return LinearForm(z=torch.cat([form.z, onehot], 1), c=form.c)


@torch.no_grad()
def benchmark_offsets(
    form: LinearForm,
    vectors: torch.Tensor,
    labels: np.ndarray,
    codes: np.ndarray,
    n_bench: int,
    *,
    ridge: float = 1.0,
    steps: int = 30,
) -> torch.Tensor:
    """Return per-model, per-benchmark logit offsets (M, n_bench) fitting each model's labels (Q, M; -1 = none).

    Offset u[m, b] maximises the likelihood of m's labels on benchmark b with the run fixed, under a
    N(0, 1/ridge) prior, so a model without labels on a benchmark keeps offset 0.
    """
    codes_t = torch.as_tensor(codes, dtype=torch.long)
    y_all = torch.as_tensor(labels)
    base = [(i, part.logits(vectors.double())) for i, part in form.chunks()]  # [(start, (chunk, M))]
    u = torch.zeros((len(vectors), n_bench), dtype=torch.float64)
    for _ in range(steps):
        grad = torch.zeros((n_bench, len(vectors)), dtype=torch.float64)
        curv = torch.zeros_like(grad)
        for i, s in base:
            c, y = codes_t[i : i + len(s)], y_all[i : i + len(s)]
            seen = (y >= 0).double()
            r = torch.sigmoid(s + u.T[c])  # (chunk, M)
            grad.index_add_(0, c, (r - y.clamp_min(0).double()) * seen)
            curv.index_add_(0, c, r * (1 - r) * seen)
        step = (grad.T + ridge * u) / (curv.T + ridge)
        u = u - step
        if float(step.abs().max()) < 1e-7:
            break
    return u


# ================================================================================================ the prior


@dataclass
class EmbeddingPrior:
    """Gaussian prior on a new model's vector: the population of the run's existing models."""

    mean: torch.Tensor  # (k,)
    precision: torch.Tensor  # (k, k)


def embedding_prior(vectors: torch.Tensor, strength: float = 1.0) -> EmbeddingPrior:
    """Return N(mean, covariance / strength) of existing vectors (M, k): Ledoit-Wolf on standardised columns."""
    from sklearn.covariance import ledoit_wolf

    e = vectors.detach().cpu().double()
    k = e.shape[1]
    if len(e) < 2:
        scale, corr = torch.ones(k, dtype=torch.float64), np.eye(k)
    else:
        scale = e.std(0).clamp_min(1e-6)
        corr = ledoit_wolf((e / scale).numpy())[0] + 1e-6 * np.eye(k)
    cov = torch.as_tensor(corr, dtype=torch.float64) * scale[:, None] * scale[None, :]
    precision = torch.linalg.inv(cov) * strength
    return EmbeddingPrior(mean=e.mean(0), precision=(precision + precision.T) / 2)


@dataclass
class Basis:
    """What onboarding holds fixed for one run: the linear form over all questions, the benchmarks, the prior."""

    form: LinearForm  # (Q, k) with k = dim (+ n_bench when offsets are fitted)
    dim: int  # d: length of the model vector p (the first d entries of theta)
    benchmarks: list[str]
    codes: np.ndarray  # (Q,) index into benchmarks
    existing: torch.Tensor  # (M, k) the existing models' theta
    prior: EmbeddingPrior

    @property
    def offsets(self) -> bool:
        """Return whether theta carries per-benchmark offsets after p."""
        return self.form.z.shape[1] > self.dim


def make_basis(
    model,
    q_emb: np.ndarray,
    benchmark: np.ndarray | None = None,
    existing_labels: np.ndarray | None = None,
    *,
    prior_strength: float = 1.0,
    population: np.ndarray | None = None,
) -> Basis:
    """Return the Basis of a trained model over questions q_emb; per-benchmark offsets when labels (Q, M) are given.

    POPULATION (a boolean mask over the run's models) limits the prior to those models, e.g. the well-labelled
    ones when the rest are to be placed from few labels; default all.
    """
    form = linear_form(model, q_emb, benchmark)
    vectors = existing_embeddings(model)
    benchmark = np.full(len(form.c), "all") if benchmark is None else np.asarray(benchmark).astype(str)
    names, codes = np.unique(benchmark, return_inverse=True)
    if existing_labels is not None:
        offsets = benchmark_offsets(form, vectors, existing_labels, codes, len(names))
        form, vectors = with_offsets(form, codes, len(names)), torch.cat([vectors, offsets], 1)
    if population is not None:
        vectors = vectors[torch.as_tensor(np.asarray(population, bool))]
    return Basis(
        form=form,
        dim=model.config.dim,
        benchmarks=[str(n) for n in names],
        codes=codes,
        existing=vectors,
        prior=embedding_prior(vectors, prior_strength),
    )


# ================================================================================================ the fit


def _objective(
    form: LinearForm, y: torch.Tensor, weights: torch.Tensor, prior: EmbeddingPrior, theta: torch.Tensor
) -> torch.Tensor:
    """Return the weighted negative log posterior (B,) of vectors theta (B, k)."""
    s = theta @ form.z.T + form.c  # (B, n)
    nll = (weights * (F.softplus(s) - y * s)).sum(1)  # (B,)
    diff = theta - prior.mean  # (B, k)
    return nll + 0.5 * ((diff @ prior.precision) * diff).sum(1)


def _hessian(form: LinearForm, weights: torch.Tensor, prior: EmbeddingPrior, theta: torch.Tensor) -> torch.Tensor:
    """Return the Hessians (B, k, k) of the objective at theta (B, k)."""
    r = torch.sigmoid(theta @ form.z.T + form.c)  # (B, n)
    return (form.z.T[None] * (weights * r * (1 - r))[:, None, :]) @ form.z + prior.precision


def _spd_solve(h: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Return H^-1 g for symmetric positive definite Hessians H (B, k, k) and gradients g (B, k), by Cholesky.

    Not torch.linalg.solve: its batched LU returned invalid pivots ("Pivots given to lu_solve must all be >= 1")
    inside a pipeline run on this machine's CPU build (the same matrices solve in a fresh process); the Hessian
    is positive definite by construction, and Cholesky is both the right factorisation and unaffected.
    """
    chol, info = torch.linalg.cholesky_ex(h)
    if bool((info != 0).any()):  # not numerically positive definite: a plain solve, one matrix at a time
        return torch.stack([torch.linalg.solve(hi, gi) for hi, gi in zip(h, g)])
    return torch.cholesky_solve(g.unsqueeze(-1), chol).squeeze(-1)


def fit_embeddings(
    form: LinearForm,
    labels: torch.Tensor,
    weights: torch.Tensor,
    prior: EmbeddingPrior,
    *,
    max_steps: int = 50,
    tol: float = 1e-9,
) -> torch.Tensor:
    """Return the MAP vectors (B, k), one per row of answer weights (B, n), by batched damped Newton."""
    y = labels.double()  # (n,)
    w = weights.double()  # (B, n)
    theta = prior.mean.expand(len(w), -1).clone()  # (B, k)
    f = _objective(form, y, w, prior, theta)
    for _ in range(max_steps):
        r = torch.sigmoid(theta @ form.z.T + form.c)  # (B, n)
        grad = (w * (r - y)) @ form.z + (theta - prior.mean) @ prior.precision  # (B, k)
        step = _spd_solve(_hessian(form, w, prior, theta), grad)
        decrement = (grad * step).sum(1)  # (B,) >= 0
        if float(decrement.max()) < tol:
            break
        t = torch.ones(len(w), dtype=torch.float64)
        for _ in range(30):  # backtracking (Armijo)
            cand = theta - t[:, None] * step
            fc = _objective(form, y, w, prior, cand)
            bad = fc > f - 1e-4 * t * decrement
            if not bool(bad.any()):
                break
            t = torch.where(bad, t / 2, t)
        better = fc <= f
        theta, f = torch.where(better[:, None], cand, theta), torch.where(better, fc, f)
    return theta


def bootstrap_weights(n: int, n_bootstrap: int, seed: int = 0) -> torch.Tensor:
    """Return answer weights (1 + n_bootstrap, n): row 0 all ones, then counts of n draws with replacement."""
    rng = np.random.default_rng(seed)
    rows = [np.ones(n)] + [np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(n_bootstrap)]
    return torch.as_tensor(np.stack(rows), dtype=torch.float64)


def posterior_draws(
    form: LinearForm, weights: torch.Tensor, prior: EmbeddingPrior, theta: torch.Tensor, seed: int = 0
) -> torch.Tensor:
    """Return one draw (B, k) from the Laplace posterior N(theta_b, H_b^-1) around each fit theta (B, k)."""
    gen = torch.Generator().manual_seed(seed)
    chol = torch.linalg.cholesky(_hessian(form, weights, prior, theta))  # H = L L'
    eps = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    return theta + torch.linalg.solve_triangular(chol.transpose(1, 2), eps.unsqueeze(-1), upper=True).squeeze(-1)


def fit_model_embedding(
    model,
    q_emb: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    prior_strength: float = 1.0,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (embedding (d,), bootstrap embeddings (n_bootstrap, d)) of ONE new model, everything else frozen.

    The plain fit: p only, prior from the run's model vectors. `place` is the same fit on a Basis, with the
    per-benchmark offsets and the benchmark forecasts.
    """
    basis = make_basis(model, np.asarray(q_emb, dtype=np.float32), prior_strength=prior_strength)
    placed = place(basis, np.arange(len(basis.codes)), labels, n_bootstrap=n_bootstrap, seed=seed, draws=False)
    return torch.as_tensor(placed.embedding), torch.as_tensor(placed.bootstrap[:, : basis.dim])


# ================================================================================================ forecasts


def benchmark_means(form: LinearForm, theta: torch.Tensor, codes: np.ndarray, n_bench: int) -> np.ndarray:
    """Return the mean forecast P(correct) (K, n_bench) of each vector theta (K, k) over each benchmark's questions."""
    codes_t = torch.as_tensor(codes, dtype=torch.long)
    sums = torch.zeros((n_bench, len(theta)), dtype=torch.float64)
    for i, part in form.chunks():
        sums.index_add_(0, codes_t[i : i + len(part.c)], torch.sigmoid(part.logits(theta.double())))
    counts = torch.bincount(codes_t, minlength=n_bench).double().clamp_min(1)
    return (sums / counts[:, None]).T.numpy()


@dataclass
class Placement:
    """A new model placed in a run: its vector, the uncertainty, its forecasts."""

    theta: np.ndarray  # (k,) the fitted (p, u)
    bootstrap: np.ndarray  # (B, k) the resampled fits (plus one posterior draw each when draws=True)
    dim: int
    benchmarks: list[str]
    accuracy: np.ndarray  # (n_bench,) forecast accuracy per benchmark (mean over ALL its questions)
    low: np.ndarray  # (n_bench,) INTERVAL quantiles over the bootstrap
    high: np.ndarray
    p_correct: np.ndarray  # (Q,) float32 forecast on every question of the basis
    seconds: float = 0.0

    @property
    def embedding(self) -> np.ndarray:
        """Return the model vector p (d,): what routing and model_embeddings use."""
        return self.theta[: self.dim]

    @property
    def offsets(self) -> dict[str, float]:
        """Return the fitted per-benchmark logit offsets ({} when the basis has none)."""
        extra = self.theta[self.dim :]
        return {b: float(v) for b, v in zip(self.benchmarks, extra)} if len(extra) else {}


def place(
    basis: Basis,
    idx: np.ndarray,
    labels: np.ndarray | torch.Tensor,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
    draws: bool = True,
) -> Placement:
    """Return the new model fitted on the answers `labels` to the questions at positions idx of the basis."""
    t0 = time.perf_counter()
    idx = np.asarray(idx, dtype=np.int64)
    y = torch.as_tensor(np.asarray(labels, dtype=np.float64))
    if len(y) != len(idx):
        raise ConfigError(f"{len(y)} labels for {len(idx)} questions: give one label per question")
    if len(y) == 0:
        raise ConfigError("no answers to fit: the new model needs at least one labelled question")
    sub = basis.form.subset(idx)
    weights = bootstrap_weights(len(idx), n_bootstrap, seed)
    theta = fit_embeddings(sub, y, weights, basis.prior)  # (1 + B, k)
    boot = posterior_draws(sub, weights[1:], basis.prior, theta[1:], seed) if draws and n_bootstrap else theta[1:]
    acc = benchmark_means(basis.form, torch.cat([theta[:1], boot]), basis.codes, len(basis.benchmarks))
    spread = acc[1:] if len(acc) > 1 else acc[:1]
    low, high = np.quantile(spread, INTERVAL[0], axis=0), np.quantile(spread, INTERVAL[1], axis=0)
    p = torch.cat([torch.sigmoid(part.logits(theta[:1]))[:, 0] for _, part in basis.form.chunks()])
    return Placement(
        theta=theta[0].numpy(),
        bootstrap=boot.numpy(),
        dim=basis.dim,
        benchmarks=basis.benchmarks,
        accuracy=acc[0],
        low=low,
        high=high,
        p_correct=p.float().numpy(),
        seconds=time.perf_counter() - t0,
    )


# ================================================================================================ few-label models

FEW_LABELS = 1024  # a run's model with labels on fewer questions than this (and than half the median) is placed


def few_label_models(labels: np.ndarray, limit: int = FEW_LABELS) -> np.ndarray:
    """Return a boolean mask (M,) of the models of labels (Q, M; -1 = none) that count as few-label.

    Few-label: labelled on fewer than LIMIT questions and fewer than half of what the median model has, so a
    fleet where every model has few labels (a tiny warehouse) is trained as usual, not placed against nobody.
    """
    counts = (labels >= 0).sum(0)
    if counts.size < 3:
        return np.zeros(counts.size, bool)
    return (counts < limit) & (counts < 0.5 * np.median(counts))


def interval_scale(
    basis: Basis, labels: np.ndarray, n: int, *, n_models: int = 24, min_questions: int = 100, seed: int = 0
) -> float:
    """Return the factor (>= 1) that widens placement intervals of models seen through n answers to 90 % coverage.

    The bootstrap + Laplace interval ignores what the frozen run gets wrong about every model (its fit is not
    exact). So some of the population's own models (LABELS (Q, K), well labelled) are hidden down to n random
    answers and placed; the factor is the 90 % quantile of |full-label accuracy - forecast| / half-width over
    their benchmarks with at least MIN_QUESTIONS labels (smaller ones would measure label noise, not the fit).
    """
    rng = np.random.default_rng(seed)
    ratios = []
    for j in rng.permutation(labels.shape[1])[:n_models]:
        seen = np.flatnonzero(labels[:, j] >= 0)
        if len(seen) <= n:
            continue
        idx = np.sort(rng.choice(seen, n, replace=False))
        placed = place(basis, idx, labels[idx, j], seed=int(j))
        for b in range(len(basis.benchmarks)):
            mine = seen[basis.codes[seen] == b]
            if len(mine) < min_questions:
                continue
            miss = labels[mine, j].mean() - placed.accuracy[b]
            half = placed.high[b] - placed.accuracy[b] if miss > 0 else placed.accuracy[b] - placed.low[b]
            ratios.append(abs(miss) / max(half, 1e-6))
    return max(1.0, float(np.quantile(ratios, INTERVAL[1] - INTERVAL[0]))) if ratios else 1.0


def widened(placed: Placement, scale: float) -> Placement:
    """Return the placement with its interval stretched by SCALE around the forecast (clipped to [0, 1])."""
    acc = placed.accuracy
    return replace(
        placed,
        low=np.clip(acc - scale * (acc - placed.low), 0, 1),
        high=np.clip(acc + scale * (placed.high - acc), 0, 1),
    )


def place_few_label(
    model,
    q_emb: np.ndarray,
    benchmark: np.ndarray,
    labels: np.ndarray,
    few: np.ndarray,
    *,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> dict[int, Placement]:
    """Return {column: Placement} for the run's few-label models (mask FEW over the columns of labels (Q, M)).

    The run stays frozen; each few-label model is placed from its own answers exactly as `embedllm onboard`
    places a new one, with the prior and the benchmark offsets of the well-labelled models, and its interval
    widened by `interval_scale` measured at its number of answers.
    """
    few = np.asarray(few, bool)
    dense = ~few
    if not few.any() or dense.sum() < 2:
        return {}
    population = np.where(few[None, :], -1, labels).astype(np.int8)  # offsets from the well-labelled models only
    basis = make_basis(model, q_emb, benchmark, population, population=dense)
    scales: dict[int, float] = {}  # by half-octave of the number of answers: 128 and 130 share one
    out = {}
    for j in np.flatnonzero(few):
        idx = np.flatnonzero(labels[:, j] >= 0)
        if len(idx) == 0:
            continue
        bucket = round(2 * math.log2(len(idx)))
        if bucket not in scales:
            scales[bucket] = interval_scale(basis, labels[:, dense], len(idx), seed=seed)
        placed = place(basis, idx, labels[idx, j], n_bootstrap=n_bootstrap, seed=seed + int(j))
        out[int(j)] = widened(placed, scales[bucket])
    return out


# ================================================================================================ question choice


@torch.no_grad()
def design_inputs(basis: Basis) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (w (Q,), G (k, n_bench)): each question's expected information, each benchmark accuracy's gradient.

    w_i = mean over existing models of p(1 - p); G[:, b] = mean over b's questions of w_i z_i, the gradient of
    benchmark b's accuracy with respect to theta (averaged over the existing models).
    """
    n_bench = len(basis.benchmarks)
    w = torch.cat(
        [
            (lambda p: (p * (1 - p)).mean(1))(torch.sigmoid(part.logits(basis.existing)))
            for _, part in basis.form.chunks()
        ]
    )  # (Q,)
    codes_t = torch.as_tensor(basis.codes, dtype=torch.long)
    g = torch.zeros((n_bench, basis.form.z.shape[1]), dtype=torch.float64)
    g.index_add_(0, codes_t, basis.form.z * w[:, None])
    return w, (g / torch.bincount(codes_t, minlength=n_bench).double().clamp_min(1)[:, None]).T


def choose_questions(
    basis: Basis, n: int, *, eligible: np.ndarray | None = None, floor: int | None = None, seed: int = 0
) -> np.ndarray:
    """Return positions of n eligible questions chosen greedily to shrink every benchmark accuracy's variance.

    The first picks satisfy a floor per benchmark (default n // (4 x benchmarks), at least 1), so every benchmark
    with an eligible question is covered; ties are broken by a tiny seeded jitter.
    """
    eligible = np.ones(len(basis.codes), bool) if eligible is None else np.asarray(eligible, bool)
    covered = np.unique(basis.codes[eligible])
    if n < len(covered):
        raise ConfigError(
            f"--questions {n} is smaller than the number of benchmarks ({len(covered)}); "
            f"choose at least {len(covered)} so every benchmark is covered"
        )
    n = min(n, int(eligible.sum()))
    floor = max(1, n // (4 * len(covered))) if floor is None else floor
    w, g = design_inputs(basis)
    z = basis.form.z  # (Q, k)
    post = torch.linalg.inv(basis.prior.precision)  # (k, k) posterior covariance
    var = ((z @ post) * z).sum(1)  # (Q,) z' Post z
    proj = z @ (post @ g)  # (Q, n_bench) z' Post g_b
    jitter = 1 + 1e-9 * torch.as_tensor(np.random.default_rng(seed).random(len(w)))
    codes_t = torch.as_tensor(basis.codes, dtype=torch.long)
    open_ = torch.tensor(eligible)  # a copy: picks close it
    count = torch.zeros(len(basis.benchmarks), dtype=torch.long)
    chosen = []
    for _ in range(n):
        gain = w * (proj**2).sum(1) / (1 + w * var) * jitter
        need = open_ & (count[codes_t] < floor)
        allowed = need if bool(need.any()) else open_
        i = int(torch.argmax(torch.where(allowed, gain, torch.tensor(-1.0, dtype=gain.dtype))))
        chosen.append(i)
        open_[i] = False
        count[codes_t[i]] += 1
        u = post @ z[i]  # (k,) rank-one update
        denom = 1 + w[i] * (z[i] @ u)
        zu = z @ u  # (Q,)
        var = var - w[i] * zu**2 / denom
        proj = proj - w[i] * zu[:, None] * (u @ g)[None, :] / denom
        post = post - w[i] * torch.outer(u, u) / denom
    return np.sort(np.asarray(chosen, dtype=np.int64))


# ================================================================================================ a run, as arrays


@dataclass
class RunView:
    """A trained run as onboarding sees it: the frozen model, every question it can forecast, existing labels."""

    run_id: str
    embedder: str
    model: object  # embedllm.model.EmbedLLM
    model_ids: list[int]  # the run's models, in embedding-table order
    question_ids: list[str]
    benchmark: np.ndarray  # (Q,) str
    task: np.ndarray  # (Q,) str
    doc_id: np.ndarray  # (Q,) int64, -1 = unknown (cannot be evaluated alone)
    q_emb: np.ndarray  # (Q, D) float32
    existing_labels: np.ndarray | None = None  # (Q, M) int8, -1 = no label
    prior_strength: float = 1.0

    @cached_property
    def basis(self) -> Basis:
        """Return the run's Basis (built once: projections, existing models' offsets, prior)."""
        return make_basis(
            self.model, self.q_emb, self.benchmark, self.existing_labels, prior_strength=self.prior_strength
        )

    @cached_property
    def _where(self) -> dict[str, int]:
        """Return {question id: position}."""
        return {q: i for i, q in enumerate(self.question_ids)}

    def positions(self, question_ids: list[str]) -> np.ndarray:
        """Return the positions of question_ids (-1 for ids the run cannot forecast)."""
        return np.asarray([self._where.get(q, -1) for q in question_ids], dtype=np.int64)


def dense_labels(question_ids: list[str], model_ids: list[int], labels: pl.DataFrame) -> np.ndarray:
    """Return the (Q, M) int8 label matrix (-1 = no label) of long rows (question_id, model_id, label)."""
    dense = np.full((len(question_ids), len(model_ids)), -1, dtype=np.int8)
    if labels.height:
        q_index = {q: i for i, q in enumerate(question_ids)}
        m_index = {m: j for j, m in enumerate(model_ids)}
        qi = labels["question_id"].replace_strict(q_index, return_dtype=pl.Int64).to_numpy()
        mj = labels["model_id"].replace_strict(m_index, return_dtype=pl.Int64).to_numpy()
        dense[qi, mj] = labels["label"].to_numpy()
    return dense


def choose_for_view(
    view: RunView, n: int = DEFAULT_QUESTIONS, seed: int = 0, *, tasks: list[str] | None = None
) -> list[str]:
    """Return the ids of the n questions that tell most about a new model (known task and doc id; optional tasks)."""
    eligible = view.doc_id >= 0
    if tasks is not None:
        eligible &= np.isin(view.task, list(tasks))
    if not eligible.any():
        where = f" of tasks {', '.join(tasks)}" if tasks else ""
        raise EmbedLLMError(
            f"no question{where} in run {view.run_id} has an lm-eval doc id: onboarding can only "
            "evaluate questions loaded by `embedllm evaluate` or an lm-eval import"
        )
    pos = choose_questions(view.basis, n, eligible=eligible, seed=seed)
    return [view.question_ids[i] for i in pos]


def samples_for(view: RunView, question_ids: list[str]) -> dict[str, list[int]]:
    """Return lm-eval's `samples` argument {task: sorted doc ids} selecting exactly question_ids."""
    out: dict[str, list[int]] = {}
    for i in view.positions(question_ids):
        out.setdefault(str(view.task[i]), []).append(int(view.doc_id[i]))
    return {t: sorted(ids) for t, ids in sorted(out.items())}


def forecast_frame(view: RunView, placed: Placement, pos: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    """Return the per-benchmark forecast table of a placement (observed = mean of the fitted answers)."""
    return placement_frame(placed, view.basis.codes, pos, labels)


def placement_frame(placed: Placement, codes: np.ndarray, pos: np.ndarray, labels: np.ndarray) -> pl.DataFrame:
    """Return the per-benchmark forecast table of a placement from answers LABELS at positions POS of the basis."""
    rows = []
    for j, b in enumerate(placed.benchmarks):
        mine = codes[pos] == j
        rows.append(
            {
                "benchmark": b,
                "predicted_accuracy": float(placed.accuracy[j]),
                "predicted_low": float(placed.low[j]),
                "predicted_high": float(placed.high[j]),
                "observed_accuracy": float(labels[mine].mean()) if mine.any() else None,
                "n_observed": int(mine.sum()),
                "n_benchmark_questions": int((codes == j).sum()),
            }
        )
    return pl.DataFrame(
        rows,
        schema={
            "benchmark": pl.String,
            "predicted_accuracy": pl.Float64,
            "predicted_low": pl.Float64,
            "predicted_high": pl.Float64,
            "observed_accuracy": pl.Float64,
            "n_observed": pl.Int32,
            "n_benchmark_questions": pl.Int64,
        },
    )
