"""Stage overhead: throughput of `embed_questions` vs a bare `SentenceTransformer.encode` of the same texts and model.

Targets (issue 4): embed_questions within 10 % of the bare encode (same texts, model, batch size; the model load
is excluded from both: the bare side reuses the very object embed_questions loaded), and a second call with
nothing new <= 2 s. The bare encode runs before and after embed_questions; the ratio uses their mean, so a
machine that gets busier or quieter during the run biases neither side.

    python benchmarks/embed_stage_overhead.py [--n 2000] [--batch-size 64] [--model all-MiniLM-L6-v2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def prompts(n: int, seed: int = 0) -> list[str]:
    """Return N distinct question-like prompts of mixed length, built from the demo suite's questions."""
    pool = []
    for f in sorted((ROOT / "embedllm" / "demo_suite").glob("*.jsonl")):
        pool += [json.loads(line)["question"] for line in f.read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(seed)
    texts = set()
    while len(texts) < n:
        k = int(rng.choice([1, 1, 1, 2, 2, 3, 5]))  # mostly short, some long (MMLU-like mix)
        texts.add(" ".join(rng.choice(pool, size=k)) + f" (variant {len(texts)})")
    return sorted(texts)


def main() -> None:
    """Load N questions into a tmp warehouse, then time bare encode / embed_questions / bare encode / no-op call."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    args = ap.parse_args()

    db = Path(tempfile.mkdtemp(prefix="embedbench-")) / "wh.duckdb"
    import torch

    import warehouse
    from embedllm.embedders import load_model, resolve_embedder
    from embedllm.ids import question_id
    from tasks.embed import embed_questions
    from tasks.load import Batch, Meta, load_batches

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    texts = prompts(args.n)
    con = warehouse.connect(db)
    rows = pl.DataFrame(
        {
            "question_id": [question_id("bench", t) for t in texts],
            "benchmark": "bench",
            "task": "bench",
            "prompt": texts,
            "label": [i % 2 for i in range(len(texts))],
        }
    )
    load_batches(con, [Batch(Meta(kind="lm-eval-import", content_hash="bench", model="m", task="bench"), rows)])
    con.close()  # the stage opens its own short sessions
    t = time.perf_counter()
    model = load_model(args.model, "cpu")
    print(
        f"model {args.model} from {resolve_embedder(args.model)}: loaded in {time.perf_counter() - t:.1f} s; "
        f"torch threads {torch.get_num_threads()}; {len(texts):,} prompts, mean {np.mean([len(x) for x in texts]):.0f} "
        f"chars; batch size {args.batch_size}"
    )
    model.encode(texts[:64], batch_size=args.batch_size)  # warm-up

    def bare() -> float:
        t0 = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
        return time.perf_counter() - t0

    before = bare()
    t0 = time.perf_counter()
    report = embed_questions(db, args.model, batch_size=args.batch_size, device="cpu", progress=False)
    ours = time.perf_counter() - t0
    after = bare()
    reference = (before + after) / 2
    print(
        f"bare SentenceTransformer.encode: {before:.2f} s before, {after:.2f} s after "
        f"(mean {len(texts) / reference:,.0f} prompts/s)"
    )
    print(
        f"embed_questions (query + encode + store + record): {ours:.2f} s = {len(texts) / ours:,.0f} prompts/s "
        f"({report.n_embedded:,} embedded, {report.dimension}-d)"
    )
    print(f"ratio embed_questions / bare = {ours / reference:.3f}  (target <= 1.10)")
    t0 = time.perf_counter()
    again = embed_questions(db, args.model, batch_size=args.batch_size, device="cpu", progress=False)
    print(f"second call, nothing new: {time.perf_counter() - t0:.3f} s (target <= 2 s): {again.summary()}")


if __name__ == "__main__":
    main()
