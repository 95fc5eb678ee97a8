#!/usr/bin/env python
"""Benchmark: import a 112-model x 36,000-question dataset in the EmbedLLM CSV layout (~4M label rows).

    python benchmarks/import_embedllm_csv.py [--models 112] [--questions 36000] [--data DIR] [--keep]

Generates the dataset with embedllm.synthetic.write_embedllm_csv (1% duplicated pairs, half of them conflicting;
~2.6 GB of CSV with ~500-character prompts) unless --data points at an existing folder, then runs the real CLI
`embedllm import embedllm-csv DIR` in a child process on a fresh warehouse and reports its wall time, CPU time and
peak RSS (resource.getrusage(RUSAGE_CHILDREN)), then the idempotent re-import. Targets: <= 60 s, <= 4 GB.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_child(args: list[str]) -> tuple[float, str]:
    """Run the CLI in a child process; return (wall seconds, stdout)."""
    t0 = time.perf_counter()
    done = subprocess.run([str(Path(sys.executable).parent / "embedllm"), *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr.strip()}")
    return wall, done.stdout


def main() -> None:
    """Generate (or reuse) the dataset, import it twice in child processes, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--questions", type=int, default=36_000)
    ap.add_argument("--data", type=Path, help="existing EmbedLLM-layout folder (skips generation)")
    ap.add_argument("--keep", action="store_true", help="keep the generated data and warehouse")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-embedllm-csv-"))
    data = args.data
    if data is None:
        from embedllm.synthetic import make_matrix, write_embedllm_csv

        t0 = time.perf_counter()
        counts = write_embedllm_csv(make_matrix(args.models, args.questions, seed=0), tmp / "data")
        data = tmp / "data"
        print(
            f"generated {counts['n_rows']:,} rows ({counts['n_duplicate_pairs']:,} duplicated pairs, "
            f"{counts['n_conflicts']:,} conflicts) in {time.perf_counter() - t0:.1f} s"
        )
    size = sum(f.stat().st_size for f in data.glob("*.csv"))
    print(
        f"dataset {data}: {size / 1e9:.2f} GB of CSV; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    db = tmp / "bench.duckdb"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall, out = run_child(["import", "embedllm-csv", str(data), "--warehouse", str(db)])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(out.rstrip())
    print(f"first import: {wall:.1f} s wall, {cpu:.1f} s CPU (user+sys), peak RSS {after.ru_maxrss / 1024:.0f} MB")
    wall2, out2 = run_child(["import", "embedllm-csv", str(data), "--warehouse", str(db)])
    print(out2.rstrip())
    print(f"re-import (no-op): {wall2:.1f} s wall")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
