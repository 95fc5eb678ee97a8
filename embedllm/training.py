"""Training EmbedLLM on arrays: the correctness matrix, the fit loop, dimension search and the test-split figures.

The data become tensors once: the question embeddings (Q, D) and a dense label matrix (Q, M) holding -1 where a
model has no label. An epoch is a random permutation of indices; each step projects only the questions of its
batch, once each. Two batchings share the same model:

- `pairs` (the paper's recipe): a step is `batch_size` random (model, question) pairs; the unique questions of
  the batch are projected once and gathered per pair.
- `questions` (the default preset): a step is `batch_size` random questions with ALL their labelled models; the
  projection is shared by every model and the logits come from one (B, d) @ (d, M) product.

With benchmark input (config.benchmark_shift, the default preset) every question also carries its benchmark's
shift row; each epoch hides the benchmark of a random `hide_benchmark` share of the training questions (row 0,
"unknown"), so the model learns to forecast questions of unknown benchmark too.

Selection (early stopping, the embedding dimension, KNN's k) uses the validation split only; the test split is
scored once, at the end, by `final_metrics`. Nothing here touches the warehouse: tasks/train.py reads the
matrix, calls `train_matrix`, and writes the run.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import torch
import torch.nn.functional as F

from embedllm import metrics, settings
from embedllm.errors import EmbedLLMError
from embedllm.model import EmbedLLM, EmbedLLMConfig, KNNBaseline, cosine_lr, load_checkpoint, with_dim

# Torch CPU threads while training. The matrices here are small (a few hundred rows per step), and OpenMP's
# spin-waiting threads made a step 14x SLOWER with 2 threads than with 1 on a shared 2-core box (818 vs 58 ms,
# measured); set EMBEDLLM_TORCH_THREADS to use more on a dedicated many-core machine.
THREADS_ENV = "EMBEDLLM_TORCH_THREADS"


@contextlib.contextmanager
def cpu_threads(device: torch.device):
    """Run the block with torch's CPU threads set from $EMBEDLLM_TORCH_THREADS (default 1) when on CPU."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(os.environ.get(THREADS_ENV, "1"))))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def as_device(device: torch.device | str | None) -> torch.device:
    """Return DEVICE as a torch.device (None: chosen by settings.pick_device)."""
    return device if isinstance(device, torch.device) else settings.pick_device(device)


class TrainingDataError(EmbedLLMError):
    """The warehouse cannot be trained on as it is (empty, one model, one class, missing embeddings)."""


# ================================================================================================ data


@dataclass
class Part:
    """One split's questions: embeddings (Q, D) float32, labels (Q, M) int8 with -1 = no label, benchmark (Q,)."""

    emb: np.ndarray
    labels: np.ndarray
    benchmark: np.ndarray | None = None  # None: unknown (the model's benchmark shift, if any, is not used)

    def __len__(self) -> int:
        return len(self.emb)


@dataclass
class Matrix:
    """The correctness matrix as arrays: one row per question, one column per model."""

    emb: np.ndarray  # (Q, D) float32 question embeddings
    labels: np.ndarray  # (Q, M) int8, 1 / 0, -1 = not evaluated
    split: np.ndarray  # (Q,) 'train' | 'val' | 'test'
    benchmark: np.ndarray  # (Q,) benchmark name
    question_ids: list[str]
    model_ids: list[int]
    model_names: list[str]

    def part(self, split: str, rows: np.ndarray | None = None) -> Part:
        """Return the questions of one split (optionally also restricted to a boolean row mask)."""
        keep = self.split == split if rows is None else (self.split == split) & rows
        return Part(self.emb[keep], self.labels[keep], self.benchmark[keep])


def matrix_from_synthetic(sm) -> Matrix:
    """Return a Matrix from embedllm.synthetic.SyntheticMatrix (labels transposed to questions x models)."""
    n_q = sm.labels.shape[1]
    return Matrix(
        emb=sm.embeddings,
        labels=np.ascontiguousarray(sm.labels.T.astype(np.int8)),
        split=sm.split,
        benchmark=sm.benchmark,
        question_ids=[f"q{i:06d}" for i in range(n_q)],
        model_ids=list(range(1, len(sm.model_names) + 1)),
        model_names=list(sm.model_names),
    )


def embedding_array(column: pl.Series) -> np.ndarray:
    """Return a (n, dim) float32 array from a polars list column of equal-length vectors."""
    if column.len() == 0:
        return np.zeros((0, 0), dtype=np.float32)
    lengths = column.list.len()
    if lengths.min() != lengths.max():
        raise TrainingDataError(
            f"question embeddings have mixed lengths ({lengths.min()}..{lengths.max()}): "
            "re-run `embedllm embed` for one embedder"
        )
    flat = column.explode().cast(pl.Float32).to_numpy(writable=True)
    return flat.reshape(column.len(), int(lengths.max()))


def matrix_from_frames(questions: pl.DataFrame, labels: pl.DataFrame) -> Matrix:
    """Return the Matrix of QUESTIONS (question_id, benchmark, split, embedding) x the models of LABELS.

    LABELS holds (model_id, model, question_id, label) rows; labels of questions not in QUESTIONS are dropped.
    """
    models = labels.select("model_id", "model").unique().sort("model_id")
    q_index = {qid: i for i, qid in enumerate(questions["question_id"].to_list())}
    m_index = {mid: j for j, mid in enumerate(models["model_id"].to_list())}
    dense = np.full((questions.height, models.height), -1, dtype=np.int8)
    qi = labels["question_id"].replace_strict(q_index, default=-1, return_dtype=pl.Int64).to_numpy()
    mj = labels["model_id"].replace_strict(m_index, return_dtype=pl.Int64).to_numpy()
    ok = qi >= 0
    dense[qi[ok], mj[ok]] = labels["label"].to_numpy()[ok]
    return Matrix(
        emb=embedding_array(questions["embedding"]),
        labels=dense,
        split=questions["split"].to_numpy().astype(str),
        benchmark=questions["benchmark"].to_numpy().astype(str),
        question_ids=questions["question_id"].to_list(),
        model_ids=models["model_id"].to_list(),
        model_names=models["model"].to_list(),
    )


def check_trainable(matrix: Matrix) -> None:
    """Raise TrainingDataError unless there are >= 2 models, both classes, and train + validation questions."""
    observed = matrix.labels[matrix.labels >= 0]
    if len(matrix.model_ids) < 2:
        raise TrainingDataError(
            f"only one model has labels ({matrix.model_names[0] if matrix.model_names else '-'}):"
            " EmbedLLM learns from differences between models; evaluate or import at least two"
        )
    if observed.size == 0 or observed.min() == observed.max():
        cls = "correct" if observed.size and observed.min() == 1 else "wrong"
        raise TrainingDataError(
            f"every label is {cls} ({observed.size} labels): a forecaster needs both correct "
            "and wrong answers; check the label rules or add harder/easier benchmarks"
        )
    for split in ("train", "val"):
        if not (matrix.labels[matrix.split == split] >= 0).any():
            raise TrainingDataError(
                f"no labelled questions in the {split} split ({len(matrix.question_ids)} "
                "questions in all): add more questions before training"
            )


# ================================================================================================ fitting


@dataclass
class FitResult:
    """A fitted model and how it got there."""

    model: EmbedLLM
    history: list[dict]  # per epoch: epoch, train_loss, val_log_loss, val_accuracy, seconds
    best_epoch: int
    val_log_loss: float
    val_accuracy: float
    seconds: float
    cpu_seconds: float = 0.0  # process CPU time (load-independent on a shared box)


def make_optimizer(model: EmbedLLM, config: EmbedLLMConfig) -> torch.optim.Optimizer:
    """Return Adam (L2 weight decay, the paper's) or AdamW (decoupled weight decay) for the model."""
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def pairs_loss(
    model: EmbedLLM,
    emb: torch.Tensor,
    q_idx: torch.Tensor,
    m_idx: torch.Tensor,
    y: torch.Tensor,
    bench: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the mean BCE of a batch of pairs; each distinct question of the batch is projected once."""
    uq, inverse = torch.unique(q_idx, return_inverse=True)  # (U,), (B,)
    q = model.project(emb[uq], None if bench is None else bench[uq])  # (U, d)
    return F.binary_cross_entropy_with_logits(model.pair_logits(m_idx, inverse, q), y)


def questions_loss(
    model: EmbedLLM, emb: torch.Tensor, labels: torch.Tensor, bench: torch.Tensor | None = None
) -> torch.Tensor:
    """Return the mean BCE over the labelled cells of a batch of questions emb (B, D), labels (B, M)."""
    logits = model.logits_all(emb, bench=bench)  # (B, M)
    seen = labels >= 0
    return F.binary_cross_entropy_with_logits(logits[seen], labels[seen].float())


@torch.no_grad()
def score_part(model: EmbedLLM, part: Part) -> tuple[float, float]:
    """Return (log loss, accuracy) of the model on a split's labelled cells."""
    p = model.predict_all(part.emb, part.benchmark)
    return metrics.log_loss(part.labels, p), metrics.accuracy(part.labels, p)


@dataclass
class _Batches:
    """The training split as tensors on the device, and how one step's batch of indices becomes a loss."""

    emb: torch.Tensor  # (Q, D) questions with at least one label
    labels: torch.Tensor  # (Q, M) int8
    bench: torch.Tensor | None  # (Q,) benchmark-shift rows (None: the model has no shift)
    hide: float  # share of the questions whose benchmark an epoch hides (row 0)
    pairs: tuple | None  # (q_idx (N,), m_idx (N,), y (N,)) when batching pairs
    n_items: int
    batch_size: int
    steps: int

    @classmethod
    def build(cls, train: Part, model: EmbedLLM, device: torch.device) -> _Batches:
        """Return the training tensors and the step layout (the batch shrinks on small data)."""
        config = model.config
        rows = (train.labels >= 0).any(axis=1)
        emb = torch.as_tensor(train.emb[rows], dtype=torch.float32).to(device)  # (Q, D)
        bench = model.benchmark_codes(None if train.benchmark is None else train.benchmark[rows])
        labels = torch.as_tensor(train.labels[rows]).to(device)  # (Q, M) int8
        pairs = None
        if config.batching == "pairs":
            q_idx, m_idx = (labels >= 0).nonzero(as_tuple=True)  # (N,), (N,)
            pairs = (q_idx, m_idx, labels[q_idx, m_idx].float())
        n_items = len(pairs[0]) if pairs else len(emb)
        batch_size = min(config.batch_size, max(1, math.ceil(n_items / config.min_steps_per_epoch)))
        batches = math.ceil(n_items / batch_size)
        return cls(emb, labels, bench, config.hide_benchmark, pairs, n_items, batch_size, batches)

    def shown(self, gen: torch.Generator) -> torch.Tensor | None:
        """Return an epoch's benchmark rows (Q,): each question's own, or row 0 (hidden) with chance `hide`."""
        if self.bench is None or not self.hide:
            return self.bench
        hidden = (torch.rand(len(self.bench), generator=gen) < self.hide).to(self.bench.device)
        return torch.where(hidden, torch.zeros_like(self.bench), self.bench)

    def loss(self, model: EmbedLLM, b: torch.Tensor, bench: torch.Tensor | None) -> torch.Tensor:
        """Return the loss of the batch of item indices B, with benchmark rows BENCH (Q,) of all questions."""
        if self.pairs is not None:
            q_idx, m_idx, y = self.pairs
            return pairs_loss(model, self.emb, q_idx[b], m_idx[b], y[b], bench)
        return questions_loss(model, self.emb[b], self.labels[b], None if bench is None else bench[b])


def _epoch(
    model: EmbedLLM,
    opt: torch.optim.Optimizer,
    data: _Batches,
    config: EmbedLLMConfig,
    gen: torch.Generator,
    first_step: int,
    total_steps: int,
) -> float:
    """Run one epoch over a random permutation of the items; return the mean training loss."""
    device = data.emb.device
    model.train()
    perm = torch.randperm(data.n_items, generator=gen).to(device)
    running = torch.zeros((), device=device)
    bench = data.shown(gen)  # which benchmarks are hidden is drawn once per epoch
    for s in range(data.steps):
        if config.lr_schedule == "cosine":
            for g in opt.param_groups:
                g["lr"] = cosine_lr(first_step + s, total_steps, config.lr)
        loss = data.loss(model, perm[s * data.batch_size : (s + 1) * data.batch_size], bench)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running += loss.detach()
    return float(running) / data.steps


def fit(
    train: Part,
    val: Part,
    config: EmbedLLMConfig,
    device: torch.device | str | None = None,
    progress: bool = False,
) -> FitResult:
    """Return a model trained on `train`, early-stopped on `val` log loss when config.patience is set.

    With config.benchmark_shift and no config.benchmarks, the known benchmarks are those of the training split.
    """
    device = as_device(device)
    if config.benchmark_shift and not config.benchmarks and train.benchmark is not None:
        config = replace(config, benchmarks=sorted({str(b) for b in train.benchmark}))
    with cpu_threads(device):
        return _fit(train, val, config, device, progress)


def _fit(train: Part, val: Part, config: EmbedLLMConfig, device: torch.device, progress: bool) -> FitResult:
    """Return the fitted model (the body of `fit`)."""
    t0, c0 = time.perf_counter(), time.process_time()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = EmbedLLM(config).to(device)
    opt = make_optimizer(model, config)
    data = _Batches.build(train, model, device)
    best = (math.inf, 0.0, 0, None)  # val loss, val accuracy, epoch, state
    history: list[dict] = []
    epochs = range(1, config.epochs + 1)
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc=f"train d={config.dim}", unit="epoch", leave=False, mininterval=0)
    for epoch in epochs:
        te = time.perf_counter()
        train_loss = _epoch(model, opt, data, config, gen, (epoch - 1) * data.steps, data.steps * config.epochs)
        val_loss, val_acc = score_part(model, val)
        history.append(
            {
                "epoch": epoch,
                "train_loss": train_loss,
                "val_log_loss": val_loss,
                "val_accuracy": val_acc,
                "seconds": time.perf_counter() - te,
            }
        )
        if progress:
            epochs.set_postfix(val_log_loss=f"{val_loss:.4f}", val_acc=f"{val_acc:.4f}")
        if config.patience is None:
            best = (val_loss, val_acc, epoch, None)  # the paper's recipe keeps the last epoch
        elif val_loss < best[0]:
            best = (val_loss, val_acc, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[2] >= config.patience:
            break
    if best[3] is not None:
        model.load_state_dict(best[3])
    model.eval()
    return FitResult(
        model=model,
        history=history,
        best_epoch=best[2],
        val_log_loss=best[0],
        val_accuracy=best[1],
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
    )


def fit_with_dim_search(
    train: Part, val: Part, config: EmbedLLMConfig, device=None, progress: bool = False
) -> tuple[FitResult, dict[int, dict]]:
    """Return the fit whose dim (from config.dim_grid, else config.dim) has the lowest validation log loss."""
    grid = list(config.dim_grid) or [config.dim]
    fits, search = {}, {}
    for d in grid:
        fits[d] = fit(train, val, with_dim(config, d), device, progress)
        search[d] = {
            "val_log_loss": fits[d].val_log_loss,
            "val_accuracy": fits[d].val_accuracy,
            "epochs": len(fits[d].history),
            "best_epoch": fits[d].best_epoch,
            "seconds": fits[d].seconds,
            "cpu_seconds": fits[d].cpu_seconds,
        }
    best = min(grid, key=lambda d: (fits[d].val_log_loss, d))
    return fits[best], search


# ================================================================================================ evaluation


def final_metrics(matrix: Matrix, model: EmbedLLM, knn: KNNBaseline | None) -> dict[str, float]:
    """Return the test-split figures (the one and only time the test split is scored)."""
    train, test = matrix.part("train"), matrix.part("test")
    p = model.predict_all(test.emb, test.benchmark)  # (Q_test, M)
    out = metrics.correctness_metrics(test.labels, p, prefix="test_")
    out |= {
        "route_accuracy": metrics.routing_accuracy(test.labels, p),
        "single_best_accuracy": metrics.single_best_accuracy(train.labels, test.labels),
        "oracle_accuracy": metrics.oracle_accuracy(test.labels),
    }
    prior = np.nan_to_num(metrics.per_model_accuracy(train.labels), nan=0.5)  # per-model mean baseline
    out["model_mean_test_accuracy"] = metrics.accuracy(test.labels, np.broadcast_to(prior, test.labels.shape))
    if knn is not None:
        pk = knn.predict_proba(test.emb)
        out |= {
            "knn_test_accuracy": metrics.accuracy(test.labels, pk),
            "knn_test_auc": metrics.auc(test.labels, pk),
            "knn_test_log_loss": metrics.log_loss(test.labels, pk),
            "knn_test_ece": metrics.ece(test.labels, pk),
            "knn_route_accuracy": metrics.routing_accuracy(test.labels, pk),
            "knn_k": knn.k,
        }
    out["n_test_questions"] = int((test.labels >= 0).any(axis=1).sum())
    out["n_test_labels"] = int((test.labels >= 0).sum())
    return out


@dataclass
class TrainedMatrix:
    """What training on a Matrix produced, before anything is written."""

    model: EmbedLLM
    config: EmbedLLMConfig
    metrics: dict
    fit: FitResult
    dim_search: dict


def train_matrix(
    matrix: Matrix, config: EmbedLLMConfig, device=None, *, knn: bool = True, progress: bool = False
) -> TrainedMatrix:
    """Return the model fitted on the matrix (dim and epochs chosen on validation) with its test metrics."""
    check_trainable(matrix)
    device = as_device(device)
    with cpu_threads(device):
        return _train_matrix(matrix, config, device, knn, progress)


def _train_matrix(
    matrix: Matrix, config: EmbedLLMConfig, device: torch.device, knn: bool, progress: bool
) -> TrainedMatrix:
    """Return the fitted model and its metrics (the body of `train_matrix`)."""
    train, val = matrix.part("train"), matrix.part("val")
    fitted, search = fit_with_dim_search(train, val, config, device, progress)
    baseline = None
    knn_seconds = 0.0
    if knn:
        t0 = time.perf_counter()
        baseline = KNNBaseline(train.emb, train.labels)
        knn_val = baseline.tune_k(val.emb, val.labels)
        knn_seconds = time.perf_counter() - t0
    figures = final_metrics(matrix, fitted.model, baseline)
    figures |= {
        "train_seconds": sum(s["seconds"] for s in search.values()),
        "train_cpu_seconds": sum(s["cpu_seconds"] for s in search.values()),
        "knn_seconds": knn_seconds,
        "dim": fitted.model.config.dim,
        "epochs_run": len(fitted.history),
        "best_epoch": fitted.best_epoch,
        "val_log_loss": fitted.val_log_loss,
        "val_accuracy": fitted.val_accuracy,
        "n_models": len(matrix.model_ids),
        "n_questions": len(matrix.question_ids),
        "n_train_labels": int((train.labels >= 0).sum()),
        "dim_search": {str(d): v for d, v in search.items()},
    }
    if knn:
        figures["knn_val_accuracy_by_k"] = {str(k): v for k, v in knn_val.items()}
    return TrainedMatrix(
        model=fitted.model, config=fitted.model.config, metrics=figures, fit=fitted, dim_search=search
    )


# ================================================================================================ outputs


def save_run_checkpoint(
    model: EmbedLLM, folder: Path, run_id: str, *, embedder: str, matrix: Matrix, preset: str
) -> Path:
    """Write the run's checkpoint as FOLDER/<run_id>.pt with what it was trained on in its meta; return the path."""
    model.meta = {
        "run_id": run_id,
        "embedder": embedder,
        "model_ids": matrix.model_ids,
        "model_names": matrix.model_names,
        "preset": preset,
    }
    return model.save_checkpoint(Path(folder) / f"{run_id}.pt")


def run_and_model(rows: pl.DataFrame, run_id: str | None, where: str | Path) -> tuple[dict, EmbedLLM]:
    """Return (the first training_runs row of ROWS, its model from the checkpoint); raise when ROWS is empty.

    ROWS is the `train_run` named query's answer for RUN_ID (None: the latest completed run) in warehouse WHERE.
    """
    if rows.height == 0:
        what = f"training run {run_id!r}" if run_id else "completed training run"
        raise EmbedLLMError(f"no {what} in {where}: run `embedllm train` first")
    row = rows.row(0, named=True)
    return row, load_checkpoint(row["checkpoint_path"])


def model_vectors_frame(
    run_id: str, model_ids: list[int], model: EmbedLLM, source: str = "trained"
) -> pl.DataFrame:
    """Return the model_embeddings rows of a run: one learned vector per model."""
    vectors = model.model_embedding.weight.detach().cpu().numpy()  # (M, d)
    return pl.DataFrame(
        {
            "run_id": run_id,
            "model_id": pl.Series(model_ids, dtype=pl.Int32),
            "embedding": pl.Series([v for v in vectors], dtype=pl.List(pl.Float32)),
            "source": source,
        }
    )


def correctness_table(
    run_id: str, model_ids: list[int], question_ids: list[str], p: np.ndarray, source: str | list[str] = "trained"
) -> pa.Table:
    """Return an Arrow table of forecasts, model-major, from p (Q, M); strings dictionary-encoded (no copies).

    SOURCE is one value for every row or one per model (column of p).
    """
    n_q, n_m = p.shape
    sources = [source] * n_m if isinstance(source, str) else list(source)
    kinds = sorted(set(sources))
    qids = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(n_q, dtype=np.int32), n_m)), pa.array(question_ids, pa.string())
    )

    def const(value: str) -> pa.DictionaryArray:
        """Return a dictionary array holding VALUE in every row."""
        return pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n_q * n_m, dtype=np.int32)), pa.array([value], pa.string())
        )

    return pa.table(
        {
            "run_id": const(run_id),
            "model_id": pa.array(np.repeat(np.asarray(model_ids, dtype=np.int32), n_q)),
            "question_id": qids,
            "p_correct": pa.array(np.ascontiguousarray(p.T, dtype=np.float32).ravel()),
            "source": pa.DictionaryArray.from_arrays(
                pa.array(np.repeat(np.asarray([kinds.index(k) for k in sources], dtype=np.int32), n_q)),
                pa.array(kinds, pa.string()),
            ),
        }
    )
