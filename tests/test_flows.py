"""Flows and their surroundings: imports, prefect.yaml entrypoints, CLI help, the run lock, the pipeline on tiny
models under prefect_test_harness, resume after a kill, and per-model evaluation on a 2-worker Dask cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import warehouse
from embedllm.locking import RunLocked, describe_holder, holder_of, is_locked, lock_path, run_lock

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_FLOWS = {"pipeline", "evaluate", "evaluate-models", "train"}


# ================================================================================================ smoke


def test_every_module_in_flows_imports_and_the_flows_are_prefect_flows():
    import importlib

    from prefect import Flow

    found = {}
    for path in sorted((ROOT / "flows").glob("*.py")):
        module = importlib.import_module(f"flows.{path.stem}")
        found.update({obj.name: obj for obj in vars(module).values() if isinstance(obj, Flow)})
    assert EXPECTED_FLOWS <= set(found), f"missing flows: {EXPECTED_FLOWS - set(found)}"
    for flow in found.values():
        assert flow.description, f"flow {flow.name} has no docstring"


def prefect_yaml() -> dict:
    """Return prefect.yaml parsed."""
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


def test_every_prefect_yaml_entrypoint_resolves_to_a_flow():
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    deployments = prefect_yaml()["deployments"]
    assert deployments
    for d in deployments:
        path, func = d["entrypoint"].split(":")
        assert (ROOT / path).is_file(), d["entrypoint"]
        flow = load_flow_from_entrypoint(str(ROOT / path) + ":" + func)
        assert isinstance(flow, Flow), d["name"]
        unknown = set(d.get("parameters", {})) - set(flow.parameters.properties)
        assert not unknown, f"deployment {d['name']} passes parameters its flow lacks: {unknown}"


def test_prefect_yaml_schedules_nightly_pipeline_on_cpu_and_training_on_gpu():
    from prefect.client.schemas.schedules import CronSchedule

    config = prefect_yaml()
    by_name = {d["name"]: d for d in config["deployments"]}
    nightly = by_name["nightly"]
    assert nightly["entrypoint"].endswith(":pipeline")
    schedule = nightly["schedules"][0]
    CronSchedule(cron=schedule["cron"], timezone=schedule.get("timezone"))  # raises on an invalid cron
    assert schedule.get("active", True)
    pools = {d["name"]: d["work_pool"]["name"] for d in config["deployments"]}
    assert {pools[n] for n, d in by_name.items() if d["entrypoint"].endswith(":train")} == {"gpu"}
    assert {p for n, p in pools.items() if not by_name[n]["entrypoint"].endswith(":train")} == {"cpu"}
    # The clone's own directory, filled in at deploy time: never a hard-coded or relative path.
    step = config["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"].replace(" ", "") == "{{$PWD}}"


def cli_command_paths() -> list[list[str]]:
    """Return every command of the Typer app as its argument path (sub-commands of groups included)."""
    import typer

    import embedllm.cli  # noqa: F401  (registers every area's commands)
    from embedllm.cli.app import app

    paths = []

    def walk(command, prefix: list[str]) -> None:
        if hasattr(command, "commands"):  # a group (typer vendors its own click, so no isinstance)
            for name, sub in command.commands.items():
                walk(sub, [*prefix, name])
        else:
            paths.append(prefix)

    walk(typer.main.get_command(app), [])
    return paths


def test_every_cli_command_has_help_with_an_example():
    from typer.testing import CliRunner

    from embedllm.cli.app import app

    paths = cli_command_paths()
    assert ["run"] in paths
    runner = CliRunner()
    for path in paths:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, f"{' '.join(path)} --help: {result.output}"
        assert "example" in result.output.lower(), f"`embedllm {' '.join(path)} --help` shows no example"


# ================================================================================================ the lock

HOLDER = textwrap.dedent("""
    import sys, time
    from embedllm.locking import run_lock
    with run_lock(sys.argv[1], what="test holder"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


@pytest.fixture
def lock_holder(warehouse_path):
    """Start a process that holds the run lock of the test warehouse; yield a function (seconds) -> Popen."""
    procs = []

    def start(seconds: float = 60.0) -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(warehouse_path), str(seconds)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_second_run_fails_with_one_line_naming_the_holder(warehouse_path, lock_holder):
    holder = lock_holder()
    assert is_locked(warehouse_path)
    with pytest.raises(RunLocked) as err:
        with run_lock(warehouse_path):
            pass
    message = str(err.value)
    assert f"PID {holder.pid}" in message and str(warehouse_path) in message and "--wait" in message
    assert "\n" not in message
    assert holder_of(lock_path(warehouse_path))["pid"] == holder.pid


def test_second_run_waits_for_the_first_when_asked(warehouse_path, lock_holder):
    lock_holder(seconds=1.5)
    t0 = time.monotonic()
    with run_lock(warehouse_path, wait=60):
        waited = time.monotonic() - t0
        assert holder_of(lock_path(warehouse_path))["pid"] == os.getpid()
    assert waited >= 0.5
    assert not is_locked(warehouse_path)


def test_lock_of_a_killed_run_is_free_at_once(warehouse_path, lock_holder):
    holder = lock_holder()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock(warehouse_path):
        assert is_locked(warehouse_path)


def test_run_lock_is_reentrant_within_a_process(warehouse_path):
    with run_lock(warehouse_path):
        with run_lock(warehouse_path):
            pass
        assert is_locked(warehouse_path)
    assert not is_locked(warehouse_path)


def test_describe_holder_names_pid_command_and_start():
    text = describe_holder({"pid": 42, "host": os.uname().nodename, "command": "embedllm run", "since": "noon"})
    assert text == "PID 42 (embedllm run) since noon"


# ================================================================================================ flows on tiny models

TINY_LIMIT = 4  # documents per task: the first 4 of each mini-suite task put questions in every split
KILLER = textwrap.dedent("""
    # Commit staging through the stage's own loader, but SIGKILL this process inside the 2nd (model, task)
    # transaction, after its rows were inserted and before COMMIT.
    import os, signal, sys
    from pathlib import Path
    import tasks.load as load
    import warehouse
    from tasks.evaluate import recover_staging

    original, calls = load._commit_one, []

    def commit_then_die(*args, **kwargs):
        original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    load._commit_one = commit_then_die
    recover_staging(sys.argv[1])
    print("not killed", flush=True)
""")


def register(db: Path, paths: list[str]) -> list[str]:
    """Register local model folders in the warehouse at db; return their registry names."""
    from tasks.register import add_model

    return [add_model(db, p).name for p in paths]


@pytest.fixture
def tiny_warehouse(warehouse_path, tiny_models) -> list[str]:
    """The test warehouse with the two tiny models registered; returns their names."""
    return register(warehouse_path, tiny_models)


def scalar(db: Path, sql: str, params: list | None = None):
    """Return the single value of a query on a short read-only session."""
    with warehouse.session(db, read_only=True) as con:
        return con.execute(sql, params or []).fetchall()[0][0]


def artifact(key: str):
    """Return the latest artifact with this key from the Prefect API (None if there is none)."""
    from prefect.artifacts import Artifact

    return Artifact.get(key)


def test_pipeline_runs_every_stage_on_tiny_models_and_a_rerun_adds_nothing(
    prefect_harness, tiny_warehouse, warehouse_path, mini_suite
):
    from embedllm.embedders import DEMO_EMBEDDER
    from flows.pipeline import pipeline

    result = pipeline(
        warehouse=str(warehouse_path),
        registry=None,
        suite=mini_suite,
        models=tiny_warehouse,
        limit=TINY_LIMIT,
        embedder=DEMO_EMBEDDER,
    )
    stages = {s["stage"]: s for s in result.stages}
    assert list(stages) == [
        "resume",
        "drift",
        "plan",
        "evaluate",
        "load",
        "validate",
        "embed",
        "onboard",
        "train",
        "forecast",
        "report",
    ]
    n_questions = scalar(warehouse_path, "SELECT count(*) FROM questions")
    assert n_questions == stages["load"]["rows"]["questions"] > 0
    assert stages["load"]["rows"]["correctness"] == 2 * n_questions
    assert stages["embed"]["rows"]["question_embeddings"] == n_questions
    assert stages["forecast"]["rows"]["correctness_forecasts"] == 2 * n_questions
    assert result.training_run == scalar(warehouse_path, "SELECT run_id FROM latest_training_run")
    assert scalar(warehouse_path, "SELECT count(DISTINCT model) FROM leaderboard") == 2
    for key in (
        "leaderboard",
        "evaluation-progress",
        "validation-summary",
        "data-docs",
        "training-metrics",
        "benchmark-forecasts",
        "stage-reports",
        "report",
        "onboarded-models",
        "drift",
    ):
        assert artifact(key) is not None, key
    assert artifact("evaluation-progress").data == 100.0
    assert "| evaluate |" in artifact("stage-reports").data

    counts = {
        t: scalar(warehouse_path, f"SELECT count(*) FROM {t}")
        for t in ("eval_runs", "correctness", "validation_runs", "training_runs", "question_embeddings")
    }
    again = pipeline(
        warehouse=str(warehouse_path),
        registry=None,
        suite=mini_suite,
        models=tiny_warehouse,
        limit=TINY_LIMIT,
        embedder=DEMO_EMBEDDER,
    )
    # the rerun evaluates nothing; only the drift step works: it chooses the sentinels and re-asks both models
    assert [s["stage"] for s in again.stages if not s["skipped"]] == ["resume", "drift", "plan", "embed"]
    assert {s["stage"] for s in again.stages if s["rows"]} == {"drift"}
    drift = next(s for s in again.stages if s["stage"] == "drift")
    assert drift["rows"]["drift_checks"] == 2 and "drift_events" not in drift["rows"]
    assert counts == {t: scalar(warehouse_path, f"SELECT count(*) FROM {t}") for t in counts}
    assert again.training_run == result.training_run


def test_pipeline_stops_before_embedding_and_training_when_validation_fails(prefect_harness, warehouse_path):
    import polars as pl

    from embedllm.errors import PipelineStopped
    from embedllm.ids import question_id
    from flows.pipeline import pipeline
    from tasks.load import Batch, Meta, load_batches

    # Model b lacks labels for half the questions: the coverage expectation fails.
    rows = [
        {
            "model": m,
            "question_id": question_id("t", f"{i:064x}"),
            "benchmark": "b",
            "task": "t",
            "prompt": f"question {i}",
            "label": i % 2,
        }
        for m in ("a", "b")
        for i in range(20)
        if m == "a" or i < 10
    ]
    with warehouse.session(warehouse_path) as con:
        load_batches(con, [Batch(Meta(kind="embedllm-csv", content_hash="h1"), pl.DataFrame(rows))])
    with pytest.raises(PipelineStopped, match=r"validation run \S+ failed.*before embedding and training"):
        pipeline(warehouse=str(warehouse_path), skip_eval=True)
    assert "| validate |" in artifact("stage-reports").data  # published although the run failed
    assert scalar(warehouse_path, "SELECT count(*) FROM validation_runs WHERE NOT success") == 1
    assert scalar(warehouse_path, "SELECT count(*) FROM question_embeddings") == 0
    assert scalar(warehouse_path, "SELECT count(*) FROM training_runs") == 0
    assert "FAILED" in (artifact("validation-summary").description or "")


def test_pipeline_refuses_a_second_run_on_the_same_warehouse(
    prefect_harness, warehouse_path, lock_holder, capsys, monkeypatch
):
    from embedllm.cli import main
    from flows.pipeline import pipeline

    holder = lock_holder()
    with pytest.raises(RunLocked, match=f"PID {holder.pid}"):
        pipeline(warehouse=str(warehouse_path), skip_eval=True)
    monkeypatch.setattr(sys, "argv", ["embedllm", "run", "--skip-eval", "-w", str(warehouse_path)])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: warehouse") and f"PID {holder.pid}" in err and "\n" not in err


@pytest.fixture(scope="session")
def tiny_staging(tmp_path_factory, tiny_models, mini_suite) -> dict:
    """A warehouse with the tiny models registered plus the staging Parquet of their evaluation (not loaded)."""
    from tasks.evaluate import plan_evaluations
    from tasks.lm_eval_run import run_evaluation

    root = tmp_path_factory.mktemp("tiny_staging")
    db, staging = root / "wh.duckdb", root / "staging"
    names = register(db, tiny_models)
    jobs = plan_evaluations(db, mini_suite, names, TINY_LIMIT)
    outcomes = [run_evaluation(job, staging) for job in jobs]
    assert not any(o.failed for o in outcomes)
    return {
        "db": db,
        "staging": staging,
        "names": names,
        "suite": mini_suite,
        "n_results": sum(len(o.tasks) for o in outcomes),
        "n_labels": sum(t.n_samples for o in outcomes for t in o.tasks),
    }


def test_run_killed_during_load_keeps_whole_results_and_the_next_run_completes_it(
    prefect_harness, tiny_staging, warehouse_path, tmp_path
):
    import shutil

    from flows.evaluate import evaluate
    from tasks.evaluate import evaluation_staging

    shutil.copy(tiny_staging["db"], warehouse_path)
    staging = evaluation_staging(warehouse_path)
    shutil.copytree(tiny_staging["staging"], staging)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, str(warehouse_path), str(staging)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    # The first (model, task) result is committed whole; the second's rows vanished with its transaction.
    assert scalar(warehouse_path, "SELECT count(*) FROM loads") == 1
    assert scalar(warehouse_path, "SELECT count(*) FROM correctness") == scalar(
        warehouse_path, "SELECT sum(n_labels) FROM loads"
    )
    assert len(list(staging.glob("*.parquet"))) == tiny_staging["n_results"] - 1

    reports = evaluate(
        warehouse=str(warehouse_path), suite=tiny_staging["suite"], models=tiny_staging["names"], limit=TINY_LIMIT
    )
    by_stage = {r.stage: r for r in reports}
    assert "evaluate" not in by_stage, "the rerun called lm-eval for results that were in staging"
    assert by_stage["resume"].rows["correctness"] > 0
    assert scalar(warehouse_path, "SELECT count(*) FROM correctness") == tiny_staging["n_labels"]
    assert (
        scalar(warehouse_path, "SELECT count(*) FROM eval_runs WHERE status = 'success'")
        == tiny_staging["n_results"]
    )
    assert not list(staging.glob("*.parquet"))


def one_task_job(db: Path, name: str, suite: str):
    """Return an evaluation job for one model restricted to its first task (a few seconds of lm-eval)."""
    import dataclasses

    from tasks.evaluate import plan_evaluations

    job = plan_evaluations(db, suite, [name], 2)[0]
    return dataclasses.replace(job, tasks=job.tasks[:1])


def test_evaluation_is_cached_by_job_and_recomputed_when_its_staging_is_gone(
    prefect_harness, tiny_warehouse, warehouse_path, tmp_path, mini_suite
):
    from flows.evaluate import evaluate_models

    job = one_task_job(warehouse_path, tiny_warehouse[0], mini_suite)
    staging = tmp_path / "staging"
    scope = f"test-scope-{tmp_path.name}"
    (first,), _ = evaluate_models([job], str(staging), scope)
    files = [Path(f) for t in first.tasks for f in t.staging_files]
    assert files and all(f.exists() for f in files)
    stamps = [f.stat().st_mtime_ns for f in files]

    (second,), _ = evaluate_models([job], str(staging), scope)  # cached: lm-eval is not called again
    assert [f.stat().st_mtime_ns for f in files] == stamps
    assert second.tasks[0].staging_files == first.tasks[0].staging_files

    for f in files:
        f.unlink()
    (third,), _ = evaluate_models([job], str(staging), scope)  # cached outcome unusable: evaluated again
    assert all(Path(f).exists() for t in third.tasks for f in t.staging_files)


def evaluate_on_dask(db: Path, names: list[str], suite: str, processes: bool) -> list:
    """Run the evaluate flow with per-model evaluation on a 2-worker local Dask cluster; return its reports."""
    from flows.evaluate import evaluate

    return evaluate(
        warehouse=str(db), suite=suite, models=names, limit=2, dask=True, dask_workers=2, dask_processes=processes
    )


def check_dask_run(db: Path, names: list[str], reports: list) -> None:
    """Assert both models were evaluated on the Dask subflow and loaded by the one writer."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    stages = {r.stage: r for r in reports}
    assert stages["evaluate"].note.startswith("2 of 2 model(s)")
    assert scalar(db, "SELECT count(DISTINCT model) FROM leaderboard") == 2
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["evaluate-models-dask"])))
    assert runs and runs[-1].state.is_completed()


def test_evaluation_fans_out_on_a_two_worker_dask_cluster_of_threads(
    prefect_harness, tiny_warehouse, warehouse_path, mini_suite
):
    check_dask_run(
        warehouse_path, tiny_warehouse, evaluate_on_dask(warehouse_path, tiny_warehouse, mini_suite, False)
    )


@pytest.mark.slow
def test_evaluation_fans_out_on_a_two_worker_dask_cluster_of_processes(
    prefect_harness, tiny_warehouse, warehouse_path, mini_suite
):
    check_dask_run(
        warehouse_path, tiny_warehouse, evaluate_on_dask(warehouse_path, tiny_warehouse, mini_suite, True)
    )


def test_dask_runner_uses_a_local_two_worker_cluster_or_an_existing_one():
    from flows.evaluate import dask_runner

    local = dask_runner()
    assert local.cluster_kwargs["n_workers"] == 2 and local.cluster_kwargs["processes"] is True
    assert local.cluster_kwargs["threads_per_worker"] == 1
    remote = dask_runner(address="tcp://scheduler:8786")
    assert remote.address == "tcp://scheduler:8786" and not remote.cluster_kwargs


def test_steps_retry_transient_io_and_never_a_deterministic_error(prefect_harness):
    from prefect import flow, task

    from embedllm.errors import InputError, WarehouseLocked
    from flows.steps import IO_RETRIES, is_transient

    attempts = {"locked": 0, "bad": 0}

    @task(**{**IO_RETRIES, "retry_delay_seconds": 0})
    def busy_then_fine() -> str:
        attempts["locked"] += 1
        if attempts["locked"] == 1:
            raise WarehouseLocked("held by PID 1 for a moment")
        return "ok"

    @task(**{**IO_RETRIES, "retry_delay_seconds": 0})
    def bad_data() -> None:
        attempts["bad"] += 1
        raise InputError("label must be 0 or 1")

    @flow
    def both() -> tuple:
        return busy_then_fine(), bad_data(return_state=True)

    result, failed = both()
    assert result == "ok" and attempts["locked"] == 2
    assert failed.is_failed() and attempts["bad"] == 1
    assert is_transient(TimeoutError()) and not is_transient(RunLocked("another pipeline run"))
