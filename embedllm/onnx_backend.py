"""The ONNX Runtime path for sentence-transformers models on CPU: export, int8 quantisation, agreement check, run.

Why not `SentenceTransformer(folder, backend="onnx")`: that backend needs `optimum.onnxruntime` (the optimum-onnx
package), whose only releases cap transformers below 4.58, while sentence-transformers 6.x needs transformers 5;
the OpenVINO backend (optimum-intel) caps transformers below 5.6 and pulls a torchvision that does not load with
the CPU torch installed here. So the export is torch's own (`torch.onnx.export`, TorchScript exporter) and the
run is plain onnxruntime, standing in for the Hugging Face model inside the loaded SentenceTransformer: its
tokenizer, pooling and normalisation stay the library's own, only the transformer forward pass changes.

Files, in an export folder under the embedllm cache (never in site-packages), laid out as sentence-transformers
does (`onnx/model.onnx`, `onnx/model_qint8.onnx`), each with `check-<variant>.json` beside it: the agreement of
its vectors with torch's on AGREEMENT_TEXTS (run once, at export) and the file's sha256 (a changed file is
exported again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

AGREEMENT_MIN_COSINE = 0.999  # at or above: the ONNX vectors may share the torch embedder's name
# below: the export is refused (int8 all-mpnet-base-v2 measured min cosine -0.04 to torch: other vectors entirely)
USABLE_MIN_COSINE = 0.95
VARIANT_FILES = {"onnx": "onnx/model.onnx", "onnx-int8": "onnx/model_qint8.onnx"}
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


class ExportError(RuntimeError):
    """An ONNX export could not be made or loaded."""


# --------------------------------------------------------------------------------------------- the sample


def agreement_texts() -> list[str]:
    """Return the 64 fixed texts the agreement check encodes: 48 demo-suite questions and 16 long composites."""
    questions = []
    for name in ("arithmetic", "gen_math", "knowledge", "logic", "reading", "science"):
        lines = (files("embedllm") / "demo_suite" / f"{name}.jsonl").read_text().splitlines()
        questions += [json.loads(line)["question"] for line in lines if line.strip()][:8]
    cycle = questions * 2
    long = [" ".join(cycle[3 * j : 3 * j + 4 + 2 * j]) for j in range(16)]  # 4..34 questions: past truncation
    return questions + long


# ----------------------------------------------------------------------------------------------- checks


@dataclass
class Check:
    """The agreement of one exported file with torch, as stored in check-<variant>.json."""

    variant: str
    file: str  # relative to the export folder
    sha256: str
    min_cosine: float
    mean_cosine: float
    n_texts: int
    threshold: float
    agrees: bool
    source: str
    export_seconds: float
    versions: dict[str, str]

    @classmethod
    def read(cls, path: Path) -> Check | None:
        """Return the check stored at PATH, or None when it is missing or unreadable."""
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _write_atomic(path: Path, writer) -> None:
    """Write PATH through WRITER(tmp_path) and a rename, so readers never see a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        writer(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shared like the model folders
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _versions() -> dict[str, str]:
    """Return the versions of the libraries an export depends on."""
    import onnxruntime
    import torch
    import transformers

    return {
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


# ---------------------------------------------------------------------------------------------- export


def _input_names(model: Any) -> list[str]:
    """Return the model inputs the tokenizer of a loaded SentenceTransformer produces (BERT: 3, MPNet: 2)."""
    made = model[0].tokenizer(["a"], return_tensors="pt")
    return [k for k in MODEL_INPUTS if k in made]


def export_fp32(model: Any, target: Path) -> None:
    """Export the transformer of a loaded torch SentenceTransformer to an ONNX file (dynamic batch and length)."""
    import torch

    class LastHidden(torch.nn.Module):
        def __init__(self, hf):
            super().__init__()
            self.hf = hf

        def forward(self, *inputs):
            return self.hf(**dict(zip(names, inputs))).last_hidden_state

    names = _input_names(model)
    sample = model[0].tokenizer(
        ["a short one", "and a rather longer second sentence"], padding=True, return_tensors="pt"
    )
    axes = {k: {0: "batch", 1: "sequence"} for k in [*names, "last_hidden_state"]}
    wrapper = LastHidden(model[0].auto_model.to("cpu")).eval()

    def write(tmp: Path) -> None:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on shape-dependent Python branches (checked below)
            torch.onnx.export(
                wrapper,
                tuple(sample[k] for k in names),
                str(tmp),
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )

    _write_atomic(target, write)


def quantize_int8(fp32: Path, target: Path) -> None:
    """Write a dynamically int8-quantised copy of FP32: per-channel weights, activation x activation MatMuls kept."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32)).graph
    constant = {i.name for i in graph.initializer} | {n.output[0] for n in graph.node if n.op_type == "Constant"}
    keep = [n.name for n in graph.node if n.op_type == "MatMul" and not any(i in constant for i in n.input)]

    def write(tmp: Path) -> None:
        quantize_dynamic(
            str(fp32),
            str(tmp),
            weight_type=QuantType.QInt8,
            per_channel=True,
            nodes_to_exclude=keep,  # attention scores: quantising them costs far more accuracy than time
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )

    _write_atomic(target, write)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Return the row-wise cosine similarity of two (n, d) arrays."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def export(torch_model: Any, folder: Path, variant: str, source: str, make_onnx) -> Check:
    """Export VARIANT of TORCH_MODEL into FOLDER, check its agreement with torch, store and return the check.

    MAKE_ONNX(path) returns a SentenceTransformer running that ONNX file (embedders.py builds it).
    """
    t0 = time.perf_counter()
    fp32 = folder / VARIANT_FILES["onnx"]
    if variant == "onnx" or not fp32.exists():
        log.info("exporting %s to ONNX into %s (once)", source, fp32)
        export_fp32(torch_model, fp32)
    target = folder / VARIANT_FILES[variant]
    if variant == "onnx-int8":
        log.info("quantising %s to int8 into %s (once)", fp32, target)
        quantize_int8(fp32, target)
    texts = agreement_texts()
    ref = torch_model.encode(texts, batch_size=16, convert_to_numpy=True, show_progress_bar=False)
    got = make_onnx(target).encode(texts, batch_size=16, convert_to_numpy=True, show_progress_bar=False)
    cos = cosines(np.asarray(ref, dtype=np.float64), np.asarray(got, dtype=np.float64))
    check = Check(
        variant=variant,
        file=VARIANT_FILES[variant],
        sha256=sha256_of(target),
        min_cosine=round(float(cos.min()), 6),
        mean_cosine=round(float(cos.mean()), 6),
        n_texts=len(texts),
        threshold=AGREEMENT_MIN_COSINE,
        agrees=bool(cos.min() >= AGREEMENT_MIN_COSINE),
        source=source,
        export_seconds=round(time.perf_counter() - t0, 2),
        versions=_versions(),
    )
    _write_atomic(check_path(folder, variant), lambda p: p.write_text(json.dumps(asdict(check), indent=2) + "\n"))
    log.info("%s %s: min cosine to torch %.6f on %d texts", source, variant, check.min_cosine, check.n_texts)
    return check


def check_path(folder: Path, variant: str) -> Path:
    """Return where the agreement check of VARIANT is stored."""
    return folder / f"check-{variant}.json"


def valid_check(folder: Path, variant: str) -> Check | None:
    """Return the stored check of VARIANT when its file still has the checked bytes, else None (export again)."""
    check = Check.read(check_path(folder, variant))
    target = folder / VARIANT_FILES[variant]
    if check is None or check.variant != variant or not target.exists():
        return None
    if check.sha256 != sha256_of(target):
        log.warning("%s changed since its agreement check (corrupted?): exporting it again", target)
        return None
    return check


# ------------------------------------------------------------------------------------------------- run


def session(path: Path, threads: int = 0) -> Any:
    """Return an onnxruntime CPU session for PATH (THREADS 0: onnxruntime's choice), threads not spinning idle."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # idle threads yield the CPU
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidProtobuf / NoSuchFile types
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ExportError(f"cannot load the ONNX export {path}: {reason}") from exc


def onnx_encoder(path: Path, config: Any, threads: int = 0) -> Any:
    """Return a torch module that runs the ONNX file PATH in place of a Hugging Face encoder (same outputs)."""
    import torch

    class OnnxEncoder(torch.nn.Module):
        """Stands in for the Hugging Face model inside a sentence-transformers Transformer module."""

        def __init__(self) -> None:
            super().__init__()
            self.session = session(path, threads)
            self.inputs = [i.name for i in self.session.get_inputs()]
            self.config = config
            self.path = path

        def forward(self, input_ids, attention_mask=None, token_type_ids=None, **_: Any) -> dict:
            given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            if given["token_type_ids"] is None and "token_type_ids" in self.inputs:
                given["token_type_ids"] = torch.zeros_like(input_ids)
            feeds = {k: given[k].cpu().numpy().astype(np.int64) for k in self.inputs}  # (batch, seq)
            (hidden,) = self.session.run(["last_hidden_state"], feeds)  # (batch, seq, d)
            return {"last_hidden_state": torch.from_numpy(hidden)}

    return OnnxEncoder()
