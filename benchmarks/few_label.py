"""Few-label models: how well are benchmark accuracies forecast for models with only 32 / 128 / 512 labels? (issue 15)

    python benchmarks/few_label.py [--models 40] [--questions 3000] [--sparse 10] [--n 32,128,512]
                                   [--skills correlated] [--emb-noise 0.3] [--embedder NAME] [--json out.json]

A synthetic matrix (embedllm.synthetic.make_matrix, correlated skills by default, so answers on one benchmark say
something about another) where the last `sparse` models keep only n random TRAIN-split labels each, as an
EmbedLLM CSV import of a sparsely evaluated model would. One run is trained on it with the real code (preset
`default`, the sparse models included, as `embedllm train` does). For each sparse model and benchmark we compare
the forecast accuracy with the TRUE accuracy (mean true P(correct) over all the benchmark's questions) and report
the mean absolute error in points, averaged over benchmarks and sparse models, for:

- trained       the run's own vector for the model (what forecasts were before issue 15)
- placed        embedllm.onboarding.place_few_label: the run frozen, the model placed from its n answers with
                the well-labelled models as prior, as `embedllm forecast` now does (with its 90 % interval:
                coverage of the truth and mean width)
- plain mean    the mean of the model's n answers per benchmark (overall mean where a benchmark got none)
- oracle        the posterior mean under the generator's TRUE parameters from the same n answers (Truth
                .oracle_benchmark_accuracy): every question's difficulty and skill loadings known, only the
                model fitted; no forecaster can beat it on average

Each n trains its own run (the sparse labels differ). CPU seconds and the load average are printed beside.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from onboard_accuracy import plain_means  # noqa: E402  (benchmarks/ is the script's folder)

from embedllm import onboarding as ob  # noqa: E402
from embedllm.model import preset_config  # noqa: E402
from embedllm.synthetic import make_matrix  # noqa: E402
from embedllm.training import matrix_from_synthetic, train_matrix  # noqa: E402


def per_benchmark(values: np.ndarray, codes: np.ndarray, n_bench: int) -> np.ndarray:
    """Return the mean of values (Q,) over each benchmark's questions (n_bench,)."""
    return np.bincount(codes, weights=values, minlength=n_bench) / np.maximum(
        np.bincount(codes, minlength=n_bench), 1
    )


def run_n(sm, n: int, sparse: np.ndarray, codes: np.ndarray, n_bench: int, preset: str) -> dict:
    """Return the figures of one n: train with the sparse models at n labels, then every method."""
    n_models, n_q = sm.labels.shape
    rng = np.random.default_rng(n)
    matrix = matrix_from_synthetic(sm)
    train_q = np.flatnonzero(sm.split == "train")
    picks = {}
    for h in sparse:
        picks[h] = np.sort(rng.choice(train_q, n, replace=False))
        column = np.full(n_q, -1, np.int8)
        column[picks[h]] = sm.labels[h, picks[h]]
        matrix.labels[:, h] = column
    c0, t0 = time.process_time(), time.perf_counter()
    config = preset_config(preset, n_models=n_models, question_dim=sm.embeddings.shape[1])
    trained = train_matrix(matrix, config, "cpu", knn=False)
    train_cpu = time.process_time() - c0
    few = ob.few_label_models(matrix.labels)
    c1 = time.process_time()
    placed = ob.place_few_label(trained.model, sm.embeddings, sm.benchmark, matrix.labels, few)
    place_cpu = time.process_time() - c1
    p = trained.model.predict_all(sm.embeddings, sm.benchmark)  # (Q, M)
    truth = np.stack([per_benchmark(sm.p_true[h], codes, n_bench) for h in sparse])
    estimates = {
        "trained": np.stack([per_benchmark(p[:, h], codes, n_bench) for h in sparse]),
        "placed": np.stack([placed[h].accuracy for h in sparse]),
        "plain mean": np.stack([plain_means(sm.labels[h], picks[h], codes, n_bench) for h in sparse]),
        "oracle": np.stack(
            [sm.truth.oracle_benchmark_accuracy(picks[h], sm.labels[h, picks[h]], codes, n_bench) for h in sparse]
        ),
    }
    low, high = np.stack([placed[h].low for h in sparse]), np.stack([placed[h].high for h in sparse])
    return {
        "mae": {k: 100 * float(np.abs(v - truth).mean()) for k, v in estimates.items()},
        "coverage": float(((truth >= low) & (truth <= high)).mean()),
        "width": 100 * float((high - low).mean()),
        "few_label_detected": int(few.sum()),
        "test_accuracy": trained.metrics["test_accuracy"],
        "train_cpu_seconds": train_cpu,
        "place_cpu_seconds": place_cpu,
        "seconds": time.perf_counter() - t0,
        "load": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; print a table and return the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--questions", type=int, default=3000)
    ap.add_argument("--sparse", type=int, default=10, help="models kept at n labels (the last ones)")
    ap.add_argument("--n", default="32,128,512")
    ap.add_argument("--skills", default="correlated")
    ap.add_argument("--emb-noise", type=float, default=0.3)
    ap.add_argument("--emb-dim", type=int, default=384)
    ap.add_argument("--preset", default="default")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--embedder",
        default=None,
        help="embed the questions' CSV prompt texts with this sentence-transformer (train_presets.py's option)",
    )
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    sm = make_matrix(
        args.models,
        args.questions,
        emb_dim=args.emb_dim,
        skills=args.skills,
        emb_noise=args.emb_noise,
        seed=args.seed,
    )
    if args.embedder:
        from train_presets import real_embeddings

        sm.embeddings = real_embeddings(sm, args.embedder)
    names, codes = np.unique(sm.benchmark, return_inverse=True)
    sparse = np.arange(args.models - args.sparse, args.models)
    results = {"config": vars(args) | {"json": str(args.json)}, "by_n": {}}
    print(f"{args.models} models x {args.questions} questions, {args.skills} skills, {args.sparse} sparse models")
    print(
        "| n | trained | placed | plain mean | oracle | 90 % coverage | width | test acc | CPU s train + place | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in [int(x) for x in args.n.split(",")]:
        r = run_n(sm, n, sparse, codes, len(names), args.preset)
        results["by_n"][n] = r
        mae = r["mae"]
        print(
            f"| {n} | {mae['trained']:.2f} | {mae['placed']:.2f} | {mae['plain mean']:.2f} | {mae['oracle']:.2f} "
            f"| {r['coverage']:.2f} | {r['width']:.1f} | {r['test_accuracy']:.4f} "
            f"| {r['train_cpu_seconds']:.1f} + {r['place_cpu_seconds']:.1f} | {r['load']:.2f} |",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
