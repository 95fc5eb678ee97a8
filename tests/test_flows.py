"""Flows and their surroundings: imports, prefect.yaml entrypoints, CLI help, the run lock, the pipeline on tiny
models under prefect_test_harness, resume after a kill, and per-model evaluation on a 2-worker Dask cluster."""

from __future__ import annotations

import json
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
from embedllm import settings
from embedllm.locking import RunLocked, describe_holder, holder_of, is_locked, lock_path, run_lock

ROOT = settings.PROJECT_ROOT
FLOW_MODULES = {"flows.pipeline": "pipeline", "flows.evaluate": "evaluate", "flows.train": "train"}


# ================================================================================================ smoke

@pytest.mark.parametrize("module,name", sorted(FLOW_MODULES.items()))
def test_every_flow_imports_as_a_prefect_flow(module, name):
    import importlib

    from prefect import Flow

    flow = getattr(importlib.import_module(module), name)
    assert isinstance(flow, Flow)
    assert flow.name == name


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
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(warehouse_path), str(seconds)],
                                stdout=subprocess.PIPE, text=True)
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
