"""Metrics for correctness forecasts and routing, on plain numpy arrays.

Conventions: `y` are 0/1 labels and `p` predicted P(correct), same shape. Matrices are (questions, models) with
-1 in `y` where a model has no label for a question; those cells are ignored everywhere.

- accuracy: share of labelled cells where (p > 0.5) equals the label.
- AUC: rank-based (Mann-Whitney U / (n_pos * n_neg)), tied scores get their average rank; NaN with one class.
- log loss: mean of -[y log p + (1-y) log(1-p)], p clipped to [1e-7, 1 - 1e-7].
- ECE (expected calibration error): `n_bins` equal-width bins of p over [0, 1] (p = 1 falls in the last bin);
  ECE = sum over bins of (cells in bin / all cells) * |mean label in bin - mean p in bin|. `calibration_bins`
  gives the bins themselves (the reliability diagram of the report).
- Pearson r: None (not NaN) when either side is constant, so JSON and tables show it as missing.
- routing accuracy: for each question pick the model with the highest p among the models labelled on that
  question; the score is the mean true label of the chosen models (questions with no label are skipped).
- single-best accuracy: the model with the best TRAIN accuracy, scored on the test questions it was labelled on.
- oracle accuracy: share of test questions (with at least one label) that some model answered correctly.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def _flat(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the labelled cells of y and p as 1-D float arrays."""
    y = np.asarray(y)
    p = np.asarray(p, dtype=np.float64)
    mask = y >= 0
    return y[mask].astype(np.float64), p[mask]


def accuracy(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> float:
    """Return the share of labelled cells where p > threshold matches the label."""
    y, p = _flat(y, p)
    return float(((p > threshold) == (y == 1)).mean()) if y.size else float("nan")


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Return 1-based ranks of x with tied values sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    _, first, counts = np.unique(x[order], return_index=True, return_counts=True)
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(first + (counts + 1) / 2, counts)
    return ranks


def auc(y: np.ndarray, p: np.ndarray) -> float:
    """Return the rank-based ROC AUC (ties averaged); NaN when only one class is present."""
    y, p = _flat(y, p)
    n_pos = int((y == 1).sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Return the mean binary cross-entropy with p clipped to [1e-7, 1 - 1e-7]."""
    y, p = _flat(y, p)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if y.size else float("nan")


def ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """Return the expected calibration error over n_bins equal-width bins of p."""
    y, p = _flat(y, p)
    if not y.size:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=y, minlength=n_bins) - np.bincount(bins, weights=p, minlength=n_bins))
    return float(gap.sum() / count.sum())  # sum_b (n_b/N) |mean_y_b - mean_p_b| = sum_b |sum_y_b - sum_p_b| / N


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return per equal-width bin of p: mean p, mean label, cell count (arrays of n_bins; empty bins nan, nan, 0)."""
    y, p = _flat(y, p)
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(bins, weights=p, minlength=n_bins) / count
        mean_y = np.bincount(bins, weights=y, minlength=n_bins) / count
    return mean_p, mean_y, count


def calibration_curve(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> dict[str, list[float]]:
    """Return per equal-width bin: mean p, mean label and cell count (empty bins omitted)."""
    mean_p, mean_y, count = calibration_bins(y, p, n_bins)
    keep = count > 0
    return {
        "mean_p": mean_p[keep].tolist(),
        "mean_label": mean_y[keep].tolist(),
        "count": count[keep].astype(int).tolist(),
    }


def pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    """Return Pearson's r of X and Y, or None when there are fewer than 2 values or either side is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or x.std() < 1e-12 or y.std() < 1e-12:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def routing_choice(p: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    """Return per question (row) the index of the model with the highest p (among labelled models if y given)."""
    p = np.asarray(p, dtype=np.float64)
    if y is not None:
        p = np.where(np.asarray(y) >= 0, p, -np.inf)
    return p.argmax(axis=1)


def routing_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    """Return the mean true label of the model chosen per question by argmax p (labelled models only)."""
    y = np.asarray(y)
    rows = (y >= 0).any(axis=1)
    if not rows.any():
        return float("nan")
    chosen = routing_choice(p[rows], y[rows])
    return float(y[rows][np.arange(rows.sum()), chosen].mean())


def per_model_accuracy(y: np.ndarray) -> np.ndarray:
    """Return each model's (column's) accuracy over its labelled cells; NaN for a model with none."""
    y = np.asarray(y)
    seen = (y >= 0).sum(axis=0)
    right = (y == 1).sum(axis=0)
    return np.where(seen > 0, right / np.maximum(seen, 1), np.nan)


def single_best_accuracy(train_y: np.ndarray, test_y: np.ndarray) -> float:
    """Return the test accuracy of the model with the best train accuracy (first such model on ties)."""
    train_acc = per_model_accuracy(train_y)
    if np.all(np.isnan(train_acc)):
        return float("nan")
    return float(per_model_accuracy(test_y)[int(np.nanargmax(train_acc))])


def oracle_accuracy(y: np.ndarray) -> float:
    """Return the share of questions (with any label) that at least one model answered correctly."""
    y = np.asarray(y)
    rows = (y >= 0).any(axis=1)
    return float((y[rows] == 1).any(axis=1).mean()) if rows.any() else float("nan")


def correctness_metrics(y: np.ndarray, p: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Return accuracy, AUC, log loss and ECE of forecasts p against labels y, keys prefixed."""
    return {
        f"{prefix}accuracy": accuracy(y, p),
        f"{prefix}auc": auc(y, p),
        f"{prefix}log_loss": log_loss(y, p),
        f"{prefix}ece": ece(y, p),
    }
