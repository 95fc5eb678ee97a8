"""Shared fixtures: real DuckDB warehouses in tmp dirs, offline Hugging Face settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Tests never reach the Hugging Face hub: everything they use is built in the test or installed from PyPI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tests that run the `embedllm` console script find the one of this interpreter's environment, even when the
# venv is not activated (`make test` calls .venv/bin/pytest directly).
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")


@pytest.fixture
def warehouse_path(tmp_path, monkeypatch):
    """Path of a fresh warehouse file in tmp_path, also set as EMBEDLLM_WAREHOUSE for the test."""
    path = tmp_path / "wh.duckdb"
    monkeypatch.setenv("EMBEDLLM_WAREHOUSE", str(path))
    return path


@pytest.fixture
def con(warehouse_path):
    """An open, migrated connection to a fresh warehouse."""
    import warehouse

    c = warehouse.connect(warehouse_path)
    yield c
    c.close()


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """Real Prefect on a temporary SQLite API (prefect_test_harness) with result storage in tmp, for the session."""
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    storage = tmp_path_factory.mktemp("prefect_results")
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: str(storage)}):
        with prefect_test_harness(server_startup_timeout=180):
            yield


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> list[str]:
    """Two tiny random causal LMs (seeds 0 and 1) saved as local model folders; returns their paths."""
    from embedllm.tiny_lm import build_tiny_lm

    root = tmp_path_factory.mktemp("tiny_models")
    return [str(build_tiny_lm(root / f"tiny-{seed}", seed=seed)) for seed in (0, 1)]


MINI_SUITE = """\
name: mini
description: two demo tasks (one multiple-choice, one generative) for fast flow tests
include_path: {demo}
tasks:
  - task: demo_arithmetic
    benchmark: arithmetic
    label_rule: acc
  - task: demo_gen_math
    benchmark: gen_math
    label_rule: exact_match,flexible-extract
"""


@pytest.fixture(scope="session")
def mini_suite(tmp_path_factory) -> str:
    """Path of a suite YAML with two of the demo tasks (the pipeline is the same; lm-eval has less to do)."""
    path = tmp_path_factory.mktemp("suites") / "mini.yaml"
    path.write_text(MINI_SUITE.format(demo=ROOT / "embedllm" / "demo_suite"))
    return str(path)
