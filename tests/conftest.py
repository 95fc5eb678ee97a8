"""Shared fixtures: real DuckDB warehouses in tmp dirs, offline Hugging Face settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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
