"""Do the ONNX vectors forecast as well as the torch ones? (issue 15: "forecast accuracy unchanged within 0.002")

    python benchmarks/embed_forecast.py [--models 40] [--questions 4000] [--embedders all-MiniLM-L6-v2,...]

Questions are real text (embed_throughput.py's short and long questions, half each; the benchmark is which kind).
Their correctness is planted on the TORCH vectors, so the text matters and any information the ONNX path loses
shows: each model m has a logit a_m + s * (e_torch R) . v_m, with R a fixed random (D, 16) projection, v_m ~ N(0, I),
and labels are Bernoulli draws of its sigmoid (the true probabilities are kept). The same labels and split are
then trained on (preset `default`) with the vectors of each path: bare sentence-transformers on torch, embedllm's
ONNX fp32 and ONNX int8. Printed per path: test accuracy, AUC, ECE, routing's true expected accuracy, and the
difference to torch; the cosine to the torch vectors; the load average. Planting on torch favours torch, so a
difference within 0.002 is conservative.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embed_throughput import long_questions, short_questions  # noqa: E402  (benchmarks/ is the script's folder)

from embedllm import metrics  # noqa: E402
from embedllm.model import preset_config  # noqa: E402
from embedllm.onnx_backend import cosines  # noqa: E402
from embedllm.training import Matrix, train_matrix  # noqa: E402


def vectors(name: str, texts: list[str]) -> dict[str, np.ndarray]:
    """Return {path: (Q, D) vectors} of TEXTS from bare torch, embedllm onnx and embedllm onnx-int8."""
    from sentence_transformers import SentenceTransformer

    from embedllm.embedders import EmbedderError, load_embedder, resolve_embedder

    out = {}
    models = {"torch": SentenceTransformer(resolve_embedder(name), device="cpu")}
    for backend in ("onnx", "onnx-int8"):
        try:
            models[backend] = load_embedder(name, "cpu", backend).model
        except EmbedderError as exc:
            print(f"  {backend}: refused ({exc})")
    for path, model in models.items():
        t = time.process_time()
        out[path] = np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True), dtype=np.float32)
        print(f"  encoded with {path} in {time.process_time() - t:.1f} CPU-s  load {os.getloadavg()[0]:.2f}")
    return out


def planted(torch_vectors: np.ndarray, n_models: int, seed: int, scale: float = 3.0) -> np.ndarray:
    """Return true P(correct) (Q, M) planted on the torch vectors through a random 16-d projection."""
    rng = np.random.default_rng(seed)
    z = torch_vectors @ rng.normal(size=(torch_vectors.shape[1], 16))  # (Q, 16)
    z = (z - z.mean(0)) / z.std(0)
    logits = rng.normal(0.3, 0.8, size=n_models) + scale * z @ rng.normal(size=(16, n_models)) / 4
    return 1 / (1 + np.exp(-logits))


def main() -> None:
    """Plant, train on each path's vectors, print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=40)
    ap.add_argument("--questions", type=int, default=4000)
    ap.add_argument("--embedders", default="all-MiniLM-L6-v2")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    half = args.questions // 2
    texts = short_questions(half) + long_questions(args.questions - half)
    benchmark = np.array(["short"] * half + ["long"] * (args.questions - half))
    rng = np.random.default_rng(args.seed)
    split = np.array(["train", "val", "test"])[rng.choice(3, args.questions, p=[0.7, 0.1, 0.2])]
    test = split == "test"
    for name in [n.strip() for n in args.embedders.split(",") if n.strip()]:
        print(f"\n{name}: {args.models} models x {args.questions} questions (planted on torch vectors)")
        vecs = vectors(name, texts)
        p_true = planted(vecs["torch"], args.models, args.seed)
        labels = (np.random.default_rng(args.seed + 1).random(p_true.shape) < p_true).astype(np.int8)
        print("| path | test acc | AUC | ECE | route E[acc] | acc - torch | cos min | cos mean | CPU s | load |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        base = None
        for path, emb in vecs.items():
            matrix = Matrix(
                emb, labels, split, benchmark, [f"q{i}" for i in range(len(texts))], list(range(args.models)),
                [f"m{j}" for j in range(args.models)],
            )  # fmt: skip
            config = preset_config("default", n_models=args.models, question_dim=emb.shape[1])
            c = time.process_time()
            trained = train_matrix(matrix, config, "cpu", knn=False)
            m = trained.metrics
            chosen = trained.model.predict_all(emb[test], benchmark[test]).argmax(1)
            route = float(p_true[test][np.arange(len(chosen)), chosen].mean())
            base = m["test_accuracy"] if base is None else base
            cos = cosines(emb, vecs["torch"])
            print(
                f"| {path} | {m['test_accuracy']:.4f} | {m['test_auc']:.4f} | {m['test_ece']:.4f} | {route:.4f} "
                f"| {m['test_accuracy'] - base:+.4f} | {cos.min():.4f} | {cos.mean():.5f} "
                f"| {time.process_time() - c:.1f} | {os.getloadavg()[0]:.2f} |",
                flush=True,
            )
        bayes = metrics.accuracy(labels[test], p_true[test])
        print(f"  Bayes (true p) test accuracy {bayes:.4f}")


if __name__ == "__main__":
    main()
