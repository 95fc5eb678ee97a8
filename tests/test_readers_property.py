"""Property tests over both readers: mutated EmbedLLM CSV folders and mutated lm-eval output folders.

Hypothesis draws mutations (truncation at any byte, byte flips, shuffled header columns, a duplicated or a missing
file) of a valid folder. Whatever it draws, an import either loads cleanly or raises an EmbedLLMError whose message
is one line of bounded length, and a refused import leaves the warehouse exactly as it was (no partial write).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_import_embedllm_csv import write_dataset

import warehouse
from embedllm.errors import EmbedLLMError
from embedllm.labels import parse_overrides
from tasks.ingest_embedllm_csv import import_embedllm_csv
from tasks.ingest_lm_eval import import_lm_eval_dir

JSONL = Path(__file__).parent / "fixtures" / "lm_eval" / "jsonl"
RULES = parse_overrides(["fx_mc=acc", "fx_gen=exact_match,flexible-extract", "fx_cont=p_correct>0.5"])
EXAMPLES = settings(
    max_examples=int(os.environ.get("EMBEDLLM_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@st.composite
def mutation(draw, files: list[str]) -> tuple:
    """Return one mutation: (kind, file, position 0..1, byte value)."""
    kind = draw(st.sampled_from(["truncate", "flip", "shuffle_header", "duplicate", "remove"]))
    return kind, draw(st.sampled_from(files)), draw(st.floats(0, 1)), draw(st.integers(0, 255))


def mutate(folder: Path, kind: str, name: str, where: float, byte: int) -> None:
    """Apply one mutation to FOLDER/name in place."""
    path = folder / name
    data = path.read_bytes()
    at = min(int(where * len(data)), max(len(data) - 1, 0))
    if kind == "truncate":
        path.write_bytes(data[:at])
    elif kind == "flip" and data:
        path.write_bytes(data[:at] + bytes([byte]) + data[at + 1 :])
    elif kind == "shuffle_header":
        head, _, rest = data.partition(b"\n")
        cols = head.split(b",")
        k = at % max(len(cols), 1)
        path.write_bytes(b",".join(cols[k:] + cols[:k]) + b"\n" + rest)
    elif kind == "duplicate":
        shutil.copy(path, path.with_name(path.stem + "_copy" + path.suffix))
    elif kind == "remove":
        path.unlink()


def counts(db: Path) -> dict[str, int]:
    """Return row counts of the tables an import writes (empty when the file does not exist)."""
    if not db.exists():
        return {}
    with warehouse.session(db, read_only=True) as con:
        return {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("questions", "correctness", "loads")
        }


def check_outcome(db: Path, run) -> str:
    """Run the import; assert it loaded or refused in one line with nothing written; return which."""
    before = counts(db)
    try:
        run()
    except EmbedLLMError as exc:
        message = str(exc)
        assert "\n" not in message and 0 < len(message) <= 1200, message
        assert counts(db) == before, f"a refused import wrote rows: {message}"
        return "refused"
    return "loaded"


@pytest.fixture(scope="module")
def base_csv(tmp_path_factory) -> Path:
    """A valid EmbedLLM-layout folder (the hand-made dataset)."""
    return write_dataset(tmp_path_factory.mktemp("csv") / "base")


@EXAMPLES
@given(change=mutation(["train.csv", "val.csv", "test.csv", "question_order.csv", "model_order.csv"]))
def test_a_mutated_embedllm_csv_folder_loads_or_is_refused_in_one_line(base_csv, tmp_path_factory, change):
    work = tmp_path_factory.mktemp("mutated")
    folder = work / "data"
    shutil.copytree(base_csv, folder)
    mutate(folder, *change)
    db = work / "wh.duckdb"
    warehouse.connect(db).close()
    check_outcome(db, lambda: import_embedllm_csv(db, folder))


LM_EVAL_FILES = sorted(p.name for p in (JSONL / "tiny-lm").iterdir())


@EXAMPLES
@given(change=mutation(LM_EVAL_FILES))
def test_a_mutated_lm_eval_folder_loads_or_is_refused_in_one_line(tmp_path_factory, change):
    work = tmp_path_factory.mktemp("mutated")
    folder = work / "out"
    shutil.copytree(JSONL, folder)
    mutate(folder / "tiny-lm", *change)
    db = work / "wh.duckdb"
    warehouse.connect(db).close()
    check_outcome(db, lambda: import_lm_eval_dir(db, folder, model="tiny-lm", rules=RULES))
