"""Time `validate()` on a 112-model x 36,000-question synthetic matrix (4.03M labels) in a fresh tmp warehouse.

Target (issue 4): validation of 4M labels <= 10 s. Great Expectations is imported before the clock starts (its
import time is printed separately: it is paid once per process, by `embedllm validate` too).

    python benchmarks/validate_4m.py [--models 112] [--questions 36000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def build_warehouse(path: Path, n_models: int, n_questions: int):
    """Return a connection to a warehouse at PATH holding make_matrix(n_models, n_questions), bulk-inserted."""
    import warehouse
    from embedllm.ids import question_id
    from embedllm.synthetic import make_matrix

    sm = make_matrix(n_models, n_questions, emb_dim=8)
    con = warehouse.connect(path)
    qids = np.array([question_id(b, str(i)) for i, b in enumerate(sm.benchmark)], dtype=object)
    questions = pa.table(
        {
            "question_id": qids,
            "benchmark": sm.benchmark.astype(object),
            "task": sm.benchmark.astype(object),
            "doc_id": np.arange(n_questions, dtype=np.int64),
            "prompt": [f"synthetic question {i}" for i in range(n_questions)],
            "n_choices": pa.array([int(c) if c > 0 else None for c in sm.n_choices], type=pa.int64()),
            "output_type": ["multiple_choice" if c > 0 else "generate_until" for c in sm.n_choices],
            "split": sm.split.astype(object),
            "source": ["synthetic"] * n_questions,
        }
    )
    models = pa.table({"name": sm.model_names})
    labels = pa.table(
        {
            "model_id": pa.array(np.repeat(np.arange(1, n_models + 1, dtype=np.int32), n_questions)),
            "question_id": pa.array(np.tile(qids, n_models), type=pa.string()),
            "label": pa.array(sm.labels.reshape(-1), type=pa.int8()),
            "load_id": pa.array(["benchmark"] * (n_models * n_questions), type=pa.string()),
        }
    )
    for name, table in (("_q", questions), ("_m", models), ("_l", labels)):
        con.register(name, table)
    con.execute("INSERT INTO models (name, source) SELECT name, 'synthetic' FROM _m")
    con.execute(
        "INSERT INTO questions (question_id, benchmark, task, doc_id, prompt, n_choices, output_type, split, "
        "source) SELECT question_id, benchmark, task, doc_id, prompt, n_choices, output_type, split, source FROM _q"
    )
    con.execute(
        "INSERT INTO correctness (model_id, question_id, label, load_id) "
        "SELECT model_id, question_id, label, load_id FROM _l"
    )
    return con


def main() -> None:
    """Build the warehouse, then time validate() (with and without Data Docs) and its two halves."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=112)
    ap.add_argument("--questions", type=int, default=36_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="validate4m-"))
    db = tmp / "wh.duckdb"
    t = time.perf_counter()
    con = build_warehouse(tmp / "wh.duckdb", args.models, args.questions)
    n = con.execute("SELECT count(*) FROM correctness").fetchall()[0][0]
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"warehouse: {n:,} labels ({args.models} models x {args.questions:,} questions) built in "
        f"{time.perf_counter() - t:.1f} s at {tmp}"
    )

    t = time.perf_counter()
    import great_expectations  # noqa: F401

    print(f"import great_expectations: {time.perf_counter() - t:.1f} s (once per process, not counted below)")
    from embedllm.validation import load_config, run_checks
    from tasks.validate import collect_frames, validate

    for i in range(args.repeat):
        t, cpu = time.perf_counter(), time.process_time()
        result = validate(db, data_docs=True, force=True).result
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(
            f"validate() #{i + 1} with Data Docs: {wall:.2f} s wall, {cpu:.2f} s CPU (all threads; the wall time "
            f"an idle machine needs is at most this)  success={result.success}  ({len(result.checks)} "
            f"expectations, {len(result.failed)} failed, {len(result.errors)} errors)"
        )
    t = time.perf_counter()
    result = validate(db, data_docs=False, force=True).result
    print(f"validate() without Data Docs: {time.perf_counter() - t:.2f} s  success={result.success}")

    cfg = load_config()
    t = time.perf_counter()
    frames = collect_frames(con, cfg)
    t_frames = time.perf_counter() - t
    t = time.perf_counter()
    run_checks(frames, cfg)
    print(
        f"  of which: pulling the frames from DuckDB {t_frames:.2f} s, GE expectations {time.perf_counter() - t:.2f} s"
    )

    # a defective warehouse: one model lacks 1,000 labels, another has all-1 labels on one benchmark
    con.execute(
        "DELETE FROM correctness WHERE model_id = 1 AND question_id IN "
        "(SELECT question_id FROM questions ORDER BY question_id LIMIT 1000)"
    )
    con.execute(
        "UPDATE correctness SET label = 1 WHERE model_id = 2 AND question_id IN "
        "(SELECT question_id FROM questions WHERE benchmark = 'mmlu')"
    )
    t = time.perf_counter()
    result = validate(db, data_docs=True, force=True).result
    print(
        f"validate() on a defective warehouse: {time.perf_counter() - t:.2f} s  success={result.success}  "
        f"failed: {', '.join(f'{c.check} ({c.unexpected_count})' for c in result.failed)}"
    )
    print(f"Data Docs: {result.data_docs_path}")
    con.close()


if __name__ == "__main__":
    main()
