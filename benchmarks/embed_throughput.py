"""CPU embedding throughput: bare sentence-transformers on torch vs embedllm's ONNX path (fp32 and int8).

Issue 15: 10,000 short and 2,000 long questions, all-MiniLM-L6-v2 (and all-mpnet-base-v2 when its five PyPI parts
are installed); target >= 3x. Each figure: questions/s (wall), CPU-seconds (time.process_time, all threads),
the ratio to torch, min / mean cosine to the torch vectors, and the 1-minute load average beside it (the machine
is shared: figures under load > cores are noisy, CPU-seconds less so than wall time). Exports are made (once, in
the embedllm cache) before timing. --tune times the fp32 ONNX path at several batch sizes and thread counts.

    python benchmarks/embed_throughput.py [--quick] [--tune] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def question_pool() -> list[str]:
    """Return the demo suite's questions (the building blocks of the benchmark texts)."""
    pool = []
    for f in sorted((ROOT / "embedllm" / "demo_suite").glob("*.jsonl")):
        pool += [json.loads(line)["question"] for line in f.read_text().splitlines() if line.strip()]
    return pool


def short_questions(n: int, seed: int = 0) -> list[str]:
    """Return N distinct short questions (one demo question and a variant tag: ~60 characters)."""
    pool, rng = question_pool(), np.random.default_rng(seed)
    return [f"{rng.choice(pool)} (variant {i})" for i in range(n)]


def long_questions(n: int, seed: int = 1) -> list[str]:
    """Return N distinct long, MMLU-like questions (a passage of 8-14 demo questions, four options: ~700 chars)."""
    pool, rng = question_pool(), np.random.default_rng(seed)
    out = []
    for i in range(n):
        stem = " ".join(rng.choice(pool, size=int(rng.integers(8, 15))))
        options = "\n".join(f"{letter}. {rng.choice(pool)}" for letter in "ABCD")
        out.append(f"[{i}] {stem}\n{options}\nAnswer:")
    return out


def load() -> str:
    """Return the 1-minute load average, formatted."""
    return f"load {os.getloadavg()[0]:.2f}"


def timed(model, texts: list[str], batch_size: int) -> tuple[np.ndarray, float, float]:
    """Return (vectors, wall seconds, CPU-seconds) of one encode of TEXTS."""
    t, c = time.perf_counter(), time.process_time()
    v = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(v, dtype=np.float32), time.perf_counter() - t, time.process_time() - c


def compare(name: str, texts: dict[str, list[str]], batch_size: int) -> None:
    """Print the torch vs ONNX fp32 vs ONNX int8 figures of embedder NAME on each text set."""
    from sentence_transformers import SentenceTransformer

    from embedllm.embedders import load_embedder, resolve_embedder
    from embedllm.onnx_backend import cosines

    source = resolve_embedder(name)
    bare = SentenceTransformer(source, device="cpu")  # bare sentence-transformers, as a user would load it
    paths = {"torch": ("bare sentence-transformers", bare)}
    for backend in ("onnx", "onnx-int8"):
        t = time.perf_counter()
        got = load_embedder(name, "cpu", backend)
        paths[backend] = (f"embedllm {backend} -> {got.name} (export min cos {got.min_cosine:.4f})", got.model)
        print(f"  {backend}: ready in {time.perf_counter() - t:.1f} s ({got.onnx_file}); {load()}")
    for label, batch in texts.items():
        mean_chars = np.mean([len(x) for x in batch])
        print(f"\n  {name}, {len(batch):,} {label} questions (mean {mean_chars:.0f} chars), batch {batch_size}")
        for _, model in paths.values():
            model.encode(batch[:batch_size], batch_size=batch_size)  # warm-up
        ref, ref_wall, ref_cpu = timed(bare, batch, batch_size)
        print(
            f"    {'torch (' + paths['torch'][0] + ')':<72} {len(batch) / ref_wall:7.0f} q/s {ref_cpu:7.1f} CPU-s  {load()}"
        )
        for backend in ("onnx", "onnx-int8"):
            what, model = paths[backend]
            v, wall, cpu = timed(model, batch, batch_size)
            cos = cosines(v, ref)
            print(
                f"    {what:<72} {len(batch) / wall:7.0f} q/s {cpu:7.1f} CPU-s  x{ref_cpu / cpu:.2f} CPU "
                f"x{ref_wall / wall:.2f} wall  cos min {cos.min():.5f} mean {cos.mean():.5f}  {load()}"
            )


def tune(name: str, texts: list[str]) -> None:
    """Print the fp32 ONNX path's throughput at several batch sizes and onnxruntime thread counts."""
    from embedllm import embedders

    got = embedders.load_embedder(name, "cpu", "onnx")
    print(f"\n  tuning {name} onnx on {len(texts):,} questions")
    for threads in (1, 2):
        model = embedders._onnx_model(got.source, Path(got.onnx_file), threads)
        for batch_size in (16, 32, 64, 128):
            model.encode(texts[:batch_size], batch_size=batch_size)
            _, wall, cpu = timed(model, texts, batch_size)
            print(
                f"    threads {threads} batch {batch_size:>3}: {len(texts) / wall:6.0f} q/s "
                f"{len(texts) / cpu:6.0f} q/CPU-s  {load()}"
            )


def main() -> None:
    """Compare the backends on MiniLM (and mpnet when installed) at the issue's sizes, or small ones with --quick."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 short and 200 long questions")
    ap.add_argument("--tune", action="store_true", help="also time batch sizes and thread counts (fp32 ONNX)")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    import onnxruntime
    import torch

    from embedllm.embedders import DEMO_EMBEDDER, MPNET_INSTALL, PAPER_EMBEDDER, mpnet_dir, mpnet_parts

    n_short, n_long = (1_000, 200) if args.quick else (10_000, 2_000)
    texts = {"short": short_questions(n_short), "long": long_questions(n_long)}
    print(
        f"{os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{onnxruntime.__version__}; {load()}"
    )
    models = [DEMO_EMBEDDER]
    if mpnet_parts() is not None or (mpnet_dir() / "modules.json").exists():
        models.append(PAPER_EMBEDDER)
    else:
        print(f"{PAPER_EMBEDDER}: skipped, its parts are not installed ({MPNET_INSTALL})")
    for name in models:
        print(f"\n{name}")
        compare(name, texts, args.batch_size)
        if args.tune:
            tune(name, texts["short"][: n_short // 5] + texts["long"][: n_long // 5])


if __name__ == "__main__":
    main()
