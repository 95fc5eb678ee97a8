"""The train stage and forecast stage on a warehouse of the paper's size: 112 models x 36,000 questions.

Builds a real warehouse in a temporary folder (the synthetic matrix through tasks.load.load_batches, one batch
per model; 768-d question embeddings written to question_embeddings; a successful validation_runs row), then
times `tasks.train.train` (default preset, reading the matrix from DuckDB, writing the run, checkpoint and
model embeddings) and `tasks.forecast.forecast`: its forecasts (4,032,000 correctness forecasts built as one
Arrow table and bulk-inserted, then benchmark forecasts in SQL) and, timed on their own, the probe.

    python benchmarks/forecast_write.py                 # add --no-probe to skip the probe
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

import warehouse  # noqa: E402
from embedllm.ids import question_id  # noqa: E402
from embedllm.synthetic import make_matrix  # noqa: E402
from tasks.load import Batch, Meta, load_batches  # noqa: E402


def build(con, sm, embedder: str) -> None:
    """Load the synthetic matrix and its question embeddings into the warehouse; mark it validated."""
    qids = [question_id(f"syn_{b}", str(i)) for i, b in enumerate(sm.benchmark)]
    base = pl.DataFrame(
        {
            "question_id": qids,
            "benchmark": sm.benchmark.tolist(),
            "task": [f"syn_{b}" for b in sm.benchmark],
            "prompt": [f"synthetic question {i}" for i in range(len(qids))],
        }
    )
    batches = [
        Batch(
            Meta(kind="lm-eval-import", content_hash=f"bench-{name}", model=name),
            base.with_columns(pl.Series("label", sm.labels[m].astype(np.int8))),
        )
        for m, name in enumerate(sm.model_names)
    ]
    load_batches(con, batches)
    warehouse.upsert(
        con,
        "question_embeddings",
        pl.DataFrame(
            {
                "question_id": qids,
                "embedder": embedder,
                "embedding": pl.Series(list(sm.embeddings), dtype=pl.List(pl.Float32)),
            }
        ),
    )
    when = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=1)
    con.execute(
        "INSERT INTO validation_runs (run_id, created_at, success, n_expectations, n_failed, n_errors) "
        "VALUES ('bench', ?, true, 1, 0, 0)",
        [when],
    )


def main() -> None:
    """Build the warehouse, time train / forecasts / probe, print and save the figures."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--questions", type=int, default=36_000)
    ap.add_argument("--no-probe", action="store_true")
    args = ap.parse_args()
    from tasks.forecast import forecast
    from tasks.train import train

    figures: dict = {"setup": vars(args) | {"load_at_start": os.getloadavg()}}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        with warehouse.session(path) as con:
            sm = make_matrix(args.models, args.questions, emb_dim=768, seed=0)
            t = time.perf_counter()
            build(con, sm, "synthetic-768")
            figures["build_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        result = train(path, force=True)
        figures["train_stage_seconds"] = time.perf_counter() - t
        figures["train_metrics"] = {k: v for k, v in result.metrics.items() if not isinstance(v, dict)}
        print(
            f"train(): {figures['train_stage_seconds']:.1f}s (fit {result.metrics['train_seconds']:.1f}s, "
            f"test acc {result.metrics['test_accuracy']:.4f})",
            flush=True,
        )
        t = time.perf_counter()
        written = forecast(path, result.run_id, probe=not args.no_probe)
        figures["forecast_seconds"] = time.perf_counter() - t
        figures["write_forecasts"] = {
            k: getattr(written, k)
            for k in (
                "correctness_forecasts",
                "benchmark_forecasts",
                "predict_seconds",
                "insert_seconds",
                "seconds",
            )
        }
        print(
            f"forecast(): {written.correctness_forecasts:,} rows in {written.seconds:.1f}s "
            f"(predict {written.predict_seconds:.1f}s, insert {written.insert_seconds:.1f}s); "
            f"{written.benchmark_forecasts} benchmark forecasts",
            flush=True,
        )
        if written.probe is not None:
            figures["probe_seconds"] = written.probe_seconds
            figures["probe"] = written.probe
            print(f"probe: {written.probe_seconds:.1f}s", flush=True)
            for bench, r in written.probe.items():
                print(f"  {bench:12s} r={r['pearson_r']:.3f} MAE={r['mae']:.4f} n={r['n_models']}")
        figures["database_bytes"] = path.stat().st_size
    figures["setup"]["load_at_end"] = os.getloadavg()
    out = ROOT / "benchmarks" / "out" / "forecast_write.json"
    out.write_text(json.dumps(figures, indent=2, default=float))
    print(
        json.dumps(
            {k: v for k, v in figures.items() if k not in ("probe", "train_metrics")}, indent=2, default=float
        )
    )


if __name__ == "__main__":
    main()
