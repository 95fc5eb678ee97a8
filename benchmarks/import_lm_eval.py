#!/usr/bin/env python
"""Benchmark: lm-eval samples imported per second (parsing + batches + loading), on format-real large files.

    python benchmarks/import_lm_eval.py [--copies 20000]

Builds an lm-eval >= 0.4.3 output folder in a temp dir by replicating the rows of the recorded fixture
(tests/fixtures/lm_eval/jsonl, produced by the real harness): every copy of a sample gets a new doc_id and a new
doc_hash, everything else (contexts, stringified log-likelihood tuples, filters, metrics) stays byte-for-byte as
lm-eval wrote it, so the aggregates in the results file still hold. fx_mc (multiple choice, 2-shot) and fx_gen
(generative, 2 filters => 2 rows per doc) are replicated; then read_lm_eval_dir + batches_from_results +
load_batches run on a fresh warehouse. Target: >= 50,000 samples/s, parsing included.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import orjson

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lm_eval" / "jsonl" / "tiny-lm"
RULES = {"fx_mc": "acc", "fx_gen": "exact_match,flexible-extract"}


def replicate(dest: Path, copies: int) -> int:
    """Write a results file and samples files holding COPIES copies of each fixture sample; return rows written."""
    newest = max(FIXTURE.glob("results_*.json"), key=lambda p: p.name)
    stamp = newest.stem.removeprefix("results_")
    results = json.loads(newest.read_text())
    for drop in ("fx_cont", "fx_suite"):
        for key in ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples"):
            results.get(key, {}).pop(drop, None)
    results["group_subtasks"] = {}
    dest.mkdir(parents=True)
    total = 0
    for task in RULES:
        rows = [
            orjson.loads(line) for line in (FIXTURE / f"samples_{task}_{stamp}.jsonl").read_bytes().splitlines()
        ]
        n_docs = len({r["doc_id"] for r in rows})
        with open(dest / f"samples_{task}_{stamp}.jsonl", "wb") as fh:
            for c in range(copies):
                for r in rows:
                    r2 = dict(
                        r,
                        doc_id=c * n_docs + r["doc_id"],
                        doc_hash=hashlib.sha256(f"{r['doc_hash']}/{c}".encode()).hexdigest(),
                    )
                    fh.write(orjson.dumps(r2) + b"\n")
                    total += 1
        results["n-samples"][task] = {"original": n_docs * copies, "effective": n_docs * copies}
    (dest / newest.name).write_text(json.dumps(results, indent=2))
    return total


def main() -> None:
    """Build the files, time parse and load separately, print samples/s."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=20_000, help="copies of each fixture sample (x 32 rows)")
    args = ap.parse_args()
    os.environ.setdefault("EMBEDLLM_WAREHOUSE", "unused")
    import warehouse
    from embedllm.labels import parse_overrides
    from tasks.ingest_lm_eval import batches_from_results, read_lm_eval_dir
    from tasks.load import load_batches

    tmp = Path(tempfile.mkdtemp(prefix="bench-lm-eval-"))
    try:
        n = replicate(tmp / "out" / "model", args.copies)
        size = sum(f.stat().st_size for f in (tmp / "out" / "model").iterdir())
        print(
            f"{n:,} samples in {size / 1e6:.0f} MB of JSONL; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs"
        )
        c0, t0 = time.process_time(), time.perf_counter()
        results, samples = read_lm_eval_dir(tmp / "out")
        t_read = time.perf_counter() - t0
        batches = batches_from_results(
            results,
            samples,
            model="bench/model",
            kind="lm-eval-import",
            source=str(tmp),
            rules=parse_overrides([f"{k}={v}" for k, v in RULES.items()]),
        )
        t_parse = time.perf_counter() - t0
        con = warehouse.connect(tmp / "bench.duckdb")
        t1 = time.perf_counter()
        report = load_batches(con, batches)
        t_load = time.perf_counter() - t1
        total, cpu = time.perf_counter() - t0, time.process_time() - c0
        con.close()
        labels = sum(b.rows.height for b in batches)
        print(
            f"read JSON {t_read:.2f} s; parse to batches {t_parse:.2f} s ({n / t_parse:,.0f} samples/s); "
            f"load {t_load:.2f} s ({report.n_labels:,} labels)"
        )
        print(
            f"total {total:.2f} s wall, {cpu:.2f} s CPU (all threads): {n / total:,.0f} samples/s by wall, "
            f"{n / cpu:,.0f} samples per CPU-second "
            f"({labels / total:,.0f} labels/s; generative docs log 2 samples each); "
            f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
