"""Where things live: the warehouse file and the folders beside it, the torch device. Chosen in one place."""

from __future__ import annotations

import os
from pathlib import Path

import warehouse as _warehouse_pkg

WAREHOUSE_ENV = "EMBEDLLM_WAREHOUSE"
DEVICE_ENV = "EMBEDLLM_DEVICE"
PROJECT_ROOT = Path(_warehouse_pkg.__file__).resolve().parent.parent
DEFAULT_WAREHOUSE = PROJECT_ROOT / "warehouse" / "embedllm.duckdb"
SQL_DIR = PROJECT_ROOT / "sql"
CONFIG_DIR = PROJECT_ROOT / "embedllm" / "config"


def use_warehouse(path: str | os.PathLike | None) -> None:
    """Point every later call at PATH (the --warehouse flag sets the env var so Prefect tasks see it too)."""
    if path is not None:
        os.environ[WAREHOUSE_ENV] = str(Path(path).expanduser().resolve())


def warehouse_path() -> Path:
    """Return the DuckDB file: $EMBEDLLM_WAREHOUSE if set, else warehouse/embedllm.duckdb in the checkout."""
    env = os.environ.get(WAREHOUSE_ENV)
    return Path(env).expanduser().resolve() if env else DEFAULT_WAREHOUSE


def beside_warehouse(name: str) -> Path:
    """Return a folder next to the warehouse file (staging/, data_docs/, reports/, checkpoints/)."""
    db = warehouse_path()
    return db.parent / f"{db.stem}_{name}" if db != DEFAULT_WAREHOUSE else db.parent / name


def staging_dir() -> Path:
    """Return the staging folder for Parquet written by parallel work and read by the one loader."""
    return beside_warehouse("staging")


def pick_device(requested: str | None = None):
    """Return the torch device: the argument, else $EMBEDLLM_DEVICE, else CUDA when present, else MPS, else CPU."""
    import torch

    name = requested or os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
