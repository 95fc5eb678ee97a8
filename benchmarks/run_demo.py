"""Measure `embedllm run` on the demo: a first run from a fresh warehouse, then a second run with nothing new.

For each run: wall time and the peak memory of the whole process tree (the CLI, Prefect's ephemeral API
process, Dask workers, ...), sampled with psutil every 0.2 s; for the second run also whether lm-eval was
called (eval_runs must not grow) and whether anything was retrained.

    python benchmarks/run_demo.py                    # fresh warehouse in benchmarks/out/run_demo/
    python benchmarks/run_demo.py --limit 20 --dask  # extra options go to `embedllm run`

Targets: second run with no lm-eval call, <= 10 s (issue 13's no-op nightly run; a deployment talks to a
running server, so measure that case with --api-url http://127.0.0.1:4200/api).

    python benchmarks/run_demo.py --out /tmp/noop --registry models.yaml --suite mini.yaml --limit 20 --api-url URL
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "out" / "run_demo"
SECOND_RUN_TARGET_SECONDS = 10.0


def tree_rss(proc: psutil.Process) -> int:
    """Return the summed resident memory (bytes) of a process and all its descendants."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total


def run_measured(args: list[str], env: dict[str, str], log: Path) -> dict:
    """Run a command, sampling its process tree's memory; return wall seconds, peak MB and the exit code."""
    peak = 0
    t0, cpu0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as fh:
        proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT)
        ps = psutil.Process(proc.pid)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                try:
                    peak = max(peak, tree_rss(ps))
                except psutil.NoSuchProcess:
                    return
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        stop.set()
        sampler.join()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1),
        "load": round(os.getloadavg()[0], 2),
        "peak_mb": round(peak / 2**20),
        "exit_code": code,
        "log": str(log),
    }


def counts(db: Path) -> dict[str, int]:
    """Return row counts of the tables the second run must not grow (read-only)."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("eval_runs", "correctness", "training_runs", "validation_runs")
        }
    finally:
        con.close()


def main() -> None:
    """Run the two measurements and write benchmarks/out/run_demo/result.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the warehouse, logs and result")
    parser.add_argument("--keep", action="store_true", help="reuse the warehouse in --out (skip the fresh run)")
    parser.add_argument(
        "--ephemeral-home",
        action="store_true",
        help="use a fresh PREFECT_HOME in --out instead of the default ~/.prefect",
    )
    parser.add_argument("--api-url", help="PREFECT_API_URL of a running server (default: Prefect's ephemeral API)")
    args, run_args = parser.parse_known_args()
    out: Path = args.out
    db = out / "embedllm.duckdb"
    if not args.keep and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    if args.api_url:
        env["PREFECT_API_URL"] = args.api_url
    if args.ephemeral_home:
        env["PREFECT_HOME"] = str(out / "prefect_home")
    cli = [str(Path(sys.executable).parent / "embedllm"), "run", "-w", str(db), *run_args]
    previous = out / "result.json"
    result = json.loads(previous.read_text()) if args.keep and previous.exists() else {}
    result.update(command=" ".join(cli), cpus=os.cpu_count(), load_before=os.getloadavg())
    if not args.keep:
        result["first"] = run_measured(cli, env, out / "first.log")
        print(f"first run:  {result['first']}")
        if result["first"]["exit_code"] != 0:
            sys.exit(f"first run failed; see {out / 'first.log'}")
    before = counts(db)
    result["second"] = run_measured(cli, env, out / "second.log")
    after = counts(db)
    result["second"].update(
        lm_eval_called=after["eval_runs"] != before["eval_runs"],
        retrained=after["training_runs"] != before["training_runs"],
        target_seconds=SECOND_RUN_TARGET_SECONDS,
        within_target=result["second"]["seconds"] <= SECOND_RUN_TARGET_SECONDS,
    )
    result["load_after"] = os.getloadavg()
    print(f"second run: {result['second']}")
    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(f"wrote {out / 'result.json'}")


if __name__ == "__main__":
    main()
