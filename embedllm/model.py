"""The EmbedLLM model (Zhuang et al., ICLR 2025) and its KNN baseline, in one file.

Every LLM m gets a learned vector p_m (dim d). A question arrives as a sentence-transformer embedding e_q
(question_dim, e.g. 768 for all-mpnet-base-v2); a linear map projects it to q = W e_q + b (dim d). A linear
classifier with two outputs reads the element-wise product p_m * q, and the correctness logit is
out_1 - out_0, so P(m answers q correctly) = sigmoid(out_1 - out_0). During training, Gaussian noise of
standard deviation alpha is added to e_q (a regulariser; never at evaluation).

Optionally (`benchmark_shift`, the default preset) the projected question also gets a learned shift per benchmark,
q = W e_q + b + s_k for a question of benchmark k: a small fleet cannot learn from text alone what the benchmark
tells outright (its format, its difficulty, which models are good at it). Row 0 of the shift table is "unknown
benchmark": training hides the benchmark of a share of its questions (`hide_benchmark`) so that row learns the
average, and free-text questions (routing a prompt) use it.

Because the classifier is linear, out_1 - out_0 = (p_m * q) . (w_1 - w_0) + (b_1 - b_0). `logits_all` uses this
identity to score every model against a batch of questions with one (n_q, d) @ (d, n_models) product: the
question projection is computed once per question, never once per (model, question) pair.

Notation for shapes: B = pairs in a batch, Q = questions, M = models, D = question_dim, d = dim.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import yaml

from embedllm.common import did_you_mean
from embedllm.errors import ConfigError, EmbedLLMError
from embedllm.settings import CONFIG_DIR


class EmbedderMismatch(EmbedLLMError):
    """Question embeddings come from an embedder (or dimension) the model was not trained with."""


@dataclass
class EmbedLLMConfig:
    """Hyperparameters of one model and of how it is trained (stored inside every checkpoint)."""

    n_models: int = 1  # M: rows of the model-embedding table
    question_dim: int = 768  # D: question-embedding size (768 all-mpnet-base-v2, 384 all-MiniLM-L6-v2)
    dim: int = 232  # d: model-embedding size (paper default 232)
    noise_alpha: float = 0.05  # std of the Gaussian noise added to e_q in training
    init_std: float | None = None  # std of the initial model embeddings; None = torch's N(0, 1) default
    # --- training ---
    optimizer: str = "adam"  # adam (L2 weight decay, as in the paper) | adamw (decoupled decay)
    lr: float = 1e-4
    batch_size: int = 2048  # pairs per step (batching="pairs") or questions per step ("questions")
    batching: str = "pairs"  # pairs: random (model, question) pairs, as the paper | questions: random
    # questions with all their labelled models (one projection per question)
    epochs: int = 50
    min_steps_per_epoch: int = 1  # shrink the batch on small data so an epoch has at least this many steps
    weight_decay: float = 1e-5
    patience: int | None = None  # stop after this many epochs without a better validation log loss;
    # None = train all epochs (the paper's recipe), keep the last weights
    dim_grid: list[int] = field(default_factory=list)  # dims tried on the validation split; [] = use `dim`
    lr_schedule: str = "constant"  # constant | cosine (decays to 5% of lr over `epochs`)
    seed: int = 0
    # --- benchmark input ---
    benchmark_shift: bool = False  # learn a per-benchmark shift of the projected question (s_k above)
    hide_benchmark: float = 0.2  # share of training questions whose benchmark is hidden (trains the unknown row)
    benchmarks: list[str] = field(default_factory=list)  # the known benchmarks (filled from the training split)

    def validate(self) -> EmbedLLMConfig:
        """Return self after checking the values; raise ConfigError naming the bad field."""
        if self.n_models < 1 or self.question_dim < 1 or self.dim < 1:
            raise ConfigError(
                f"n_models, question_dim and dim must be >= 1 (got {self.n_models}, "
                f"{self.question_dim}, {self.dim})"
            )
        if self.optimizer not in ("adam", "adamw"):
            raise ConfigError(f"optimizer must be adam or adamw, got {self.optimizer!r}")
        if self.batching not in ("pairs", "questions"):
            raise ConfigError(f"batching must be pairs or questions, got {self.batching!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ConfigError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        if self.lr <= 0 or self.batch_size < 1 or self.epochs < 1 or self.noise_alpha < 0:
            raise ConfigError("lr, batch_size and epochs must be positive and noise_alpha >= 0")
        if not 0 <= self.hide_benchmark < 1:
            raise ConfigError(f"hide_benchmark must be in [0, 1), got {self.hide_benchmark}")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> EmbedLLMConfig:
        """Return a config from a dict, ignoring keys this version does not know; raise ConfigError on bad ones."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known}).validate()

    def to_dict(self) -> dict:
        """Return the config as a JSON-ready dict."""
        return asdict(self)


class EmbedLLM(nn.Module):
    """Model embeddings x projected question embeddings -> linear classifier -> correctness logit."""

    def __init__(self, config: EmbedLLMConfig):
        super().__init__()
        self.config = config.validate()
        self.model_embedding = nn.Embedding(config.n_models, config.dim)  # p_m: (M, d)
        if config.init_std is not None:
            nn.init.normal_(self.model_embedding.weight, std=config.init_std)
        self.question_proj = nn.Linear(config.question_dim, config.dim)  # W, b: D -> d
        self.classifier = nn.Linear(config.dim, 2)  # on p_m * q: d -> 2
        self.benchmark_shift = None  # s_k: (1 + n_benchmarks, d), row 0 = unknown benchmark
        if config.benchmark_shift and config.benchmarks:
            self.benchmark_shift = nn.Embedding(1 + len(config.benchmarks), config.dim)
            nn.init.zeros_(self.benchmark_shift.weight)
        self.meta: dict = {}  # what the checkpoint knows about the data: model_ids, model_names, embedder, run_id

    # ------------------------------------------------------------------------------------------ pieces
    def benchmark_codes(self, benchmark) -> torch.Tensor | None:
        """Return the shift rows (Q,) long of benchmark names (unknown names and None -> row 0); None without shift."""
        if self.benchmark_shift is None or benchmark is None:
            return None
        names, inverse = np.unique(np.asarray(benchmark).astype(str), return_inverse=True)
        row = {name: i + 1 for i, name in enumerate(self.config.benchmarks)}
        codes = np.array([row.get(name, 0) for name in names], dtype=np.int64)[inverse.reshape(-1)]
        return torch.as_tensor(codes, device=self.question_proj.weight.device)

    def project(self, q_emb: torch.Tensor, bench: torch.Tensor | None = None) -> torch.Tensor:
        """Return q = W (e_q + noise) + b (+ s[bench]), (Q, d); noise N(0, alpha^2) only in training mode.

        BENCH holds shift rows (Q,) from `benchmark_codes`; None = unknown benchmark (row 0).
        """
        if q_emb.shape[-1] != self.config.question_dim:
            raise EmbedderMismatch(
                f"question embeddings have {q_emb.shape[-1]} dimensions but the model expects "
                f"{self.config.question_dim} (embedder {self.meta.get('embedder', '?')})"
            )
        if self.training and self.config.noise_alpha > 0:
            q_emb = q_emb + self.config.noise_alpha * torch.randn_like(q_emb)
        q = self.question_proj(q_emb)
        return q if self.benchmark_shift is None else q + self.shift(bench)

    def shift(self, bench: torch.Tensor | None) -> torch.Tensor:
        """Return the benchmark shifts s[bench] (Q, d), or the unknown row s_0 (d,) when BENCH is None."""
        return self.benchmark_shift.weight[0] if bench is None else self.benchmark_shift(bench)

    def head_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (w_1 - w_0, b_1 - b_0): the classifier collapsed to one logit, shapes (d,) and ()."""
        w, b = self.classifier.weight, self.classifier.bias  # (2, d), (2,)
        return w[1] - w[0], b[1] - b[0]

    # ------------------------------------------------------------------------------------------ scoring
    def forward(
        self, model_idx: torch.Tensor, q_emb: torch.Tensor, bench: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return correctness logits (B,) for pairs: model_idx (B,) long, q_emb (B, D) float, bench (B,) shift rows."""
        p = self.model_embedding(model_idx)  # (B, d)
        q = self.project(q_emb, bench)  # (B, d)
        out = self.classifier(p * q)  # (B, 2)
        return out[:, 1] - out[:, 0]  # (B,)

    def pair_logits(self, model_idx: torch.Tensor, question_idx: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Return logits (B,) for pairs given projected questions q (Q, d) and indices into them (B,)."""
        out = self.classifier(self.model_embedding(model_idx) * q[question_idx])  # (B, 2)
        return out[:, 1] - out[:, 0]

    def logits_all(
        self, q_emb: torch.Tensor, model_vectors: torch.Tensor | None = None, bench: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Return logits (Q, M) of every model (or of model_vectors (M', d)) on every question in q_emb (Q, D)."""
        q = self.project(q_emb, bench)  # (Q, d)
        w, b = self.head_weights()  # (d,), ()
        p = self.model_embedding.weight if model_vectors is None else model_vectors  # (M, d)
        return (q * w) @ p.T + b  # (Q, M)

    def collapsed(
        self, model_vectors: torch.Tensor | None = None, bench: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (A (D, M), c (M,)) with logits_all(e) == e @ A + c without noise: the whole model is linear in e_q.

        With q = W e + b and logit = (q * w) . p + b', the logit of model m is e . (W^T (w * p_m)) + (b * w) . p_m
        + b'. Routing with A costs one (Q, D) @ (D, M) product, whatever d is. A benchmark shift only moves c:
        b + s_k in place of b. Without BENCH, c (M,) is the unknown benchmark's (a free-text question); with shift
        rows BENCH (K,), c is (K, M), one row per entry.
        """
        w, b = self.head_weights()  # (d,), ()
        p = self.model_embedding.weight if model_vectors is None else model_vectors  # (M, d)
        wp = p * w  # (M, d)
        A = self.question_proj.weight.T @ wp.T  # (D, d) @ (d, M) -> (D, M)
        bias = self.question_proj.bias  # (d,)
        if self.benchmark_shift is not None:
            bias = bias + self.shift(bench)  # (d,) or (K, d)
        c = bias @ wp.T + b  # (M,) or (K, M)
        return A, c

    @torch.no_grad()
    def predict_all(self, q_emb: torch.Tensor | np.ndarray, benchmark=None, chunk: int = 8192) -> np.ndarray:
        """Return P(correct) as float32 numpy (Q, M) for every model on every question, in eval mode.

        BENCHMARK (Q,) names each question's benchmark (None: unknown), used when the model has a benchmark shift.
        """
        was_training = self.training
        self.eval()
        device = self.model_embedding.weight.device
        x = torch.as_tensor(np.asarray(q_emb, dtype=np.float32)) if isinstance(q_emb, np.ndarray) else q_emb
        bench = self.benchmark_codes(benchmark)
        parts = [
            torch.sigmoid(
                self.logits_all(x[i : i + chunk].to(device), bench=None if bench is None else bench[i : i + chunk])
            ).cpu()
            for i in range(0, len(x), chunk)
        ]
        self.train(was_training)
        if not parts:
            return np.zeros((0, self.config.n_models), dtype=np.float32)
        return torch.cat(parts).numpy()

    # ------------------------------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path, **extra) -> Path:
        """Write weights + config + meta (+ extra) to PATH atomically; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(
            {
                "config": self.config.to_dict(),
                "state_dict": self.state_dict(),
                "meta": self.meta,
                "format": 1,
                **extra,
            },
            tmp,
        )
        tmp.replace(path)
        return path


def load_checkpoint(path: str | Path, device: torch.device | str | None = None) -> EmbedLLM:
    """Return the EmbedLLM stored at PATH (config and meta from inside the checkpoint), in eval mode."""
    path = Path(path)
    if not path.exists():
        raise EmbedLLMError(f"checkpoint {path} does not exist: re-run `embedllm train` to recreate it")
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = EmbedLLM(EmbedLLMConfig.from_dict(blob["config"]))
    model.load_state_dict(blob["state_dict"])
    model.meta = dict(blob.get("meta") or {})
    if device is not None:
        model.to(device)
    return model.eval()


# ================================================================================================ KNN baseline


@dataclass
class KNNBaseline:
    """The paper's baseline: per model, majority vote of the k nearest TRAIN questions (cosine of embeddings).

    `train_emb` (N, D) and `train_labels` (N, M) int8 with -1 where a model has no label. A question's vote for
    model m uses only its neighbours that m answered; with none, the model's train accuracy stands in.
    """

    train_emb: np.ndarray
    train_labels: np.ndarray
    k: int = 5
    chunk: int = 2048

    def __post_init__(self):
        norms = np.linalg.norm(self.train_emb, axis=1, keepdims=True)
        self._emb = torch.as_tensor((self.train_emb / np.maximum(norms, 1e-12)).astype(np.float32))  # (N, D)
        observed = self.train_labels >= 0
        self._yes = torch.as_tensor((self.train_labels == 1).astype(np.float32))  # (N, M)
        self._seen = torch.as_tensor(observed.astype(np.float32))  # (N, M)
        seen = observed.sum(0)
        self._prior = torch.as_tensor(
            np.where(seen > 0, (self.train_labels == 1).sum(0) / np.maximum(seen, 1), 0.5).astype(np.float32)
        )  # (M,)

    @torch.no_grad()
    def neighbours(self, q_emb: np.ndarray, k_max: int) -> torch.Tensor:
        """Return the indices (Q, k_max) of the nearest train questions by cosine, nearest first."""
        x = torch.as_tensor(np.asarray(q_emb, dtype=np.float32))
        x = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
        k_max = min(k_max, len(self._emb))
        return (
            torch.cat(
                [
                    torch.topk(x[i : i + self.chunk] @ self._emb.T, k_max, dim=1).indices  # (chunk, k)
                    for i in range(0, len(x), self.chunk)
                ]
            )
            if len(x)
            else torch.zeros((0, k_max), dtype=torch.long)
        )

    @torch.no_grad()
    def vote_fractions(self, q_emb: np.ndarray, ks: list[int]) -> dict[int, np.ndarray]:
        """Return {k: (Q, M) fraction of the k nearest answered neighbours that were correct} for each k."""
        idx = self.neighbours(q_emb, max(ks))  # (Q, K)
        out = {}
        for k in ks:
            nb = idx[:, :k]  # (Q, k)
            yes = torch.zeros((len(nb), self._yes.shape[1]))
            seen = torch.zeros_like(yes)
            for j in range(nb.shape[1]):  # k gathers of (Q, M), k is small
                yes += self._yes[nb[:, j]]
                seen += self._seen[nb[:, j]]
            frac = torch.where(seen > 0, yes / seen.clamp_min(1), self._prior)
            out[k] = frac.numpy()
        return out

    def predict_proba(self, q_emb: np.ndarray) -> np.ndarray:
        """Return the vote fraction (Q, M) for the chosen k; > 0.5 is the majority-vote prediction."""
        return self.vote_fractions(q_emb, [self.k])[self.k]

    def tune_k(
        self, val_emb: np.ndarray, val_labels: np.ndarray, ks: tuple[int, ...] = (1, 3, 5, 7, 9, 15, 21, 31, 51)
    ) -> dict[int, float]:
        """Set self.k to the k with the best validation accuracy; return {k: validation accuracy}."""
        ks = [k for k in ks if k <= len(self._emb)] or [1]
        mask = val_labels >= 0
        scores = {
            k: float(((frac > 0.5) == (val_labels == 1))[mask].mean()) if mask.any() else 0.0
            for k, frac in self.vote_fractions(val_emb, ks).items()
        }
        self.k = max(scores, key=lambda k: (scores[k], -k))
        return scores


def cosine_lr(step: int, total: int, base: float, floor: float = 0.05) -> float:
    """Return the learning rate of a cosine decay from base to floor*base over `total` steps."""
    t = min(step / max(total, 1), 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def with_dim(config: EmbedLLMConfig, dim: int) -> EmbedLLMConfig:
    """Return a copy of config with another model-embedding size."""
    return replace(config, dim=dim)


# ================================================================================================ presets

PRESETS_FILE = CONFIG_DIR / "presets.yaml"


def load_presets(path: str | Path | None = None) -> dict[str, dict]:
    """Return {preset name: its config values} from embedllm/config/presets.yaml (or PATH)."""
    data = yaml.safe_load(Path(path or PRESETS_FILE).read_text()) or {}
    return {name: dict(body.get("config", {})) for name, body in data.get("presets", {}).items()}


def preset_config(name: str, *, n_models: int, question_dim: int, **overrides) -> EmbedLLMConfig:
    """Return the EmbedLLMConfig of preset NAME for data of this shape; ConfigError with did-you-mean if unknown."""
    presets = load_presets()
    if name not in presets:
        raise ConfigError(
            f"unknown preset {name!r}{did_you_mean(name, presets, substring=False)} (known: "
            f"{', '.join(sorted(presets))}) [{PRESETS_FILE}]"
        )
    return EmbedLLMConfig.from_dict(
        {**presets[name], **overrides, "n_models": n_models, "question_dim": question_dim}
    )
