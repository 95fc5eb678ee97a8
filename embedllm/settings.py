"""Where things live: the warehouse file and the folders beside it, the torch device, the embedding backend.

Only the edges read the environment: the CLI (`--warehouse` or EMBEDLLM_WAREHOUSE) and the flows' deployment
parameters call `resolve_warehouse`; everything below them takes the warehouse path as an argument and derives
staging, checkpoints, Data Docs and reports from it with `beside`.
"""

from __future__ import annotations

import os
from pathlib import Path

WAREHOUSE_ENV = "EMBEDLLM_WAREHOUSE"
DEVICE_ENV = "EMBEDLLM_DEVICE"
EMBED_BACKEND_ENV = "EMBEDLLM_EMBED_BACKEND"
EMBED_BACKENDS = ("auto", "torch", "onnx", "onnx-int8")  # auto: ONNX Runtime on CPU, torch on CUDA/MPS
PACKAGE_DIR = Path(__file__).resolve().parent
CONFIG_DIR = PACKAGE_DIR / "config"
CHECKOUT = PACKAGE_DIR.parent if (PACKAGE_DIR.parent / "pyproject.toml").exists() else None


def default_warehouse() -> Path:
    """Return warehouse/embedllm.duckdb in the checkout (editable install), else in the working directory."""
    root = CHECKOUT if CHECKOUT is not None else Path.cwd()
    return root / "warehouse" / "embedllm.duckdb"


def resolve_warehouse(path: str | os.PathLike | None = None) -> Path:
    """Return the warehouse file: PATH if given, else $EMBEDLLM_WAREHOUSE, else the default (edges only)."""
    chosen = path if path is not None else os.environ.get(WAREHOUSE_ENV) or None
    return Path(chosen).expanduser().resolve() if chosen is not None else default_warehouse()


def beside(warehouse: str | os.PathLike, name: str) -> Path:
    """Return a folder next to the warehouse file: `<stem>_<name>/`, or `<name>/` for the default file."""
    db = Path(warehouse).expanduser().resolve()
    return db.parent / name if db == default_warehouse() else db.parent / f"{db.stem}_{name}"


def staging_dir(warehouse: str | os.PathLike) -> Path:
    """Return the staging folder for Parquet written by parallel work and read by the one loader."""
    return beside(warehouse, "staging")


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


def embed_backend(requested: str | None = None) -> str:
    """Return the requested embedding backend: the argument, else $EMBEDLLM_EMBED_BACKEND, else "auto"."""
    return (requested or os.environ.get(EMBED_BACKEND_ENV) or "auto").strip().lower()
