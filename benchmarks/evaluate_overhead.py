"""Overhead of `embedllm evaluate` over a bare `lm_eval.simple_evaluate` of the same model and tasks, and the time
of a rerun with nothing new (targets: <= 10 % overhead; rerun <= 5 s with no lm-eval call).

Every measurement is a fresh process, timed end to end (imports, model load, evaluation, and for the stage:
staging Parquet, the loader's transaction and eval_runs), alternating stage and bare runs; medians are reported.
The bare run is what a user would write without embedllm:
    lm_eval.simple_evaluate(model="hf", model_args=..., tasks=[...], task_manager=TaskManager(include_path=...),
                            log_samples=True, num_fewshot=0, batch_size=8, device="cpu", limit=...)
measured twice: with lm-eval's default TaskManager (indexes its ~15k built-in YAMLs) and with
include_defaults=False (the fastest bare variant; the overhead target is judged against this one).

    python benchmarks/evaluate_overhead.py                       # tiny random model, full demo suite, 3 repeats
    python benchmarks/evaluate_overhead.py --smollm2-limit 20    # also SmolLM2-135M GGUF, 20 docs per task
    python benchmarks/evaluate_overhead.py --phases tiny         # in-process: lm-eval time vs the stage's own time
    python benchmarks/evaluate_overhead.py --phases smollm2 --smollm2-limit 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BARE = r"""
import sys, json
import lm_eval
from lm_eval.tasks import TaskManager
args = json.loads(sys.argv[1])
tm = TaskManager(include_path=args["include_path"], include_defaults=args["include_defaults"])
res = lm_eval.simple_evaluate(model="hf", model_args=args["model_args"], tasks=args["tasks"], task_manager=tm,
                              log_samples=True, num_fewshot=0, batch_size=8, device="cpu", limit=args["limit"],
                              bootstrap_iters=0)
print(json.dumps({t: r.get("acc,none", r.get("exact_match,flexible-extract")) for t, r in res["results"].items()}))
"""


CPU: dict[str, list[float]] = {}


def timed(cmd: list[str], env: dict, label: str = "") -> float:
    """Return the wall seconds of a command (raises if it fails); its CPU seconds go to CPU[label]."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.setdefault(label, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return seconds


def measure(
    label: str,
    model_args: dict,
    register: list[str],
    model_name: str,
    limit: int | None,
    repeats: int,
    work: Path,
    env: dict,
) -> dict:
    """Return median wall times of the stage, both bare variants and the nothing-new rerun for one model."""
    from embedllm.suites import load_suite

    suite = load_suite("demo")
    cli = str(Path(sys.executable).parent / "embedllm")
    bare_file = work / "bare_eval.py"
    bare_file.write_text(BARE)
    times: dict[str, list[float]] = {"stage": [], "bare_default_index": [], "bare_include_only": [], "rerun": []}
    lim = ["--limit", str(limit)] if limit else []
    for i in range(repeats):
        wh = work / f"{label}-{i}.duckdb"
        subprocess.run([cli, *register, "-w", str(wh)], env=env, check=True, capture_output=True)
        times["stage"].append(
            timed(
                [cli, "evaluate", "--suite", "demo", "--model", model_name, "-q", *lim, "-w", str(wh)],
                env,
                f"{label}:stage",
            )
        )
        for variant, defaults in (("bare_default_index", True), ("bare_include_only", False)):
            spec = {
                "model_args": model_args,
                "tasks": suite.task_names,
                "limit": limit,
                "include_defaults": defaults,
                "include_path": [str(p) for p in suite.include_path],
            }
            times[variant].append(
                timed([sys.executable, str(bare_file), json.dumps(spec)], env, f"{label}:{variant}")
            )
        times["rerun"].append(
            timed(
                [cli, "evaluate", "--suite", "demo", "--model", model_name, "-q", *lim, "-w", str(wh)],
                env,
                f"{label}:rerun",
            )
        )
        import duckdb

        con = duckdb.connect(str(wh), read_only=True)
        runs = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'success') FROM eval_runs"
        ).fetchall()[0]
        labels = con.execute("SELECT count(*) FROM correctness").fetchall()[0][0]
        con.close()
        print(
            f"  [{label} #{i + 1}] "
            + ", ".join(f"{k} {v[-1]:.1f} s ({CPU[f'{label}:{k}'][-1]:.1f} s cpu)" for k, v in times.items())
            + f"; eval_runs {runs[0]} ({runs[1]} ok) after rerun, {labels} labels",
            flush=True,
        )
        assert runs[0] == len(suite.tasks), "the rerun must not add eval_runs rows (no lm-eval call)"
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu = {k: statistics.median(CPU[f"{label}:{k}"]) for k in times}
    best_bare = med["bare_include_only"]
    return {
        "model": label,
        "limit": limit,
        "repeats": repeats,
        "median_seconds": med,
        "all_seconds": times,
        "median_cpu_seconds": cpu,
        "cpu_overhead_vs_include_only_pct": 100
        * (cpu["stage"] - cpu["bare_include_only"])
        / cpu["bare_include_only"],
        "overhead_vs_include_only_pct": 100 * (med["stage"] - best_bare) / best_bare,
        "overhead_vs_default_index_pct": 100
        * (med["stage"] - med["bare_default_index"])
        / med["bare_default_index"],
    }


def phases(model_dir: Path | None, work: Path, limit: int | None) -> dict:
    """Return in-process seconds of evaluate(): inside lm-eval (model load + simple_evaluate) vs the stage's own work."""
    import lm_eval

    import warehouse
    from embedllm import registry, settings
    from tasks import evaluate as ev

    spent = {"model_load": 0.0, "simple_evaluate": 0.0, "calls": 0}
    real_eval, real_load = lm_eval.simple_evaluate, ev._load_lm

    def timed_eval(*a, **k):
        t0 = time.perf_counter()
        try:
            return real_eval(*a, **k)
        finally:
            spent["simple_evaluate"] += time.perf_counter() - t0
            spent["calls"] += 1

    def timed_load(job):
        t0 = time.perf_counter()
        try:
            return real_load(job)
        finally:
            spent["model_load"] += time.perf_counter() - t0

    lm_eval.simple_evaluate, ev._load_lm = timed_eval, timed_load
    settings.use_warehouse(work / "phases.duckdb")
    with warehouse.session() as con:
        if model_dir is None:  # SmolLM2-135M-Instruct GGUF from its PyPI package
            e = registry.demo_entries()[0]
            name = registry.add_model(
                con, e.name, revision=e.revision, model_args=e.model_args, gguf_file=e.gguf_file
            ).name
        else:
            name = registry.add_model(con, str(model_dir)).name
        t0 = time.perf_counter()
        ev.evaluate(con, "demo", models=[name], limit=limit, progress=False)
        total = time.perf_counter() - t0
    lm_eval.simple_evaluate, ev._load_lm = real_eval, real_load
    inside = spent["model_load"] + spent["simple_evaluate"]
    return {
        "total": total,
        **spent,
        "stage_own": total - inside,
        "stage_own_pct_of_lm_eval": 100 * (total - inside) / inside,
    }


def main() -> None:
    """Run the measurements and print a table plus JSON."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tiny-limit", type=int, default=None, help="docs per task for the tiny model (default all)")
    ap.add_argument("--smollm2-limit", type=int, default=0, help="also measure SmolLM2 GGUF with this --limit")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument(
        "--phases",
        choices=["tiny", "smollm2"],
        help="only the in-process breakdown of one stage run "
        "(limit: --tiny-limit for tiny, --smollm2-limit for smollm2)",
    )
    args = ap.parse_args()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="evalbench-") as tmp:
        work = Path(tmp)
        if args.phases:
            os.environ.update({k: v for k, v in env.items() if k.endswith(("OFFLINE", "PARALLELISM"))})
            from embedllm.tiny_lm import build_tiny_lm

            model = build_tiny_lm(work / "tiny-lm") if args.phases == "tiny" else None
            limit = args.tiny_limit if args.phases == "tiny" else (args.smollm2_limit or None)
            print(json.dumps(phases(model, work, limit), indent=1))
            return
        if not args.skip_tiny:
            from embedllm.tiny_lm import build_tiny_lm

            tiny = build_tiny_lm(work / "tiny-lm")
            results.append(
                measure(
                    "tiny",
                    {"pretrained": str(tiny)},
                    ["models", "add", str(tiny)],
                    str(tiny),
                    args.tiny_limit,
                    args.repeats,
                    work,
                    env,
                )
            )
        if args.smollm2_limit:
            from embedllm import registry

            smol = registry.demo_entries()[0]
            results.append(
                measure(
                    "smollm2",
                    {"pretrained": smol.target, "gguf_file": smol.gguf_file},
                    ["models", "demo"],
                    smol.name,
                    args.smollm2_limit,
                    args.repeats,
                    work,
                    env,
                )
            )
    print(f"load average after: {os.getloadavg()}")
    print(
        f"\n{'model':<8} {'limit':>5} {'stage s':>8} {'bare(incl) s':>12} {'bare(dflt) s':>12} "
        f"{'overhead':>9} {'rerun s':>8} {'cpu overhead':>12} {'rerun cpu s':>11}"
    )
    for r in results:
        m = r["median_seconds"]
        print(
            f"{r['model']:<8} {str(r['limit'] or 'all'):>5} {m['stage']:>8.1f} {m['bare_include_only']:>12.1f} "
            f"{m['bare_default_index']:>12.1f} {r['overhead_vs_include_only_pct']:>8.1f}% {m['rerun']:>8.2f} "
            f"{r['cpu_overhead_vs_include_only_pct']:>11.1f}% {r['median_cpu_seconds']['rerun']:>11.2f}"
        )
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
