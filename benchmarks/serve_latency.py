"""Routing service latency: `embedllm serve` as a real process, requests over loopback HTTP (targets from issue 12:
one question p50 <= 20 ms and p99 <= 50 ms, embedding included; batches of 256 >= 200 questions/s; a bounded load
test with 0 failed requests across a hot reload and steady memory; proxy overhead over the upstream <= 5 ms p50).

Set-up (cached in benchmarks/out/serve/ unless --rebuild): synthetic EmbedLLM-layout data (--models x --questions),
imported, embedded with all-MiniLM-L6-v2, trained and forecast; two models get an endpoint: a tiny random LM
behind a real `transformers serve`. Each figure is printed with the 1-minute load average beside it; run it
alone (2 cores are easily saturated). Writes benchmarks/out/serve_latency.json.

    python benchmarks/serve_latency.py            # full run (~3 min after the first set-up)
    python benchmarks/serve_latency.py --quick    # fewer requests
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

OUT = ROOT / "benchmarks" / "out"
QUESTIONS = [
    "What is 12 times 11?",
    "Which planet is known as the red planet?",
    "Who wrote Pride and Prejudice?",
    "If all cats are animals and some animals are black, are some cats black?",
    "What is the boiling point of water at sea level in Celsius?",
    "Translate 'thank you' into French.",
    "How many sides does a hexagon have?",
    "What gas do plants absorb from the air?",
]


def load() -> str:
    """Return the 1-minute load average, for printing beside a figure."""
    return f"load {os.getloadavg()[0]:.2f}"


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of VALUES."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    """Return a process's resident memory in MB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def build(folder: Path, n_models: int, n_questions: int) -> Path:
    """Return a trained warehouse of synthetic data embedded with all-MiniLM-L6-v2 (cached)."""
    from embedllm.synthetic import make_matrix, write_embedllm_csv
    from tasks.embed import embed_questions
    from tasks.forecast import forecast
    from tasks.ingest_embedllm_csv import import_embedllm_csv
    from tasks.train import train

    db = folder / "wh.duckdb"
    if db.exists():
        return db
    folder.mkdir(parents=True, exist_ok=True)
    write_embedllm_csv(
        make_matrix(n_models=n_models, n_questions=n_questions, emb_dim=16, seed=1), folder / "data"
    )
    import_embedllm_csv(db, folder / "data")
    embed_questions(db, "all-MiniLM-L6-v2", progress=True)
    run = train(db, require_validation=False)
    forecast(db, run.run_id, probe=False)
    return db


def give_endpoints(db: Path, url: str, served_name: str, n: int = 2) -> list[str]:
    """Register the upstream URL as the endpoint of the first N models of DB (as `embedllm models add`); return names."""
    import warehouse
    from tasks.register import add_model

    with warehouse.session(db, read_only=True) as con:
        names = [r[0] for r in con.execute("SELECT name FROM models ORDER BY model_id LIMIT ?", [n]).fetchall()]
    for name in names:
        add_model(db, name, base_url=url, model_args={"model": served_name})
    return names


def timed_requests(client: httpx.Client, make, n: int) -> tuple[list[float], int]:
    """Return (milliseconds per request, failures) for N sequential requests built by make(i)."""
    times, failures = [], 0
    for i in range(n):
        method, path, body = make(i)
        t0 = time.perf_counter()
        r = client.request(method, path, json=body)
        times.append((time.perf_counter() - t0) * 1000)
        failures += r.status_code != 200
    return times, failures


def summary_ms(times: list[float]) -> dict:
    """Return p50/p99/mean of a list of milliseconds."""
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 0.99),
        "mean_ms": statistics.fmean(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=40)
    parser.add_argument("--questions", type=int, default=3000)
    parser.add_argument("--quick", action="store_true", help="fewer requests per figure")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached warehouse")
    args = parser.parse_args()
    from serving import Service
    from test_serve_proxy import CHAT_TEMPLATE, Upstream

    from embedllm.tiny_lm import build_tiny_lm

    folder = OUT / "serve"
    if args.rebuild and folder.exists():
        import shutil

        shutil.rmtree(folder)
    db = build(folder, args.models, args.questions)
    n = 100 if args.quick else 1000
    figures: dict = {"setup": vars(args) | {"load_at_start": os.getloadavg(), "cores": os.cpu_count()}}

    lm = folder / "tiny-lm"
    if not lm.exists():
        build_tiny_lm(lm, seed=1)
        config = json.loads((lm / "tokenizer_config.json").read_text())
        (lm / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": CHAT_TEMPLATE}))
    upstream = Upstream(lm)
    upstream.wait_up()
    names = give_endpoints(db, upstream.url, str(lm))
    svc = Service(db, "--reload-interval", "1")
    try:
        svc.wait_up()
        c = svc.client
        timed_requests(c, lambda i: ("POST", "/route", {"prompt": QUESTIONS[i % 8]}), 20)  # warm-up

        # 1. one question per request, embedding included (the default 3 nearest-question explanations too)
        for explain in (3, 0):
            times, fails = timed_requests(
                c,
                lambda i, e=explain: ("POST", "/route", {"prompt": f"{QUESTIONS[i % 8]} ({i})", "explain": e}),
                n,
            )
            key = f"single_explain{explain}"
            figures[key] = summary_ms(times) | {"failures": fails, "load": os.getloadavg()[0]}
            f = figures[key]
            print(
                f"single question, explain={explain}: p50 {f['p50_ms']:.1f} ms, p99 {f['p99_ms']:.1f} ms ({load()})"
            )

        # 2. batches of 256 prompts
        batches = 5 if args.quick else 20
        batch = [f"{QUESTIONS[i % 8]} ({i})" for i in range(256)]
        times, fails = timed_requests(c, lambda i: ("POST", "/route", {"prompts": batch}), batches)
        qps = 256 * len(times) / (sum(times) / 1000)
        figures["batch256"] = {"questions_per_s": qps, "failures": fails, "load": os.getloadavg()[0]}
        print(f"batches of 256: {qps:.0f} questions/s ({load()})")

        # 3. bounded load test: 4 clients x fixed count, a hot reload (a new training run) in the middle
        total = 400 if args.quick else 4000
        rss_before = rss_mb(svc.proc.pid)
        statuses: list[int] = []
        lock = threading.Lock()

        def client_loop(k: int) -> None:
            with httpx.Client(base_url=svc.url, timeout=60) as cl:
                for i in range(total // 4):
                    code = cl.post("/route", json={"prompt": f"{QUESTIONS[(i + k) % 8]} {i}"}).status_code
                    with lock:
                        statuses.append(code)

        first_run = c.get("/health").json()["run_id"]
        threads = [threading.Thread(target=client_loop, args=(k,)) for k in range(4)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        from tasks.forecast import forecast
        from tasks.train import train

        time.sleep(1.0)
        run = train(db, require_validation=False, force=True, overrides={"epochs": 3, "dim_grid": []})
        forecast(db, run.run_id, probe=False)
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        health = c.get("/health").json()
        metrics = c.get("/metrics").text
        reloads = [ln for ln in metrics.splitlines() if ln.startswith("embedllm_reloads_total")]
        figures["load_test"] = {
            "requests": len(statuses),
            "failed": sum(s != 200 for s in statuses),
            "seconds": seconds,
            "requests_per_s": len(statuses) / seconds,
            "reloaded": health["run_id"] != first_run,
            "reloads_metric": reloads,
            "rss_mb_before": rss_before,
            "rss_mb_after": rss_mb(svc.proc.pid),
            "load": os.getloadavg()[0],
        }
        f = figures["load_test"]
        print(
            f"load test: {f['requests']} requests in {seconds:.1f} s, {f['failed']} failed, reloaded to "
            f"{health['run_id']} ({f['reloaded']}), RSS {f['rss_mb_before']:.0f} -> {f['rss_mb_after']:.0f} MB ({load()})"
        )

        # 4. proxy overhead: the same completion straight to the upstream vs through the router, interleaved
        req = {"prompt": "Question: 2+2?\nAnswer:", "max_tokens": 1, "temperature": 0}
        direct, proxied, routed_only = [], [], []
        with httpx.Client(timeout=60) as up:
            for i in range(n // 2 + 10):
                t0 = time.perf_counter()
                up.post(f"{upstream.url}/completions", json={**req, "model": str(lm)})
                d = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                r = c.post("/v1/completions", json={**req, "model": "router:" + ",".join(names)})
                p = (time.perf_counter() - t0) * 1000
                t0 = time.perf_counter()
                c.post("/route", json={"prompt": req["prompt"], "models": names, "explain": 0})
                o = (time.perf_counter() - t0) * 1000
                if i >= 10 and r.status_code == 200:  # the first ten warm up both paths
                    direct.append(d)
                    proxied.append(p)
                    routed_only.append(o)
        figures["proxy"] = {
            "direct": summary_ms(direct),
            "proxied": summary_ms(proxied),
            "route_alone": summary_ms(routed_only),
            "overhead_p50_ms": statistics.median(proxied) - statistics.median(direct),
            "load": os.getloadavg()[0],
        }
        f = figures["proxy"]
        print(
            f"proxy: upstream direct p50 {f['direct']['p50_ms']:.1f} ms, through the router "
            f"{f['proxied']['p50_ms']:.1f} ms: overhead {f['overhead_p50_ms']:.1f} ms p50 "
            f"(routing the prompt alone, over HTTP: {f['route_alone']['p50_ms']:.1f} ms) ({load()})"
        )
    finally:
        svc.stop()
        upstream.stop()
    figures["setup"]["load_at_end"] = os.getloadavg()
    OUT.mkdir(exist_ok=True)
    (OUT / "serve_latency.json").write_text(json.dumps(figures, indent=2))
    print(f"-> {OUT / 'serve_latency.json'}")


if __name__ == "__main__":
    main()
