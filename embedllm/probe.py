"""The paper's benchmark probe: predict a model's accuracy on a benchmark from embeddings learned without it.

For each benchmark B a quick model is trained WITHOUT any of B's labels (the `text-only` preset, the paper's
model trained fast, without the default's benchmark input, at d = min(run's d, 64), `epochs` = 5, early-stopped on validation questions of the other benchmarks); a ridge
regression from those model embeddings predicts each model's observed accuracy on B, leave-one-model-out (each
model's prediction comes from a ridge fitted on the others; the ridge penalty is chosen inside each fold).
Pearson r and MAE compare held-out predictions with observed accuracies. Nothing learned from B's labels reaches
B's predictions except the other models' accuracies on B, which is what the probe is meant to exploit. Two
baselines are scored the same way: a ridge from the models' accuracies on the other benchmarks (`baseline_*`)
and from their mean accuracy elsewhere (`mean_baseline_*`).

Why d <= 64 and not the run's d: on the 112 x 36,000 synthetic benchmark, d = 64 and 5 epochs gave r = 0.79 /
0.81 (mmlu / logiqa) against 0.63 / 0.33 for d = 232 and 10 epochs, in half the time: a ridge on 111 models
does better with fewer features.
"""

from __future__ import annotations

import time

import numpy as np

from embedllm import metrics
from embedllm.model import EmbedLLMConfig, preset_config
from embedllm.training import Matrix, fit

PROBE_ALPHAS = np.logspace(-3, 3, 13)
MAX_DIM = 64
MIN_MODELS = 4


def loo_ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray = PROBE_ALPHAS) -> np.ndarray:
    """Return leave-one-out predictions of y (n,) from x (n, d) by ridge (standardised x, alpha chosen per fold)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas)).fit(x[keep], y[keep])
        out[i] = ridge.predict(x[i : i + 1])[0]
    return out


def probe_scores(observed: np.ndarray, predicted: np.ndarray) -> tuple[float | None, float]:
    """Return (Pearson r, MAE); r is None when either side is constant."""
    return metrics.pearson(observed, predicted), float(np.abs(observed - predicted).mean())


def probe_config(matrix: Matrix, run_dim: int, epochs: int = 5, max_dim: int = MAX_DIM) -> EmbedLLMConfig:
    """Return the quick model's config: the `text-only` preset at d = min(run's d, max_dim), no dim search."""
    return preset_config(
        "text-only",
        n_models=len(matrix.model_ids),
        question_dim=matrix.emb.shape[1],
        dim=min(run_dim, max_dim),
        dim_grid=[],
        epochs=epochs,
    )


def skip_reason(
    matrix: Matrix, inside: np.ndarray, n_models: int, n_benchmarks: int, min_models: int = MIN_MODELS
) -> str | None:
    """Return why a benchmark (rows INSIDE) cannot be probed, or None when it can."""
    if n_benchmarks < 2:
        return "needs at least two benchmarks"
    if n_models < min_models:
        return f"only {n_models} models evaluated on it (needs {min_models})"
    train, val = matrix.part("train", ~inside), matrix.part("val", ~inside)
    if not (train.labels >= 0).any() or not (val.labels >= 0).any():
        return "the other benchmarks have no train or validation labels"
    return None


def baseline_features(matrix: Matrix, bench: str, benchmarks: list[str], models: np.ndarray) -> np.ndarray:
    """Return the models' accuracies on the other benchmarks (n, B') with never-seen cells filled by column means."""
    elsewhere = np.stack(
        [metrics.per_model_accuracy(matrix.labels[matrix.benchmark == b]) for b in benchmarks if b != bench],
        axis=1,
    )[models]  # (n, B - 1), NaN if never seen
    elsewhere = elsewhere[:, np.isfinite(elsewhere).any(axis=0)]
    return np.where(np.isnan(elsewhere), np.nanmean(elsewhere, axis=0), elsewhere)


def probe_benchmark(
    matrix: Matrix, bench: str, config: EmbedLLMConfig, device=None, min_models: int = MIN_MODELS
) -> dict:
    """Return the probe's result for one benchmark: r and MAE of held-out predictions, baselines, or why skipped."""
    t0 = time.perf_counter()
    benchmarks = sorted(set(matrix.benchmark.tolist()))
    inside = matrix.benchmark == bench
    models = np.flatnonzero((matrix.labels[inside] >= 0).sum(axis=0) > 0)  # models evaluated on B
    reason = skip_reason(matrix, inside, len(models), len(benchmarks), min_models)
    if reason:
        return {"pearson_r": None, "mae": None, "n_models": int(len(models)), "skipped": reason}
    fitted = fit(matrix.part("train", ~inside), matrix.part("val", ~inside), config, device)
    vectors = fitted.model.model_embedding.weight.detach().cpu().numpy()  # (M, d)
    observed = metrics.per_model_accuracy(matrix.labels[inside])[models]
    r, mae = probe_scores(observed, loo_ridge(vectors[models], observed))
    elsewhere = baseline_features(matrix, bench, benchmarks, models)
    base_r, base_mae = probe_scores(observed, loo_ridge(elsewhere, observed))
    mean_r, mean_mae = probe_scores(observed, loo_ridge(elsewhere.mean(axis=1, keepdims=True), observed))
    return {
        "pearson_r": r,
        "mae": mae,
        "n_models": int(len(models)),
        "dim": config.dim,
        "epochs": len(fitted.history),
        "seconds": time.perf_counter() - t0,
        "observed_mean": float(observed.mean()),
        "observed_std": float(observed.std()),
        "baseline_pearson_r": base_r,
        "baseline_mae": base_mae,
        "mean_baseline_pearson_r": mean_r,
        "mean_baseline_mae": mean_mae,
    }


def probe_matrix(
    matrix: Matrix,
    run_dim: int,
    *,
    epochs: int = 5,
    max_dim: int = MAX_DIM,
    min_models: int = MIN_MODELS,
    device=None,
) -> dict[str, dict]:
    """Return {benchmark: probe result} for every benchmark of the matrix, in name order."""
    config = probe_config(matrix, run_dim, epochs, max_dim)
    return {
        bench: probe_benchmark(matrix, bench, config, device, min_models)
        for bench in sorted(set(matrix.benchmark.tolist()))
    }


def probe_rows(run_id: str, results: dict[str, dict]) -> list[dict]:
    """Return the benchmark_probe rows of a run: r, MAE and n_models as columns, everything else as details."""
    return [
        {
            "run_id": run_id,
            "benchmark": bench,
            "pearson_r": res["pearson_r"],
            "mae": res["mae"],
            "n_models": res["n_models"],
            "details": {k: v for k, v in res.items() if k not in ("pearson_r", "mae", "n_models")},
        }
        for bench, res in results.items()
    ]
