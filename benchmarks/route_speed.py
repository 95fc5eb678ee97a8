"""Routing speed: 3,000 questions with precomputed 768-d embeddings over 112 models (target <= 50 ms; the paper
reports 3.80 s on an A100 for its router).

Times `embedllm.routing.route_embeddings` (the model collapsed to one (D, M) matrix since it is linear in the
question embedding, one (Q, D) @ (D, M) product, cost-aware utility, argmax) at d = 232 (the paper's size) and
d = 128, and for comparison the literal per-pair evaluation (the classifier on p_m * q for all 336,000 pairs). Timing does not depend on the weights' values, so the
models are freshly initialised. Median (and min/max) of --repeats runs after one warm-up, for torch CPU threads
1 and 2. Writes benchmarks/out/route_speed.json.

    python benchmarks/route_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from embedllm.model import EmbedLLM, EmbedLLMConfig  # noqa: E402
from embedllm.routing import normalised_costs, route_embeddings  # noqa: E402


def timed(fn, repeats: int) -> dict:
    """Return median/min/max wall milliseconds and median CPU ms of fn() over repeats (after one warm-up call)."""
    fn()
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return {
        "median_ms": statistics.median(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "median_cpu_ms": statistics.median(cpu),
        "repeats": repeats,
    }


@torch.no_grad()
def per_pair(model: EmbedLLM, q_emb: torch.Tensor) -> np.ndarray:
    """Return the routing choice computed pair by pair: classifier(p_m * q) for every (question, model)."""
    q = model.project(q_emb)  # (Q, d)
    out = model.classifier(q[:, None, :] * model.model_embedding.weight[None, :, :])  # (Q, M, 2)
    logits = out[..., 1] - out[..., 0]
    return logits.argmax(dim=1).numpy()


def main() -> None:
    """Time routing and print a table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=3000)
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--emb-dim", type=int, default=768)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    q = rng.normal(size=(args.questions, args.emb_dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    costs = normalised_costs(rng.uniform(0.1, 10, args.models).tolist(), args.models)
    results = {"setup": vars(args) | {"load_at_start": os.getloadavg(), "torch": torch.__version__}, "runs": []}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for dim in (232, 128):
            torch.manual_seed(0)
            model = EmbedLLM(EmbedLLMConfig(n_models=args.models, question_dim=args.emb_dim, dim=dim)).eval()
            fast = timed(lambda m=model: route_embeddings(m, q, costs, cost_weight=0.1), args.repeats)
            pairs = timed(lambda m=model: per_pair(m, torch.from_numpy(q)), max(5, args.repeats // 5))
            same = (route_embeddings(model, q).chosen == per_pair(model, torch.from_numpy(q))).mean()
            row = {
                "threads": threads,
                "dim": dim,
                "route_embeddings": fast,
                "per_pair": pairs,
                "same_choice_share": float(same),
            }
            results["runs"].append(row)
            print(
                f"threads {threads} d={dim}: route_embeddings median {fast['median_ms']:.1f} ms "
                f"(min {fast['min_ms']:.1f}, max {fast['max_ms']:.1f}, CPU {fast['median_cpu_ms']:.1f}); per-pair {pairs['median_ms']:.1f} ms; "
                f"same choice {same:.4f}",
                flush=True,
            )
    results["setup"]["load_at_end"] = os.getloadavg()
    out = ROOT / "benchmarks" / "out" / "route_speed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
