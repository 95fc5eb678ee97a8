"""Time `build_report` on a synthetic warehouse trained by the real train + forecast stages.

    python benchmarks/report_build.py --models 112 --questions 36000 [--keep DIR]

Prints the seconds of each step (load, train, forecasts, report) and the size of the written report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def main() -> None:
    """Build a warehouse, train, forecast, then time the report build."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--questions", type=int, default=36_000)
    ap.add_argument("--keep", type=Path, default=None, help="folder to keep the warehouse and report in")
    args = ap.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="embedllm-report-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    path = root / "wh.duckdb"

    from test_report import EMBEDDER, load_synthetic

    import warehouse
    from tasks.forecast import forecast
    from tasks.report import build_report
    from tasks.train import train

    with warehouse.session(path) as con:
        t0 = time.perf_counter()
        load_synthetic(con, args.models, args.questions, seed=0)
        t1 = time.perf_counter()
    run = train(path, embedder=EMBEDDER, require_validation=False, force=True)
    t2 = time.perf_counter()
    forecast(path, run.run_id)
    t3 = time.perf_counter()
    index = build_report(path, out_dir=root / "report")
    t4 = time.perf_counter()
    size = sum(f.stat().st_size for f in index.parent.iterdir())
    print(
        f"{args.models} models x {args.questions} questions: load {t1 - t0:.1f} s, train {t2 - t1:.1f} s, "
        f"forecasts {t3 - t2:.1f} s, report {t4 - t3:.1f} s ({size / 1e6:.1f} MB in {index.parent})"
    )


if __name__ == "__main__":
    main()
