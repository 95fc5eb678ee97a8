"""How well does onboarding from n answers forecast a new model's benchmark accuracies? (issue 7)

    python benchmarks/onboard_accuracy.py [--models 112] [--questions 36000] [--held-out 12]
                                          [--n 32,64,128,256] [--checkpoint /tmp/onboard_run.pt] [--json out.json]

A synthetic matrix (embedllm.synthetic.make_matrix, known true probabilities) of `models` x `questions`; the run
is trained by the real training code (tasks.train.train_matrix, preset `default`) on the first models - held_out;
the last `held_out` models are onboarded from n of their answers with the run frozen. For each n we report the
mean absolute error (accuracy points) of each held-out model's forecast accuracy per benchmark against its true
accuracy (mean of the true probabilities over the benchmark's questions) and against its observed full labels,
averaged over benchmarks and held-out models, for:

- method           the onboarding fit on the questions it chooses (tasks.onboard.choose_questions + place)
- method, random   the same fit on n questions drawn uniformly at random
- plain mean       the mean of the n random answers per benchmark (a benchmark with no sampled question gets
                   the overall mean of the n answers)

plus the 90 % interval's coverage of the truth and its mean width, the fit on ALL of a held-out model's labels
(the floor the frozen run allows), the correctness-forecast accuracy of the onboarded vector next to the
full-data one (the peers' "within 1 % of a full-data embedding"), and, from the generator's truth, an
oracle: the Bayes posterior mean under the TRUE generative model from the same n random answers (what no
forecaster can beat on average), and the same oracle given the method's questions. Inference saved =
1 - n / questions of a full evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from embedllm import onboarding as ob  # noqa: E402
from embedllm.synthetic import SyntheticMatrix, make_matrix  # noqa: E402


def train_run(m: SyntheticMatrix, n_train: int, checkpoint: Path | None):
    """Return (model, seconds) trained with the real training code on the first n_train models (cached)."""
    from embedllm.model import load_checkpoint, preset_config
    from embedllm.training import matrix_from_synthetic, train_matrix

    if checkpoint is not None and checkpoint.exists():
        model = load_checkpoint(checkpoint)
        if model.config.n_models == n_train:
            print(f"reusing the trained run in {checkpoint}", flush=True)
            return model, float(model.meta.get("train_seconds", float("nan")))
    matrix = matrix_from_synthetic(m)
    matrix.labels = np.ascontiguousarray(matrix.labels[:, :n_train])
    matrix.model_ids, matrix.model_names = matrix.model_ids[:n_train], matrix.model_names[:n_train]
    config = preset_config("default", n_models=n_train, question_dim=m.embeddings.shape[1])
    t0 = time.perf_counter()
    trained = train_matrix(matrix, config, "cpu", knn=False, progress=True)
    seconds = time.perf_counter() - t0
    print(
        f"trained preset default on {n_train} models in {seconds:.0f} s: dim {trained.config.dim}, "
        f"test accuracy {trained.metrics['test_accuracy']:.4f}",
        flush=True,
    )
    trained.model.meta = {"train_seconds": seconds, "test_accuracy": trained.metrics["test_accuracy"]}
    if checkpoint is not None:
        trained.model.save_checkpoint(checkpoint)
    return trained.model, seconds


# ------------------------------------------------------------------------------------------------ measuring


def plain_means(y: np.ndarray, idx: np.ndarray, codes: np.ndarray, n_bench: int) -> np.ndarray:
    """Return the per-benchmark mean of the sampled answers (overall mean where a benchmark has none)."""
    out = np.full(n_bench, y[idx].mean())
    for j in range(n_bench):
        mine = idx[codes[idx] == j]
        if len(mine):
            out[j] = y[mine].mean()
    return out


def forecast_accuracy(p: np.ndarray, y: np.ndarray) -> float:
    """Return the accuracy of thresholding forecasts p at 0.5 against labels y."""
    return float(((p > 0.5) == (y == 1)).mean())


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print and return the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--questions", type=int, default=36_000)
    ap.add_argument("--held-out", type=int, default=12)
    ap.add_argument("--n", default="32,64,128,256")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", type=Path, default=None, help="reuse / save the trained run here")
    ap.add_argument("--no-oracle", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    ns = [int(x) for x in args.n.split(",")]

    t0 = time.perf_counter()
    m = make_matrix(args.models, args.questions, seed=args.seed)
    n_train = args.models - args.held_out
    model, train_seconds = train_run(m, n_train, args.checkpoint)
    t1 = time.perf_counter()
    basis = ob.make_basis(model, m.embeddings, m.benchmark, np.ascontiguousarray(m.labels[:n_train].T))
    basis_seconds = time.perf_counter() - t1
    codes, n_bench = basis.codes, len(basis.benchmarks)
    held = np.arange(n_train, args.models)
    truth = np.stack([[m.p_true[h, codes == j].mean() for j in range(n_bench)] for h in held])
    observed = np.stack([[m.labels[h, codes == j].mean() for j in range(n_bench)] for h in held])
    gen = None if args.no_oracle else m.truth

    # the floor: each held-out model fitted on ALL its labels
    full_acc, full_fc = [], []
    for h in held:
        placed = ob.place(basis, np.arange(args.questions), m.labels[h], n_bootstrap=0)
        full_acc.append(placed.accuracy)
        full_fc.append(forecast_accuracy(placed.p_correct, m.labels[h]))
    full_acc = np.stack(full_acc)
    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    results = {
        "config": config,
        "train_seconds": train_seconds,
        "basis_seconds": basis_seconds,
        "benchmarks": basis.benchmarks,
        "full_data": {
            "mae_truth": 100 * float(np.abs(full_acc - truth).mean()),
            "mae_observed": 100 * float(np.abs(full_acc - observed).mean()),
            "forecast_accuracy": float(np.mean(full_fc)),
        },
        "bayes_forecast_accuracy": float(np.maximum(m.p_true[held], 1 - m.p_true[held]).mean()),
        "by_n": {},
    }
    print(
        f"basis built in {basis_seconds:.1f} s; full-data fit: MAE {results['full_data']['mae_truth']:.2f} "
        f"points vs truth",
        flush=True,
    )

    for n in ns:
        ts = time.perf_counter()
        chosen = ob.choose_questions(basis, n, seed=args.seed)
        select_seconds = time.perf_counter() - ts
        rng = np.random.default_rng(1000 + n)
        rows = {
            key: {"truth": [], "observed": []}
            for key in ("method", "method_random", "plain_mean", "oracle", "oracle_chosen")
        }
        cover, width, fc_method, fit_seconds = [], [], [], []
        for k, h in enumerate(held):
            y = m.labels[h]
            rand = np.sort(rng.choice(args.questions, n, replace=False))
            placed = ob.place(basis, chosen, y[chosen], seed=k)
            fit_seconds.append(placed.seconds)
            estimates = {
                "method": placed.accuracy,
                "method_random": ob.place(basis, rand, y[rand], seed=k, n_bootstrap=0).accuracy,
                "plain_mean": plain_means(y, rand, codes, n_bench),
            }
            if gen is not None:
                estimates["oracle"] = gen.oracle_benchmark_accuracy(rand, y[rand], codes, n_bench)
                estimates["oracle_chosen"] = gen.oracle_benchmark_accuracy(chosen, y[chosen], codes, n_bench)
            for key, est in estimates.items():
                rows[key]["truth"].append(np.abs(est - truth[k]).mean())
                rows[key]["observed"].append(np.abs(est - observed[k]).mean())
            cover.append(((truth[k] >= placed.low) & (truth[k] <= placed.high)).mean())
            width.append((placed.high - placed.low).mean())
            fc_method.append(forecast_accuracy(placed.p_correct, y))
        entry = {key: {t: 100 * float(np.mean(v)) for t, v in r.items()} for key, r in rows.items() if r["truth"]}
        entry |= {
            "interval_coverage": float(np.mean(cover)),
            "interval_width": 100 * float(np.mean(width)),
            "forecast_accuracy": float(np.mean(fc_method)),
            "per_benchmark_picks": dict(
                zip(basis.benchmarks, np.bincount(codes[chosen], minlength=n_bench).tolist())
            ),
            "inference_saved": 1 - n / args.questions,
            "select_seconds": select_seconds,
            "fit_seconds_mean": float(np.mean(fit_seconds)),
        }
        results["by_n"][n] = entry
        oracle = (
            f"  oracle {entry['oracle']['truth']:5.2f} / on the method's questions "
            f"{entry['oracle_chosen']['truth']:5.2f}"
            if "oracle" in entry
            else ""
        )
        print(
            f"n={n:4d}  method {entry['method']['truth']:5.2f}  method+random {entry['method_random']['truth']:5.2f}"
            f"  plain mean {entry['plain_mean']['truth']:5.2f}{oracle}  (points vs truth)  coverage "
            f"{entry['interval_coverage']:.2f}  select {select_seconds:.1f} s  fit {entry['fit_seconds_mean']:.2f} s",
            flush=True,
        )
    results["seconds"] = time.perf_counter() - t0
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


def markdown(results: dict) -> str:
    """Return the figures as a markdown table."""
    head = (
        "| n | saved | method | method, random choice | plain mean | oracle, random / method's questions "
        "| method vs observed | 90 % interval coverage / width | forecast acc. (full-data) |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]
    full = results["full_data"]
    for n, e in results["by_n"].items():
        oracle = f"{e['oracle']['truth']:.2f} / {e['oracle_chosen']['truth']:.2f}" if "oracle" in e else "-"
        lines.append(
            f"| {n} | {100 * e['inference_saved']:.2f} % | {e['method']['truth']:.2f} | "
            f"{e['method_random']['truth']:.2f} | {e['plain_mean']['truth']:.2f} | {oracle} | "
            f"{e['method']['observed']:.2f} | {e['interval_coverage']:.2f} / {e['interval_width']:.1f} | "
            f"{e['forecast_accuracy']:.4f} ({full['forecast_accuracy']:.4f}) |"
        )
    lines.append(
        f"\nfull-data fit (all {results['config']['questions']} labels of each held-out model): MAE "
        f"{full['mae_truth']:.2f} points vs truth, {full['mae_observed']:.2f} vs observed; Bayes forecast "
        f"accuracy {results['bayes_forecast_accuracy']:.4f}; total {results['seconds']:.0f} s"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
