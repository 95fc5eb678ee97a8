"""Forecast stage: a training run -> correctness forecasts for every model x question, benchmark forecasts, probe.

- correctness_forecasts: P(correct) for EVERY model of the run on EVERY question embedded with the run's
  embedder, evaluated or not (112 x 36k = 4M rows are built as one Arrow table and bulk-inserted).
- benchmark_forecasts: per model and benchmark, predicted accuracy = mean forecast over all the benchmark's
  questions; observed accuracy = mean label over the questions the model was evaluated on (n_observed of them).
  Predicted values for evaluated questions are in-sample for training questions: use the probe (below) or the
  test-split metrics of the run for an out-of-sample view.
- benchmark_probe (the paper's probe): for each benchmark B, a quick model is trained WITHOUT any of B's labels
  (the `default` preset at d = min(run's d, 64), `probe_epochs` = 5 epochs, early-stopped on validation
  questions of the other benchmarks); a ridge regression from those model embeddings predicts each model's
  observed accuracy on B, leave-one-model-out (each model's prediction comes from a ridge fitted on the
  others; the ridge penalty is chosen inside each fold). Pearson r and MAE compare held-out predictions with
  observed accuracies. Nothing learned from B's labels reaches B's predictions except the other models'
  accuracies on B, which is what the probe is meant to exploit. The details column also holds two baselines
  scored the same way: a ridge from the models' accuracies on the other benchmarks (`baseline_*`) and from
  their mean accuracy elsewhere (`mean_baseline_*`).
  Why d <= 64 and not the run's d: on the 112 x 36,000 synthetic benchmark, d = 64 and 5 epochs gave r = 0.79 /
  0.81 (mmlu / logiqa) against 0.63 / 0.33 for d = 232 and 10 epochs, in half the time: a ridge on 111 models
  does better with fewer features.
"""

from __future__ import annotations

import json
import time

import duckdb
import numpy as np
import pyarrow as pa

import warehouse
from embedllm.model import preset_config
from tasks.train import embedding_array, fit, load_matrix, run_model

PROBE_ALPHAS = np.logspace(-3, 3, 13)


def correctness_table(run_id: str, model_ids: list[int], question_ids: list[str], p: np.ndarray,
                      source: str = "trained") -> pa.Table:
    """Return an Arrow table of forecasts, model-major, from p (Q, M); strings dictionary-encoded (no copies)."""
    n_q, n_m = p.shape
    qids = pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(n_q, dtype=np.int32), n_m)),
                                          pa.array(question_ids, pa.string()))
    const = lambda value: pa.DictionaryArray.from_arrays(pa.array(np.zeros(n_q * n_m, dtype=np.int32)),  # noqa: E731
                                                         pa.array([value], pa.string()))
    return pa.table({"run_id": const(run_id),
                     "model_id": pa.array(np.repeat(np.asarray(model_ids, dtype=np.int32), n_q)),
                     "question_id": qids,
                     "p_correct": pa.array(np.ascontiguousarray(p.T, dtype=np.float32).ravel()),
                     "source": const(source)})


def write_correctness(con: duckdb.DuckDBPyConnection, table: pa.Table) -> int:
    """Insert an Arrow table of correctness forecasts (caller clears old rows); return the row count."""
    con.register("_forecasts", table)
    try:
        warehouse.execute(con, "forecast_insert_correctness")
    finally:
        con.unregister("_forecasts")
    return table.num_rows


def write_forecasts(con: duckdb.DuckDBPyConnection, run_id: str | None = None, *, probe_benchmarks: bool = True,
                    probe_epochs: int = 5, device=None) -> dict:
    """Write a run's correctness and benchmark forecasts (and the probe); return counts and timings."""
    t0 = time.perf_counter()
    row, model = run_model(con, run_id)
    run_id = row["run_id"]
    questions = warehouse.query(con, "forecast_questions", {"embedder": row["embedder"]})
    p = model.predict_all(embedding_array(questions["embedding"]))                 # (Q, M)
    t_predict = time.perf_counter()
    table = correctness_table(run_id, model.meta["model_ids"], questions["question_id"].to_list(), p)
    with warehouse.transaction(con):
        warehouse.execute(con, "forecast_clear_correctness", {"run_id": run_id})
        warehouse.execute(con, "forecast_clear_benchmarks", {"run_id": run_id})
        n_rows = write_correctness(con, table)
        t_insert = time.perf_counter()
        warehouse.execute(con, "forecast_benchmarks", {"run_id": run_id})
    n_bench = con.execute("SELECT count(*) FROM benchmark_forecasts WHERE run_id = ?", [run_id]).fetchall()[0][0]
    report = {"run_id": run_id, "correctness_forecasts": n_rows, "benchmark_forecasts": n_bench,
              "predict_seconds": t_predict - t0, "insert_seconds": t_insert - t_predict,
              "seconds": time.perf_counter() - t0}
    if probe_benchmarks:
        report["probe"] = probe(con, run_id, epochs=probe_epochs, device=device)
    report["total_seconds"] = time.perf_counter() - t0
    return report


# ================================================================================================ probe

def loo_ridge(x: np.ndarray, y: np.ndarray, alphas: np.ndarray = PROBE_ALPHAS) -> np.ndarray:
    """Return leave-one-out predictions of y (n,) from x (n, d) by ridge (standardised x, alpha chosen per fold)."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = np.empty(len(y))
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas)).fit(x[keep], y[keep])
        out[i] = ridge.predict(x[i:i + 1])[0]
    return out


def accuracy_of(labels: np.ndarray) -> np.ndarray:
    """Return each model's (column's) mean label over its labelled rows; NaN where it has none."""
    seen = (labels >= 0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(seen > 0, (labels == 1).sum(axis=0) / seen, np.nan)


def probe_scores(observed: np.ndarray, predicted: np.ndarray) -> tuple[float | None, float]:
    """Return (Pearson r, MAE); r is None when either side is constant."""
    mae = float(np.abs(observed - predicted).mean())
    if observed.std() < 1e-12 or predicted.std() < 1e-12:
        return None, mae
    return float(np.corrcoef(observed, predicted)[0, 1]), mae


def probe(con: duckdb.DuckDBPyConnection, run_id: str | None = None, *, epochs: int = 5, max_dim: int = 64,
          min_models: int = 4, device=None) -> dict[str, dict]:
    """Run the leave-one-benchmark-out probe for a run, write benchmark_probe; return {benchmark: result}."""
    row, model = run_model(con, run_id)
    run_id = row["run_id"]
    matrix = load_matrix(con, row["embedder"])
    config = preset_config("default", n_models=len(matrix.model_ids), question_dim=matrix.emb.shape[1],
                           dim=min(model.config.dim, max_dim), dim_grid=[], epochs=epochs)
    results: dict[str, dict] = {}
    benchmarks = sorted(set(matrix.benchmark.tolist()))
    for bench in benchmarks:
        t0 = time.perf_counter()
        inside = matrix.benchmark == bench
        seen = matrix.labels[inside] >= 0                                         # (Q_B, M)
        n_seen = seen.sum(axis=0)
        models = np.flatnonzero(n_seen > 0)
        train, val = matrix.part("train", ~inside), matrix.part("val", ~inside)
        reason = None
        if len(benchmarks) < 2:
            reason = "needs at least two benchmarks"
        elif len(models) < min_models:
            reason = f"only {len(models)} models evaluated on it (needs {min_models})"
        elif not (train.labels >= 0).any() or not (val.labels >= 0).any():
            reason = "the other benchmarks have no train or validation labels"
        if reason:
            results[bench] = {"pearson_r": None, "mae": None, "n_models": int(len(models)), "skipped": reason}
            continue
        fitted = fit(train, val, config, device)
        vectors = fitted.model.model_embedding.weight.detach().cpu().numpy()     # (M, d)
        observed = accuracy_of(matrix.labels[inside])[models]
        r, mae = probe_scores(observed, loo_ridge(vectors[models], observed))
        elsewhere = np.stack([accuracy_of(matrix.labels[matrix.benchmark == b]) for b in benchmarks if b != bench],
                             axis=1)[models]                                     # (n, B - 1), NaN if never seen
        elsewhere = elsewhere[:, np.isfinite(elsewhere).any(axis=0)]
        elsewhere = np.where(np.isnan(elsewhere), np.nanmean(elsewhere, axis=0), elsewhere)  # fill with column mean
        base_r, base_mae = probe_scores(observed, loo_ridge(elsewhere, observed))
        mean_r, mean_mae = probe_scores(observed, loo_ridge(elsewhere.mean(axis=1, keepdims=True), observed))
        results[bench] = {"pearson_r": r, "mae": mae, "n_models": int(len(models)), "dim": config.dim,
                          "epochs": len(fitted.history), "seconds": time.perf_counter() - t0,
                          "observed_mean": float(observed.mean()), "observed_std": float(observed.std()),
                          "baseline_pearson_r": base_r, "baseline_mae": base_mae,
                          "mean_baseline_pearson_r": mean_r, "mean_baseline_mae": mean_mae}
    with warehouse.transaction(con):
        for bench, res in results.items():
            details = {k: v for k, v in res.items() if k not in ("pearson_r", "mae", "n_models")}
            warehouse.execute(con, "forecast_insert_probe", {
                "run_id": run_id, "benchmark": bench, "pearson_r": res["pearson_r"], "mae": res["mae"],
                "n_models": res["n_models"], "details": json.dumps(details)})
    return results

