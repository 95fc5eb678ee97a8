"""Crash harness: kill -9 each writing stage at random moments and check the warehouse's invariants.

For every trial the stage runs as the real `embedllm` command in a child process on a copy of the warehouse as it
was before that stage, is killed with SIGKILL after a random delay, and then:
- the warehouse opens and answers queries;
- every counted table holds either its row count from before the stage or its count from after it (never between);
- no (model, question) or (question, embedder) pair is duplicated;
- the latest_* views never show a partial training run (a latest run always has all its embeddings, forecasts and
  probe rows), and no checkpoint file exists that no completed run records;
- rerunning the same command completes, to exactly the counts of an uninterrupted run.
The fast suite runs a few trials per stage; `-m slow` runs the full 24.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import warehouse
from embedllm.synthetic import make_matrix, write_embedllm_csv
from tasks.embed import CHUNK as EMBED_CHUNK

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "lm_eval" / "jsonl"
# Stages that commit in chunks on purpose (a killed embed resumes where it stopped): (table, rows per commit).
CHUNKED = {"question_embeddings": EMBED_CHUNK}

TABLES = (
    "models",
    "questions",
    "correctness",
    "loads",
    "question_embeddings",
    "validation_runs",
    "training_runs",
    "model_embeddings",
    "correctness_forecasts",
    "benchmark_forecasts",
    "benchmark_probe",
)


def stage_commands(data: Path) -> dict[str, list[str]]:
    """Return the writing commands in pipeline order (each runs on the state the previous ones left)."""
    return {
        "import": ["import", "embedllm-csv", str(data)],
        "load": [
            "import",
            "lm-eval",
            str(FIXTURES),
            "--model",
            "tiny-lm",
            "-l",
            "fx_mc=acc",
            "-l",
            "fx_gen=exact_match,flexible-extract",
            "-l",
            "fx_cont=p_correct>0.5",
        ],
        "validate": ["validate", "--config", str(data / "validation.yaml")],
        "embed": ["embed", "--model", "all-MiniLM-L6-v2"],
        "train": ["train", "--preset", "default"],
    }


def cli(db: Path, args: list[str]) -> subprocess.Popen:
    """Start `embedllm ARGS --warehouse DB` in a child process of its own group."""
    env = {**os.environ, "EMBEDLLM_WAREHOUSE": str(db), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", "from embedllm.cli import main; main()", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(db: Path, args: list[str]) -> float:
    """Run the command to completion; return its seconds (fail the test with its stderr if it fails)."""
    t0 = time.perf_counter()
    proc = cli(db, args)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"embedllm {' '.join(args)} failed: {err[-2000:]}"
    return time.perf_counter() - t0


def counts(db: Path) -> dict[str, int]:
    """Return the row count of every counted table (read-only)."""
    con = warehouse.connect(db, read_only=True)
    try:
        return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
    finally:
        con.close()


def check_invariants(
    db: Path, before: dict[str, int], after: dict[str, int], stage: str, finished: bool = False
) -> None:
    """Assert the invariants of a warehouse right after a killed stage."""
    now = counts(db)
    for table in TABLES:
        step = CHUNKED.get(table)
        if step and (now[table] - before[table]) % step == 0 and before[table] <= now[table] <= after[table]:
            continue  # whole chunks committed on purpose: a rerun adds only the rest
        assert now[table] in (before[table], after[table]), (
            f"{stage}: {table} has {now[table]} rows, neither {before[table]} (before) nor {after[table]} (after)"
        )
    con = warehouse.connect(db, read_only=True)
    try:
        one = lambda q: con.execute(q).fetchall()[0][0]
        assert one("SELECT count(*) - count(DISTINCT (model_id, question_id)) FROM correctness") == 0
        assert one("SELECT count(*) - count(DISTINCT (question_id, embedder)) FROM question_embeddings") == 0
        latest = con.execute("SELECT run_id, checkpoint_path FROM latest_training_run").fetchall()
        if latest:
            run_id, checkpoint = latest[0]
            n_models = one(f"SELECT count(*) FROM model_embeddings WHERE run_id = '{run_id}'")
            n_questions = one("SELECT count(*) FROM questions")
            assert n_models > 0 and Path(checkpoint).exists()
            assert (
                one(f"SELECT count(*) FROM correctness_forecasts WHERE run_id = '{run_id}'")
                == n_models * n_questions
            )
            assert one(f"SELECT count(*) FROM benchmark_forecasts WHERE run_id = '{run_id}'") > 0
            assert one(f"SELECT count(*) FROM benchmark_probe WHERE run_id = '{run_id}'") > 0
        recorded = {
            status: {
                Path(p).name
                for (p,) in con.execute(
                    "SELECT checkpoint_path FROM training_runs WHERE status "
                    + ("=" if status else "<>")
                    + " 'completed'"
                ).fetchall()
            }
            for status in (True, False)
        }
    finally:
        con.close()
    folder = db.parent / f"{db.stem}_checkpoints"
    on_disk = {p.name for p in folder.glob("*.pt*")} if folder.is_dir() else set()
    # a checkpoint file is always recorded by a run; one of an unfinished run is removed by the next train
    allowed = recorded[True] | (recorded[False] if not finished else set())
    assert on_disk <= allowed, f"{stage}: orphan checkpoint files {sorted(on_disk - allowed)}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run of every stage: (data folder, {stage: snapshot before}, {stage: counts}, seconds)."""
    root = tmp_path_factory.mktemp("crash")
    data = root / "data"
    write_embedllm_csv(make_matrix(n_models=12, n_questions=1500, emb_dim=16, seed=3), data)
    (data / "validation.yaml").write_text(
        "coverage:\n  max_missing_per_model: 1000000\nconstant_labels:\n  min_questions: 1000000\n"
    )
    db = root / "ref.duckdb"
    snapshots, before, after, seconds = {}, {}, {}, {}
    warehouse.connect(db).close()
    for stage, args in stage_commands(data).items():
        snapshots[stage] = root / f"before_{stage}.duckdb"
        shutil.copy(db, snapshots[stage])
        before[stage] = counts(db)
        seconds[stage] = finish(db, args)
        after[stage] = counts(db)
    return data, snapshots, before, after, seconds


def trials_for(n_total: int) -> list[tuple[str, int]]:
    """Return (stage, trial number) pairs spreading n_total trials over the stages."""
    stages = list(stage_commands(Path(".")))
    return [(stages[i % len(stages)], i) for i in range(n_total)]


def run_trial(reference, tmp_path, stage: str, trial: int) -> None:
    """Kill the stage at a random moment on a copy of its starting state; check invariants; rerun; compare."""
    data, snapshots, before, after, seconds = reference
    args = stage_commands(data)[stage]
    db = tmp_path / f"{stage}-{trial}.duckdb"
    shutil.copy(snapshots[stage], db)
    # the second half of a run is where its commits happen (the first seconds are imports)
    delay = random.Random(f"{stage}/{trial}").uniform(0.4, 1.0) * seconds[stage]
    proc = cli(db, args)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    check_invariants(db, before[stage], after[stage], f"{stage} killed after {delay:.1f} s")
    finish(db, args)
    rerun = counts(db)
    # exact counts: a killed training run left nothing behind, so the rerun adds exactly one run
    assert rerun == after[stage], f"{stage}: rerun gave {rerun}, an uninterrupted run {after[stage]}"
    check_invariants(db, after[stage], after[stage], f"{stage} rerun", finished=True)


@pytest.mark.parametrize("stage,trial", trials_for(5))
def test_a_killed_stage_leaves_before_or_after_and_reruns_to_the_same_counts(reference, tmp_path, stage, trial):
    run_trial(reference, tmp_path, stage, trial)


@pytest.mark.slow
@pytest.mark.parametrize("stage,trial", trials_for(24)[5:])
def test_many_kills_at_random_moments(reference, tmp_path, stage, trial):
    run_trial(reference, tmp_path, stage, trial)
