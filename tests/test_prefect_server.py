"""End to end against a real Prefect server: start `prefect server start` on 127.0.0.1 (PREFECT_HOME in tmp), run
`embedllm run` on two tiny models with PREFECT_API_URL pointing at it, then find the pipeline's flow run and its
artifacts through the REST API, and stop the server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import warehouse

ROOT = Path(__file__).resolve().parent.parent
SERVER_START_TIMEOUT = 180.0
EXPECTED_ARTIFACTS = {
    "leaderboard",
    "evaluation-progress",
    "validation-summary",
    "data-docs",
    "training-metrics",
    "benchmark-forecasts",
    "report",
    "stage-reports",
    "onboarded-models",
    "drift",
}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path) -> dict[str, str]:
    """Return the environment for the server and its clients: PREFECT_HOME in tmp, no telemetry, offline HF."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """A real `prefect server start` on a free local port; yields its API URL; stopped afterwards."""
    home = tmp_path_factory.mktemp("prefect_home")
    port = free_port()
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=server_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    try:
        while True:
            assert proc.poll() is None, f"prefect server exited: {(home / 'server.log').read_text()[-2000:]}"
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "prefect server did not answer /api/health in time"
            time.sleep(0.5)
        yield {"api": api, "home": home}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


MINI_SUITE = """\
name: mini
description: two demo tasks (one multiple-choice, one generative) for a fast end-to-end run
include_path: {demo}
tasks:
  - task: demo_arithmetic
    benchmark: arithmetic
    label_rule: acc
  - task: demo_gen_math
    benchmark: gen_math
    label_rule: exact_match,flexible-extract
"""


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> list[str]:
    """Two tiny random causal LMs (different seeds) saved as local model folders; returns their paths."""
    from embedllm.tiny_lm import build_tiny_lm

    root = tmp_path_factory.mktemp("tiny_models")
    return [str(build_tiny_lm(root / f"tiny-{seed}", seed=seed)) for seed in (0, 1)]


def test_pipeline_runs_against_a_real_server_and_its_artifacts_are_in_the_api(
    prefect_server, tiny_models, tmp_path
):
    from tasks.register import add_model

    suite = tmp_path / "mini.yaml"
    suite.write_text(MINI_SUITE.format(demo=ROOT / "embedllm" / "demo_suite"))
    db = tmp_path / "wh.duckdb"
    names = [add_model(db, path).name for path in tiny_models]
    env = {**server_env(prefect_server["home"]), "PREFECT_API_URL": prefect_server["api"]}
    args = [
        str(Path(sys.executable).parent / "embedllm"),
        "run",
        "-w",
        str(db),
        "--limit",
        "4",
        "--suite",
        str(suite),
        "--registry",
        "none",
    ]
    for name in names:
        args += ["--model", name]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"Warehouse: {db}" in done.stdout
    assert prefect_server["api"] in done.stdout  # ran against the server, not an ephemeral API

    with httpx.Client(base_url=prefect_server["api"], timeout=30) as client:
        runs = client.post("/flow_runs/filter", json={"flows": {"name": {"any_": ["pipeline"]}}}).json()
        assert len(runs) == 1 and runs[0]["state"]["type"] == "COMPLETED"
        every_run = client.post("/flow_runs/filter", json={}).json()  # the pipeline and its evaluation subflow
        flows = {f["id"]: f["name"] for f in client.post("/flows/filter", json={}).json()}
        assert {flows[r["flow_id"]] for r in every_run} == {"pipeline", "evaluate-models"}
        assert {r["state"]["type"] for r in every_run} == {"COMPLETED"}
        # every artifact is on the pipeline run itself, not only on a subflow
        artifacts = client.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [runs[0]["id"]]}}}
        ).json()
    keys = {a["key"] for a in artifacts}
    assert EXPECTED_ARTIFACTS <= keys, f"missing artifacts: {EXPECTED_ARTIFACTS - keys}"
    leaderboard = next(a for a in artifacts if a["key"] == "leaderboard")
    assert leaderboard["type"] == "table" and all(n in leaderboard["data"] for n in names)
    progress = [a for a in artifacts if a["key"] == "evaluation-progress"]
    assert progress and progress[0]["data"] == 100.0


def prefect_cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the `prefect` CLI of this environment; fail the test with its output when it exits non-zero."""
    done = subprocess.run(
        [sys.executable, "-m", "prefect", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done


@pytest.fixture(scope="module")
def deployed(prefect_server, tmp_path_factory) -> dict:
    """prefect.yaml deployed from a copy of the project in an unrelated folder, with pools cpu and gpu created."""
    import shutil

    clone = tmp_path_factory.mktemp("elsewhere") / "embedllm-clone"
    clone.mkdir()
    shutil.copy(ROOT / "prefect.yaml", clone)
    shutil.copytree(ROOT / "flows", clone / "flows", ignore=shutil.ignore_patterns("__pycache__"))
    # The shell sets PWD to the folder `prefect deploy` runs in; prefect.yaml's pull step reads it.
    env = {**server_env(prefect_server["home"]), "PREFECT_API_URL": prefect_server["api"], "PWD": str(clone)}
    for pool in ("cpu", "gpu"):
        prefect_cli(["work-pool", "create", pool, "--type", "process"], env)
    prefect_cli(["--no-prompt", "deploy", "--all"], env, cwd=clone)
    return {"clone": clone, "env": env}


@pytest.mark.slow
def test_every_deployment_deploys_from_a_clean_copy_in_any_directory(prefect_server, deployed):
    with httpx.Client(base_url=prefect_server["api"], timeout=30) as client:
        deployments = {d["name"]: d for d in client.post("/deployments/filter", json={}).json()}
    assert set(deployments) == {"nightly", "on-demand", "evaluate", "train-gpu"}
    assert deployments["train-gpu"]["work_pool_name"] == "gpu"
    assert {d["work_pool_name"] for n, d in deployments.items() if n != "train-gpu"} == {"cpu"}
    assert [s["schedule"]["cron"] for s in deployments["nightly"]["schedules"]] == ["0 2 * * *"]
    for d in deployments.values():
        step = d["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]
        assert step["directory"] == str(deployed["clone"]), d["name"]


@pytest.mark.slow
def test_a_process_worker_runs_the_evaluate_deployment_from_the_copy(
    prefect_server, deployed, tiny_models, tmp_path
):
    import json

    from tasks.register import add_model

    db = tmp_path / "wh.duckdb"
    names = [add_model(db, path).name for path in tiny_models]
    suite = tmp_path / "mini.yaml"
    suite.write_text(MINI_SUITE.format(demo=ROOT / "embedllm" / "demo_suite"))
    env, job_env = (
        deployed["env"],
        {
            "EMBEDLLM_WAREHOUSE": str(db),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
        },
    )
    prefect_cli(
        [
            "deployment",
            "run",
            "evaluate/evaluate",
            "--param",
            f"suite={suite}",
            "--param",
            "limit=2",
            "--param",
            f"models={json.dumps(names)}",
            "--job-variable",
            f"env={json.dumps(job_env)}",
        ],
        env,
    )
    prefect_cli(["worker", "start", "--pool", "cpu", "--run-once"], env, cwd=tmp_path)
    with httpx.Client(base_url=prefect_server["api"], timeout=30) as client:
        deployment = client.post(
            "/deployments/filter", json={"deployments": {"name": {"any_": ["evaluate"]}}}
        ).json()
        runs = client.post(
            "/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [deployment[0]["id"]]}}}
        ).json()
    assert [r["state"]["type"] for r in runs] == ["COMPLETED"]
    with warehouse.session(db, read_only=True) as con:
        assert con.execute("SELECT count(DISTINCT model) FROM leaderboard").fetchall()[0][0] == 2


@pytest.mark.slow
def test_a_process_worker_runs_the_on_demand_pipeline_on_a_fresh_warehouse_from_a_registry_file(
    prefect_server, deployed, tiny_models, tmp_path
):
    import json

    db = tmp_path / "fresh" / "wh.duckdb"  # nothing there yet: the run registers, evaluates, trains
    registry = tmp_path / "models.yaml"
    registry.write_text(
        "models:\n"
        + "".join(f"  - name: tiny-{i}\n    model_args: {{pretrained: {p}}}\n" for i, p in enumerate(tiny_models))
    )
    suite = tmp_path / "mini.yaml"
    suite.write_text(MINI_SUITE.format(demo=ROOT / "embedllm" / "demo_suite"))
    job_env = {"EMBEDLLM_WAREHOUSE": str(db), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env = deployed["env"]
    prefect_cli(
        [
            "deployment",
            "run",
            "pipeline/on-demand",
            "--param",
            f"registry={registry}",
            "--param",
            f"suite={suite}",
            "--param",
            "limit=20",
            "--job-variable",
            f"env={json.dumps(job_env)}",
        ],
        env,
    )
    prefect_cli(["worker", "start", "--pool", "cpu", "--run-once"], env, cwd=tmp_path)
    with httpx.Client(base_url=prefect_server["api"], timeout=30) as client:
        deployment = client.post(
            "/deployments/filter", json={"deployments": {"name": {"any_": ["on-demand"]}}}
        ).json()
        runs = client.post(
            "/flow_runs/filter", json={"flow_runs": {"deployment_id": {"any_": [deployment[0]["id"]]}}}
        ).json()
        logs = client.post(
            "/logs/filter", json={"logs": {"flow_run_id": {"any_": [r["id"] for r in runs]}}}
        ).json()
        tail = "\n".join(entry["message"][-500:] for entry in logs[-8:])
        assert [r["state"]["type"] for r in runs] == ["COMPLETED"], tail
        artifacts = client.post(
            "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [runs[0]["id"]]}}}
        ).json()
    keys = {a["key"] for a in artifacts}
    assert EXPECTED_ARTIFACTS <= keys, f"missing artifacts on the pipeline run: {EXPECTED_ARTIFACTS - keys}"
    with warehouse.session(db, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM latest_training_run").fetchall()[0][0] == 1
        names = {r[0] for r in con.execute("SELECT name FROM models WHERE active").fetchall()}
    assert names == {"tiny-0", "tiny-1"}
