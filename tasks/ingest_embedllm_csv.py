"""Import the published EmbedLLM dataset layout (train.csv, val.csv, test.csv, question_order.csv, model_order.csv).

Split files have columns prompt_id, model_id, category_id, label, prompt, model_name, category (one row per model
and question); question_order.csv has prompt_id, prompt; model_order.csv has model_id, model_name. Both order
files are optional: without them prompts and model names come from the split files.

Rules (also in the import report):
- The dataset's own split is kept: a question's split is the file it appears in. A prompt listed in several split
  files gets the most held-out one (test > val > train), so a question the dataset tests on never trains.
- benchmark = the row's category; question_id = ids.question_id(f"embedllm-csv/{category}", str(prompt_id)).
  A prompt_id listed under several categories (the published data lists some GPQA prompts under several task
  variants) is one question, filed under the alphabetically first of its categories.
- Duplicate (model, prompt_id) rows are resolved by MAX: the pair is correct if any of its rows says 1. This is
  the rule the EmbedLLM authors' own code applies (groupby(model_id, prompt_id).label.max()), so the imported
  matrix equals the one the paper trained on. Duplicated pairs and conflicting pairs (rows disagreeing) are
  counted and reported.
- A data row with more fields than its file's header is refused (file, line, field counts), nothing written.

Speed: polars parses only the columns it needs (the prompt column is read once per question from
question_order.csv when present), groups vectorised, and the rows go to DuckDB through the one loader's bulk path
(questions passed once, label rows holding model, question_id, label). 112 models x 36,000 questions import in
about 20 CPU-seconds (benchmarks/import_embedllm_csv.py).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

import warehouse
from embedllm.errors import InputError
from embedllm.ids import question_id
from tasks import stage
from tasks.load import Batch, LoadReport, Meta, load_batches
from tasks.stage import StageReport

KIND = "embedllm-csv"
SPLITS = ("train", "val", "test")
SPLIT_COLUMNS = ("prompt_id", "model_id", "category_id", "label", "prompt", "model_name", "category")
_SPLIT_RANK = {"test": 0, "val": 1, "train": 2}
_LAYOUT_HELP = (
    "expected the EmbedLLM dataset layout: train.csv, val.csv and test.csv (columns "
    f"{', '.join(SPLIT_COLUMNS)}), optionally question_order.csv (prompt_id, prompt) and "
    "model_order.csv (model_id, model_name)"
)


@dataclass
class CsvImport:
    """What an EmbedLLM-CSV import found and did."""

    directory: str
    content_hash: str
    already_loaded: bool = False
    n_rows: int = 0
    n_pairs: int = 0
    n_duplicate_pairs: int = 0  # (model, question) pairs with more than one row
    n_extra_rows: int = 0  # rows beyond the first of each pair
    n_conflicts: int = 0  # duplicated pairs whose rows disagree (resolved by MAX)
    n_models: int = 0
    n_questions: int = 0
    n_multi_category_prompts: int = 0
    n_multi_split_prompts: int = 0
    questions_by_split: dict = field(default_factory=dict)
    report: LoadReport | None = None
    seconds: dict = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------- files


def layout(directory: str | Path) -> dict[str, Path]:
    """Return the dataset's files by role (train, val, test, question_order?, model_order?); InputError if not."""
    root = Path(directory)
    if not root.is_dir():
        raise InputError(f"{root}: not a directory; {_LAYOUT_HELP}")
    files = {s: root / f"{s}.csv" for s in SPLITS}
    missing = [p.name for p in files.values() if not p.exists()]
    if missing:
        raise InputError(f"{root}: missing {', '.join(missing)}; {_LAYOUT_HELP}")
    for name in ("question_order", "model_order"):
        if (root / f"{name}.csv").exists():
            files[name] = root / f"{name}.csv"
    return files


def header(path: Path) -> list[str]:
    """Return the column names on the first line of a CSV file (a UTF-8 byte order mark is skipped)."""
    with open(path, "rb") as fh:
        first = fh.readline()
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the header line is not UTF-8 (byte {exc.start}): save the file as UTF-8"
        ) from None
    try:
        return [c.strip() for c in next(csv.reader([text.rstrip("\r\n")]), [])]
    except csv.Error as exc:
        raise InputError(f"{path}: cannot read the header line ({exc})") from None


def require_columns(path: Path, columns: tuple[str, ...] | list[str]) -> None:
    """Raise InputError naming the file and the first missing column."""
    have = header(path)
    for col in columns:
        if col not in have:
            raise InputError(
                f"{path}: missing column {col!r} (the header has {', '.join(have) or 'nothing'}); {_LAYOUT_HELP}"
            )


def content_hash(files: dict[str, Path]) -> str:
    """Return the sha256 over every file's name and bytes (the import's identity: same files => no-op).

    The same pass checks what the CSV reader would choke on later: bytes that are not UTF-8 (named by line and
    byte) and line endings that are a lone CR.
    """
    h = hashlib.sha256()
    for role in sorted(files):
        h.update(f"{role}:{files[role].stat().st_size}\n".encode())
        decoder, offset, lines, has_lf, has_cr = codecs.getincrementaldecoder("utf-8")(), 0, 1, False, False
        with open(files[role], "rb") as fh:
            while chunk := fh.read(1 << 24):
                h.update(chunk)
                try:
                    decoder.decode(chunk)
                except UnicodeDecodeError as exc:
                    line = lines + chunk[: max(exc.start, 0)].count(b"\n")
                    raise InputError(
                        f"{files[role]}: line {line} (byte {offset + max(exc.start, 0)}) is not UTF-8: "
                        "save the file as UTF-8"
                    ) from None
                offset, lines = offset + len(chunk), lines + chunk.count(b"\n")
                has_lf, has_cr = has_lf or b"\n" in chunk, has_cr or b"\r" in chunk
        if has_cr and not has_lf:
            raise InputError(f"{files[role]}: lines end in a lone CR (old Mac style): convert them to LF or CRLF")
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- reading

_EXTRA = "__fields_beyond_the_header__"


def scan(path: Path, columns: list[str] | tuple[str, ...]) -> pl.LazyFrame:
    """Return a lazy scan of PATH: `row` (1-based data row), COLUMNS as strings, and _EXTRA, set on a row that holds
    more fields than the header (polars alone ignores those fields when only some columns are read)."""
    names = pl.scan_csv(path, infer_schema=False, n_rows=0).collect_schema().names()
    by_name = {n.strip(): n for n in names}
    schema = {n: pl.String for n in names} | {_EXTRA: pl.String}
    return pl.scan_csv(
        path, schema=schema, missing_columns="insert", row_index_name="row", row_index_offset=1
    ).select("row", *(pl.col(by_name.get(c, c)).alias(c) for c in columns), _EXTRA)


def _fields_on_row(path: Path, row: int) -> tuple[int, int] | None:
    """Return (physical line, number of fields) of data row ROW of a CSV file, read with the csv module (error path)."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for i, fields in enumerate(reader, start=1):
            if i == row:
                return reader.line_num, len(fields)
    return None


def refuse_extra_fields(rows: pl.DataFrame, path_of: Callable[[dict], Path]) -> pl.DataFrame:
    """Return ROWS without the _EXTRA column; InputError naming file, line and field counts of the first row with
    more fields than its header (a value holding an unquoted comma shifts every later column)."""
    bad = rows.filter(pl.col(_EXTRA).is_not_null())
    if bad.height:
        first = bad.row(0, named=True)
        path = path_of(first)
        n_header = len(header(path))
        where = _fields_on_row(path, first["row"])
        line, fields = where if where and where[1] > n_header else (None, "more")
        raise InputError(
            f"{path}: {f'line {line}' if line else 'a line'} (data row {first['row']}) has {fields} fields but the "
            f'header has {n_header} ({bad.height:,} row(s) with extra fields): quote values that hold commas ("a, b") or drop '
            "the extra fields; nothing was imported"
        )
    return rows.drop(_EXTRA)


def read_label_rows(files: dict[str, Path], with_names: bool) -> pl.DataFrame:
    """Return every split file's rows: split, row (1-based data row), prompt_id, model_id, label, category[, name]."""
    cols = ["prompt_id", "model_id", "label", "category"] + (["model_name"] if with_names else [])
    frames = []
    for split in SPLITS:
        require_columns(files[split], cols)
        frames.append(scan(files[split], cols).with_columns(pl.lit(split).alias("split")))
    try:
        raw = pl.concat(frames).collect()
    except pl.exceptions.PolarsError as exc:
        raise InputError(
            f"{files['train'].parent}: cannot parse the split CSV files ({str(exc).splitlines()[0][:300]})"
        ) from None
    raw = refuse_extra_fields(raw, lambda first: files[first["split"]])  # train, val, test in row order
    empty = [split for split in SPLITS if raw.filter(pl.col("split") == split).height == 0]
    if empty:
        raise InputError(
            f"{files[empty[0]]}: no label rows, only the header ({', '.join(empty)} empty): every split "
            "file needs rows (train.csv is what training learns from)"
        )
    return raw.with_columns(
        pl.col("prompt_id").str.strip_chars().cast(pl.Int64, strict=False).alias("pid"),
        pl.col("model_id").str.strip_chars().cast(pl.Int64, strict=False).alias("mid"),
        pl.col("label").str.strip_chars().cast(pl.Float64, strict=False).alias("lab"),
    )


def check_rows(rows: pl.DataFrame, files: dict[str, Path]) -> None:
    """Raise InputError naming file, row and column of the first bad id or label (labels must be 0 or 1)."""
    bad = rows.filter(
        pl.col("pid").is_null()
        | pl.col("mid").is_null()
        | ~pl.col("lab").is_in([0.0, 1.0])
        | pl.col("lab").is_null()
        | pl.col("category").is_null()
    )
    if bad.height == 0:
        return
    first = bad.sort(pl.col("split").replace_strict({s: i for i, s in enumerate(SPLITS)}), "row").row(
        0, named=True
    )
    where = f"{files[first['split']]}: row {first['row']} (data row, header excluded)"
    for col, parsed in (("prompt_id", "pid"), ("model_id", "mid")):
        if first[parsed] is None:
            raise InputError(f"{where}: column {col} is {first[col]!r}, not an integer ({bad.height} bad rows)")
    if first["category"] is None:
        raise InputError(f"{where}: column category is empty ({bad.height} bad rows)")
    raise InputError(
        f"{where}: label {first['label']!r} is outside {{0, 1}} ({bad.height} bad rows); fix or drop those rows"
    )


def parsed(where: Path, read: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """Return read(); a CSV the parser cannot read becomes one InputError line naming the file."""
    try:
        return read()
    except pl.exceptions.PolarsError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise InputError(f"{where}: cannot parse the CSV ({first}); check its quoting and columns") from None


def model_names(rows: pl.DataFrame, files: dict[str, Path]) -> pl.DataFrame:
    """Return (mid, model) for every model_id in the rows: model_order.csv if present, else the rows' model_name."""
    if "model_order" in files:
        require_columns(files["model_order"], ["model_id", "model_name"])
        names = parsed(
            files["model_order"],
            lambda: refuse_extra_fields(
                scan(files["model_order"], ["model_id", "model_name"]).collect(), lambda _: files["model_order"]
            ).select(
                pl.col("model_id").str.strip_chars().cast(pl.Int64, strict=False).alias("mid"),
                pl.col("model_name").alias("model"),
            ),
        )
        if names["mid"].null_count():
            raise InputError(f"{files['model_order']}: column model_id holds a value that is not an integer")
    else:
        names = rows.select("mid", pl.col("model_name").alias("model")).unique("mid", keep="first")
    names = names.unique("mid", keep="first")
    unknown = rows.select("mid").unique().join(names, on="mid", how="anti")
    if unknown.height:
        raise InputError(
            f"{files.get('model_order', files['train'])}: model_id {unknown['mid'][0]} used in the split "
            "files has no model_name; add it to model_order.csv"
        )
    if names["model"].null_count():
        raise InputError(
            f"{files.get('model_order', files['train'])}: empty model_name for model_id "
            f"{names.filter(pl.col('model').is_null())['mid'][0]}"
        )
    return names


def prompts(pids: pl.DataFrame, files: dict[str, Path]) -> pl.DataFrame:
    """Return (pid, prompt) for the given prompt ids: question_order.csv if present, else the split files."""
    if "question_order" in files:
        require_columns(files["question_order"], ["prompt_id", "prompt"])
        src = scan(files["question_order"], ["prompt_id", "prompt"])
        where = files["question_order"]
        extra = parsed(where, lambda: src.filter(pl.col(_EXTRA).is_not_null()).collect())
        refuse_extra_fields(extra, lambda _: files["question_order"])
    else:  # the split files' rows were checked for extra fields when the labels were read
        for split in SPLITS:
            require_columns(files[split], ["prompt"])
        src = pl.concat([scan(files[s], ["prompt_id", "prompt"]) for s in SPLITS])
        where = files["train"].parent
    src = src.with_columns(pl.col("prompt_id").str.strip_chars().cast(pl.Int64, strict=False).alias("pid"))
    text = parsed(
        where,
        lambda: (
            src.filter(pl.col("pid").is_not_null())
            .unique("pid", keep="first")
            .select("pid", "prompt")
            .collect(engine="streaming")
        ),
    )
    out = pids.join(text, on="pid", how="left")
    if out["prompt"].null_count():
        raise InputError(
            f"{where}: no prompt text for prompt_id {out.filter(pl.col('prompt').is_null())['pid'][0]}"
        )
    return out


# -------------------------------------------------------------------------------------------- resolving


@dataclass
class Pairs:
    """One label per (model, question) after the MAX rule, in (question_id, model) order, plus duplicate counts."""

    labels: pl.DataFrame  # model, question_id, label
    n_duplicate_pairs: int
    n_extra_rows: int
    n_conflicts: int


def resolve_pairs(rows: pl.DataFrame, questions: pl.DataFrame, names: pl.DataFrame) -> Pairs:
    """Return the MAX-resolved labels of all (model_id, prompt_id) pairs, sorted by (question_id, model).

    Vectorised with one argsort over an integer key (question rank x model index): duplicates are equal adjacent
    keys. The (question_id, model) order lets DuckDB build the correctness primary-key index ~2x faster.
    """
    order = questions.select("pid", "question_id").sort("question_id")
    upids = order["pid"].to_numpy()
    by_pid = np.argsort(upids)  # question rank of each pid, via a sorted lookup
    names = names.sort("mid")
    umids = names["mid"].to_numpy()
    pid, mid = rows["pid"].to_numpy(), rows["mid"].to_numpy()
    rank = by_pid[np.searchsorted(upids[by_pid], pid)]
    key = rank.astype(np.int64) * len(umids) + np.searchsorted(umids, mid)
    idx = np.argsort(key, kind="stable")
    key, lab = key[idx], rows["lab"].to_numpy()[idx]
    start = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    counts = np.diff(np.r_[start, len(key)])
    lmax, lmin = np.maximum.reduceat(lab, start), np.minimum.reduceat(lab, start)
    first = key[start]
    labels = pl.DataFrame(
        {
            "model": names["model"].gather(first % len(umids)),
            "question_id": order["question_id"].gather(first // len(umids)),
            "label": pl.Series(lmax.astype(np.int8)),
        }
    )
    return Pairs(
        labels=labels,
        n_duplicate_pairs=int((counts > 1).sum()),
        n_extra_rows=int((counts - 1).sum()),
        n_conflicts=int((lmax != lmin).sum()),
    )


def resolve_questions(rows: pl.DataFrame) -> pl.DataFrame:
    """Return one row per pid: category (first alphabetically), split (test > val > train), counts of each."""
    q = rows.group_by("pid").agg(
        pl.col("category").min().alias("category"),
        pl.col("category").n_unique().alias("n_categories"),
        pl.col("split").replace_strict(_SPLIT_RANK, return_dtype=pl.Int8).min().alias("rank"),
        pl.col("split").n_unique().alias("n_splits"),
    )
    inv = {v: k for k, v in _SPLIT_RANK.items()}
    q = q.with_columns(pl.col("rank").replace_strict(inv, return_dtype=pl.String).alias("split"))
    ids = [question_id(f"embedllm-csv/{c}", str(p)) for p, c in zip(q["pid"].to_list(), q["category"].to_list())]
    return q.with_columns(pl.Series("question_id", ids, dtype=pl.String)).drop("rank")


def already_loaded(con: duckdb.DuckDBPyConnection, digest: str) -> bool:
    """Return whether this exact dataset (same content hash) was imported before."""
    return warehouse.query(con, "import_load_exists", [KIND, digest])["n"][0] > 0


def build_batch(files: dict[str, Path], digest: str, summary: CsvImport) -> Batch:
    """Return the one bulk Batch of the dataset (questions once, label rows model/question_id/label)."""
    t0 = time.perf_counter()
    with_names = "model_order" not in files
    rows = read_label_rows(files, with_names)
    check_rows(rows, files)
    summary.seconds["read"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    names = model_names(rows, files)
    qs = resolve_questions(rows)
    pairs = resolve_pairs(rows, qs, names)
    summary.n_rows = rows.height
    del rows
    summary.n_pairs = pairs.labels.height
    summary.n_duplicate_pairs = pairs.n_duplicate_pairs
    summary.n_extra_rows = pairs.n_extra_rows
    summary.n_conflicts = pairs.n_conflicts
    summary.n_models = names.height
    summary.n_questions = qs.height
    summary.n_multi_category_prompts = int((qs["n_categories"] > 1).sum())
    summary.n_multi_split_prompts = int((qs["n_splits"] > 1).sum())
    summary.questions_by_split = dict(qs.group_by("split").len().sort("split").iter_rows())
    questions = prompts(qs.select("pid", "question_id", "category", "split"), files).select(
        "question_id",
        pl.col("category").alias("benchmark"),
        pl.col("category").alias("task"),
        pl.col("pid").alias("doc_id"),
        "prompt",
        "split",
    )
    labels = pairs.labels
    summary.seconds["resolve"] = time.perf_counter() - t1
    details = {
        k: getattr(summary, k)
        for k in (
            "n_rows",
            "n_pairs",
            "n_duplicate_pairs",
            "n_extra_rows",
            "n_conflicts",
            "n_multi_category_prompts",
            "n_multi_split_prompts",
        )
    }
    details["duplicate_rule"] = "max"
    meta = Meta(
        kind=KIND,
        content_hash=digest,
        source=str(files["train"].parent),
        label_rule="label (dataset)",
        details=details,
    )
    return Batch(meta=meta, rows=labels, questions=questions)


@dataclass
class CsvImportResult:
    """What the EmbedLLM-CSV import found and did (summary) and the stage report."""

    summary: CsvImport
    report: StageReport


def refuse_changed_prompts(con: duckdb.DuckDBPyConnection, questions: pl.DataFrame) -> None:
    """Refuse a dataset whose question ids are known with another prompt text (another or a corrected dataset)."""
    con.register("_csv_questions", questions.select("question_id", "task", "doc_id", "prompt").to_arrow())
    try:
        clash = con.execute(
            "SELECT n.task, n.doc_id, q.prompt, n.prompt, count(*) OVER () FROM _csv_questions n "
            "JOIN questions q USING (question_id) WHERE q.prompt IS DISTINCT FROM n.prompt LIMIT 1"
        ).fetchall()
    finally:
        con.unregister("_csv_questions")
    if clash:
        task, doc_id, old, new, n = clash[0]
        cut = lambda t: repr(t if len(t) <= 80 else t[:77] + "...")
        raise InputError(
            f"{n:,} question(s) of this dataset are in the warehouse with other prompt text, e.g. category {task} "
            f"prompt_id {doc_id}: {cut(old)} there, {cut(new)} here; labels would land on the wrong prompts, so "
            "nothing was imported: import this dataset into another --warehouse"
        )


def import_embedllm_csv(
    db: str | Path, directory: str | Path, *, progress: Callable[[str], None] | None = None, wait: float = 0.0
) -> CsvImportResult:
    """Import an EmbedLLM-layout folder in one transaction (no-op if the same files were imported); return counts.

    Files are hashed and read with no warehouse connection open; the warehouse is opened twice, briefly: to ask
    whether this content was loaded before, and to load it. PROGRESS, if given, is called with the name of each
    phase as it starts (the CLI shows it in a spinner).
    """
    step = progress or (lambda _text: None)
    t0 = time.perf_counter()
    files = layout(directory)
    step("hashing the files (same content => already loaded)")
    digest = content_hash(files)  # also refuses non-UTF-8 bytes and lone-CR line endings, naming the line
    for split in SPLITS:
        require_columns(files[split], ["prompt_id", "model_id", "label", "category"])
    summary = CsvImport(directory=str(directory), content_hash=digest)
    summary.seconds["hash"] = time.perf_counter() - t0
    with stage.writing(db, "import", wait=wait) as report:
        with stage.session(db) as con:
            seen = already_loaded(con, digest)
        if seen:
            summary.already_loaded = True
            summary.report = LoadReport(skipped=[f"{KIND}/{Path(directory).name}"])
        else:
            step("reading and resolving duplicates")
            batch = build_batch(files, digest, summary)
            step(f"loading {batch.rows.height:,} labels into the warehouse (one transaction)")
            t1 = time.perf_counter()
            with stage.session(db) as con:
                con.execute("SET enable_progress_bar = false")  # keep DuckDB's own bar out of the CLI output
                refuse_changed_prompts(con, batch.questions)
                summary.report = load_batches(con, [batch])
            summary.seconds["load"] = time.perf_counter() - t1
        summary.seconds["total"] = time.perf_counter() - t0
        report.note = (
            f"{directory}: already loaded"
            if seen
            else f"{directory}: {summary.report.n_labels:,} labels, {summary.n_models} models"
        )
    return CsvImportResult(summary=summary, report=report)
