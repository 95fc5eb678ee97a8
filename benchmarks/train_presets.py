"""The `paper` preset vs the `default` preset vs KNN on a 112 x 36,000 synthetic matrix with known probabilities.

Targets (issue 5): default reaches at least the paper preset's test accuracy in <= 1/20 of its wall time; default
full training (dimension search + early stopping) <= 2 minutes on the 2-core box. Both presets and KNN run in ONE
process on the same matrix and split, in the order given by --presets (paper first by default, because it takes
hours on CPU: run it in the background and poll the log):

    nohup python benchmarks/train_presets.py > benchmarks/out/train_presets.log 2>&1 &

The synthetic generator (embedllm.synthetic.make_matrix) gives the true P(correct) of every cell, so the table also
shows the Bayes limit (forecasting with the true probabilities). Question embeddings are 768-d, the size of the
paper's all-mpnet-base-v2. Results land in benchmarks/out/train_presets.json (one entry per finished preset, written
as soon as it finishes) and a markdown table in benchmarks/out/train_presets.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from embedllm import metrics  # noqa: E402
from embedllm.model import preset_config  # noqa: E402
from embedllm.synthetic import make_matrix  # noqa: E402
from embedllm.training import matrix_from_synthetic, train_matrix  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
COLUMNS = [
    ("test_accuracy", "test acc"),
    ("test_auc", "AUC"),
    ("test_ece", "ECE"),
    ("test_log_loss", "log loss"),
    ("route_accuracy", "route acc"),
    ("route_expected", "route E[acc]"),
    ("route_expected_free_text", "free text E[acc]"),
    ("single_best_accuracy", "single best"),
    ("oracle_accuracy", "oracle"),
    ("seconds", "wall s"),
    ("cpu_seconds", "CPU s"),
]


def route_expected(sm, test: np.ndarray, p: np.ndarray) -> float:
    """Return the TRUE expected accuracy of routing each test question to the model with the highest forecast p.

    The mean of the true probabilities of the chosen models: the same decision as `route acc`, without the
    label noise (3,000 questions leave 300 test questions, so a realised routing accuracy moves by +-2 points).
    """
    chosen = p.argmax(1)
    return float(sm.p_true[:, test].T[np.arange(len(chosen)), chosen].mean())


def real_embeddings(sm, name: str) -> np.ndarray:
    """Return EMBEDDER NAME's vectors (Q, D) of the prompts `write_embedllm_csv` writes for SM (cached in OUT).

    The synthetic embeddings are linear in the generator's features; these are what a user's import sees: the
    embedding of the question TEXT, which knows its benchmark's format but not the generator's features.
    """
    from embedllm.embedders import encode, stored_name
    from embedllm.synthetic import _synthetic_prompts

    prompts = _synthetic_prompts(sm.benchmark, np.random.default_rng(0))  # the CSV writer's draw (seed 0)
    digest = hashlib.sha256("\n".join(prompts).encode()).hexdigest()[:12]
    cache = OUT / f"prompts_{stored_name(name)}_{len(prompts)}_{digest}.npy"
    if cache.exists():
        return np.load(cache)
    print(f"encoding {len(prompts)} prompts with {name} (cached in {cache}) ...", flush=True)
    emb = encode(prompts, name)
    np.save(cache, emb)
    return emb


def bayes_row(sm, test: np.ndarray) -> dict:
    """Return the metrics of forecasting with the true probabilities (the Bayes limit) on the test split."""
    y = sm.labels[:, test].T
    p = sm.p_true[:, test].T
    return {
        **metrics.correctness_metrics(y, p, prefix="test_"),
        "route_accuracy": metrics.routing_accuracy(y, p),
        "route_expected": route_expected(sm, test, p),
        "test_accuracy_expected": sm.bayes_accuracy(test),
    }


def single_best_row(sm, test: np.ndarray) -> dict:
    """Return the true expected accuracy on the test split of the model with the best TRAIN accuracy."""
    train = sm.split == "train"
    best = int(sm.labels[:, train].mean(1).argmax())
    return {
        "route_accuracy": float(sm.labels[best, test].mean()),
        "route_expected": float(sm.p_true[best, test].mean()),
    }


def knn_row(result: dict) -> dict:
    """Return the KNN baseline's figures from a train_matrix metrics dict, in the table's keys."""
    m = result
    return {
        "test_accuracy": m["knn_test_accuracy"],
        "test_auc": m["knn_test_auc"],
        "test_ece": m["knn_test_ece"],
        "test_log_loss": m["knn_test_log_loss"],
        "route_accuracy": m["knn_route_accuracy"],
        "single_best_accuracy": m["single_best_accuracy"],
        "oracle_accuracy": m["oracle_accuracy"],
        "seconds": m["knn_seconds"],
        "cpu_seconds": None,
        "k": m["knn_k"],
    }


def markdown(rows: dict[str, dict]) -> str:
    """Return the results as a markdown table."""
    lines = ["| method | " + " | ".join(h for _, h in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, row in rows.items():
        cells = []
        for key, _ in COLUMNS:
            v = row.get(key)
            cells.append("-" if v is None else (f"{v:.1f}" if key.endswith("seconds") else f"{v:.4f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(path: Path, payload: dict) -> None:
    """Write JSON atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)


def main() -> None:
    """Run the presets and KNN on one synthetic matrix; print and save the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--questions", type=int, default=36_000)
    ap.add_argument("--emb-dim", type=int, default=768)
    ap.add_argument("--presets", default="paper,default")
    ap.add_argument("--skills", default="independent", help="embedllm.synthetic skills: independent | correlated")
    ap.add_argument("--emb-noise", type=float, default=0.3, help="noise on the synthetic question embeddings")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--embedder",
        default=None,
        help="embed the questions' CSV prompt texts with this sentence-transformer (e.g. all-MiniLM-L6-v2) "
        "instead of the generator's synthetic embeddings",
    )
    ap.add_argument("--out", type=Path, default=OUT / "train_presets.json")
    args = ap.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    sm = make_matrix(
        args.models,
        args.questions,
        emb_dim=args.emb_dim,
        skills=args.skills,
        emb_noise=args.emb_noise,
        seed=args.seed,
    )
    matrix = matrix_from_synthetic(sm)
    emb = sm.embeddings if args.embedder is None else real_embeddings(sm, args.embedder)
    matrix.emb = emb
    test = sm.split == "test"
    print(
        f"matrix {args.models} x {args.questions} (emb {emb.shape[1]}) built in {time.perf_counter() - t0:.1f}s; "
        f"test questions {test.sum()}",
        flush=True,
    )
    payload = {
        "setup": {
            "models": args.models,
            "questions": args.questions,
            "emb_dim": emb.shape[1],
            "embedder": args.embedder,
            "seed": args.seed,
            "skills": args.skills,
            "emb_noise": args.emb_noise,
            "torch": torch.__version__,
            "cpus": os.cpu_count(),
            "threads": os.environ.get("EMBEDLLM_TORCH_THREADS", "1"),
            "machine": platform.platform(),
            "load_at_start": os.getloadavg(),
        },
        "rows": {
            "Bayes limit (true p)": bayes_row(sm, test),
            "single best model (true p)": single_best_row(sm, test),
        },
        "details": {},
    }
    save(args.out, payload)

    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        config = preset_config(preset, n_models=args.models, question_dim=emb.shape[1])
        print(f"--- {preset}: {config}", flush=True)
        t, c = time.perf_counter(), time.process_time()
        result = train_matrix(
            matrix, config, "cpu", knn=("KNN (k on validation)" not in payload["rows"]), progress=True
        )
        seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - c
        m = result.metrics
        payload["rows"][f"EmbedLLM {preset}"] = {
            **{k: m[k] for k, _ in COLUMNS if k in m},
            "route_expected": route_expected(sm, test, result.model.predict_all(emb[test], sm.benchmark[test])),
            "route_expected_free_text": route_expected(sm, test, result.model.predict_all(emb[test])),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
        }
        payload["details"][preset] = {
            "metrics": m,
            "history": result.fit.history,
            "config": config.to_dict(),
            "load_after": os.getloadavg(),
        }
        if "knn_test_accuracy" in m:
            payload["rows"]["KNN (k on validation)"] = knn_row(m)
        print(
            f"{preset}: test acc {m['test_accuracy']:.4f} in {seconds:.1f}s "
            f"(dim {m['dim']}, {m['epochs_run']} epochs; load {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        save(args.out, payload)

    rows = payload["rows"]
    if "EmbedLLM paper" in rows and "EmbedLLM default" in rows:
        paper, default = rows["EmbedLLM paper"], rows["EmbedLLM default"]
        payload["ratio"] = {
            "time_paper_over_default": paper["seconds"] / default["seconds"],
            "cpu_time_paper_over_default": paper["cpu_seconds"] / default["cpu_seconds"],
            "accuracy_default_minus_paper": default["test_accuracy"] - paper["test_accuracy"],
        }
    payload["setup"]["load_at_end"] = os.getloadavg()
    save(args.out, payload)
    table = markdown(rows)
    (args.out.with_suffix(".md")).write_text(table + "\n\n" + json.dumps(payload.get("ratio", {})) + "\n")
    print(table)
    print(json.dumps(payload.get("ratio", {}), indent=2))


if __name__ == "__main__":
    main()
