"""EmbedLLM-CSV importer: a hand-made tiny dataset with hand-computed results, bad input, the synthetic writer."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from embedllm.errors import InputError
from embedllm.ids import question_id
from embedllm.synthetic import make_matrix, write_embedllm_csv
from tasks.ingest_embedllm_csv import import_embedllm_csv

HEADER = ["prompt_id", "model_id", "category_id", "label", "prompt", "model_name", "category"]
PROMPTS = {10: "What is 1+1?", 11: 'Capital, of "France"?', 12: "Line one\nline two", 13: "Q13"}
NAMES = {0: "m/a", 1: "m/b"}
CATS = {10: "math", 11: "geo", 12: "math", 13: "geo"}
# (prompt_id, model_id, label) per split file. Hand-computed below:
#   pairs with several rows: (a,10) 1,1 | (b,11) 1,0 conflict | (b,12) 0,0 | (a,13) 0,1,0 conflict
#   MAX rule: a10=1 b10=0 a11=1 b11=1 a12=0 b12=0 a13=1 b13=1  -> m/a 3/4, m/b 2/4
ROWS = {
    "train": [(10, 0, 1), (10, 1, 0), (11, 0, 1), (11, 1, 1), (11, 1, 0), (10, 0, 1)],
    "val": [(12, 0, 0), (12, 1, 0), (12, 1, 0)],
    "test": [(13, 0, 0), (13, 1, 1), (13, 0, 1), (13, 0, 0)],
}


def write_dataset(root: Path, rows=ROWS, *, order_files=True, header=HEADER, extra=None) -> Path:
    """Write the hand-made dataset (optionally with extra (split, row-dict) rows) and return its folder."""
    root.mkdir(parents=True, exist_ok=True)
    for split, items in rows.items():
        with open(root / f"{split}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            for pid, mid, label in items:
                full = {
                    "prompt_id": pid,
                    "model_id": mid,
                    "category_id": 0 if CATS[pid] == "math" else 1,
                    "label": label,
                    "prompt": PROMPTS[pid],
                    "model_name": NAMES[mid],
                    "category": CATS[pid],
                }
                w.writerow([full[c] for c in header])
            for s, row in extra or []:
                if s == split:
                    w.writerow([row[c] for c in header])
    if order_files:
        with open(root / "question_order.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["prompt_id", "prompt"])
            w.writerows(sorted(PROMPTS.items()))
        with open(root / "model_order.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["model_id", "model_name"])
            w.writerows(sorted(NAMES.items()))
    return root


def _labels(con) -> dict:
    return {
        (m, q): lab
        for m, q, lab in con.sql(
            "SELECT m.name, q.doc_id, c.label FROM correctness c JOIN models m USING (model_id) "
            "JOIN questions q USING (question_id)"
        ).fetchall()
    }


EXPECTED = {
    ("m/a", 10): 1,
    ("m/b", 10): 0,
    ("m/a", 11): 1,
    ("m/b", 11): 1,
    ("m/a", 12): 0,
    ("m/b", 12): 0,
    ("m/a", 13): 1,
    ("m/b", 13): 1,
}


@pytest.mark.parametrize("order_files", [True, False], ids=["with-order-files", "split-files-only"])
def test_handmade_dataset_resolves_duplicates_by_max_and_counts_them(con, warehouse_path, tmp_path, order_files):
    s = import_embedllm_csv(warehouse_path, write_dataset(tmp_path / "d", order_files=order_files)).summary
    assert (s.n_rows, s.n_pairs, s.n_duplicate_pairs, s.n_extra_rows, s.n_conflicts) == (13, 8, 4, 5, 2)
    assert (s.n_models, s.n_questions) == (2, 4)
    assert _labels(con) == EXPECTED
    assert con.sql("SELECT model, benchmark, accuracy FROM leaderboard ORDER BY model, benchmark").fetchall() == [
        ("m/a", "geo", 1.0),
        ("m/a", "math", 0.5),
        ("m/b", "geo", 1.0),
        ("m/b", "math", 0.0),
    ]


def test_dataset_split_category_and_prompt_text_are_kept(con, warehouse_path, tmp_path):
    import_embedllm_csv(warehouse_path, write_dataset(tmp_path / "d"))
    rows = con.sql(
        "SELECT doc_id, question_id, benchmark, task, split, prompt, source FROM questions ORDER BY doc_id"
    ).fetchall()
    assert [r[0] for r in rows] == [10, 11, 12, 13]
    assert [r[4] for r in rows] == ["train", "train", "val", "test"]
    assert [r[2] for r in rows] == ["math", "geo", "math", "geo"] == [r[3] for r in rows]
    assert [r[1] for r in rows] == [question_id(f"embedllm-csv/{CATS[p]}", str(p)) for p in (10, 11, 12, 13)]
    assert [r[5] for r in rows] == [PROMPTS[p] for p in (10, 11, 12, 13)]
    assert {r[6] for r in rows} == {"embedllm-csv"}


def test_importing_the_same_files_twice_changes_nothing(con, warehouse_path, tmp_path):
    d = write_dataset(tmp_path / "d")
    first = import_embedllm_csv(warehouse_path, d).summary
    second = import_embedllm_csv(warehouse_path, d).summary
    assert not first.already_loaded and second.already_loaded
    assert con.sql("SELECT count(*) FROM loads").fetchall()[0][0] == 1
    details = con.sql("SELECT details->>'n_conflicts', details->>'duplicate_rule' FROM loads").fetchall()
    assert details == [("2", "max")]


def test_prompt_under_several_categories_or_splits_is_one_question(con, warehouse_path, tmp_path):
    extra = [
        (
            "train",
            {
                "prompt_id": 13,
                "model_id": 1,
                "category_id": 5,
                "label": 0,
                "prompt": "Q13",
                "model_name": "m/b",
                "category": "abc",
            },
        )
    ]
    s = import_embedllm_csv(warehouse_path, write_dataset(tmp_path / "d", extra=extra)).summary
    assert (s.n_multi_category_prompts, s.n_multi_split_prompts, s.n_questions) == (1, 1, 4)
    assert con.sql("SELECT benchmark, split FROM questions WHERE doc_id = 13").fetchall() == [("abc", "test")]
    assert _labels(con)[("m/b", 13)] == 1 and s.n_conflicts == 3


def test_missing_column_names_file_and_column(con, warehouse_path, tmp_path):
    d = write_dataset(tmp_path / "d")
    header = [c for c in HEADER if c != "label"]
    with open(d / "val.csv", "w", newline="") as fh:
        csv.writer(fh).writerow(header)
    with pytest.raises(InputError, match=r"val\.csv: missing column 'label'"):
        import_embedllm_csv(warehouse_path, d)


def test_label_outside_zero_one_names_file_and_row(con, warehouse_path, tmp_path):
    rows = {**ROWS, "test": [(13, 0, 0), (13, 1, 1), (13, 0, 2)]}
    with pytest.raises(InputError, match=r"test\.csv: row 3 .*label '2' is outside \{0, 1\}"):
        import_embedllm_csv(warehouse_path, write_dataset(tmp_path / "d", rows))
    assert con.sql("SELECT count(*) FROM correctness").fetchall()[0][0] == 0


def test_non_integer_id_names_file_row_and_column(con, warehouse_path, tmp_path):
    extra = [
        (
            "val",
            {
                "prompt_id": "twelve",
                "model_id": 0,
                "category_id": 0,
                "label": 1,
                "prompt": "x",
                "model_name": "m/a",
                "category": "math",
            },
        )
    ]
    with pytest.raises(InputError, match=r"val\.csv: row 4 .*column prompt_id is 'twelve', not an integer"):
        import_embedllm_csv(warehouse_path, write_dataset(tmp_path / "d", extra=extra))


def test_unknown_layout_lists_the_expected_files(con, warehouse_path, tmp_path):
    d = write_dataset(tmp_path / "d")
    (d / "test.csv").unlink()
    with pytest.raises(InputError, match=r"missing test\.csv; expected the EmbedLLM dataset layout: train\.csv"):
        import_embedllm_csv(warehouse_path, d)


def test_model_id_without_a_name_is_refused(con, warehouse_path, tmp_path):
    d = write_dataset(tmp_path / "d")
    (d / "model_order.csv").write_text("model_id,model_name\n0,m/a\n")
    with pytest.raises(InputError, match=r"model_order\.csv: model_id 1 .*has no model_name"):
        import_embedllm_csv(warehouse_path, d)


def test_synthetic_writer_round_trips_through_the_importer(con, warehouse_path, tmp_path):
    m = make_matrix(6, 60, seed=3)
    counts = write_embedllm_csv(m, tmp_path / "syn", duplicate_fraction=0.2, seed=1)
    s = import_embedllm_csv(warehouse_path, tmp_path / "syn").summary
    assert counts["n_duplicate_pairs"] > 0 and counts["n_conflicts"] > 0
    assert (s.n_rows, s.n_duplicate_pairs, s.n_conflicts) == (
        counts["n_rows"],
        counts["n_duplicate_pairs"],
        counts["n_conflicts"],
    )
    got = np.zeros_like(m.labels)
    for mid, pid, lab in con.sql(
        "SELECT m.name, q.doc_id, c.label FROM correctness c JOIN models m "
        "USING (model_id) JOIN questions q USING (question_id)"
    ).fetchall():
        got[m.model_names.index(mid), pid] = lab
    changed = int((got != m.labels).sum())
    assert (got >= m.labels).all() and changed <= counts["n_conflicts"]  # MAX only turns conflicts to 1
    splits = dict(con.sql("SELECT doc_id, split FROM questions").fetchall())
    assert [splits[i] for i in range(60)] == m.split.tolist()


def _mutate(folder: Path, name: str, change) -> None:
    """Rewrite one file of the dataset through change(bytes) -> bytes."""
    (folder / name).write_bytes(change((folder / name).read_bytes()))


def _header_only(data: bytes) -> bytes:
    """Return only the header line of a CSV file's bytes."""
    return data.split(b"\n", 1)[0] + b"\n"


@pytest.mark.parametrize(
    "name, change, says",
    [
        (
            "train.csv",
            lambda b: b.replace(b"geo", b"g\xff\xfeo", 1),
            r"train\.csv: line \d+ \(byte \d+\) is not UTF-8",
        ),
        ("question_order.csv", lambda b: b + b'99,"caf\xe9"\n', r"question_order\.csv: line \d+ .* not UTF-8"),
        ("train.csv", lambda b: b.replace(b"\n", b"\r"), r"train\.csv: lines end in a lone CR"),
        ("train.csv", _header_only, r"train\.csv: no label rows, only the header \(train empty\)"),
    ],
)
def test_byte_level_and_empty_split_problems_are_one_line_errors_and_nothing_is_written(
    tmp_path, warehouse_path, name, change, says
):
    import warehouse

    folder = write_dataset(tmp_path / "csv")
    _mutate(folder, name, change)
    with pytest.raises(InputError, match=says) as err:
        import_embedllm_csv(warehouse_path, folder)
    assert "\n" not in str(err.value) and len(str(err.value)) < 600
    if warehouse_path.exists():
        with warehouse.session(warehouse_path, read_only=True) as con:
            assert con.execute("SELECT count(*) FROM correctness").fetchall()[0][0] == 0


def test_all_three_split_files_header_only_is_one_line_error(tmp_path, warehouse_path):
    folder = write_dataset(tmp_path / "csv")
    for split in ("train", "val", "test"):
        _mutate(folder, f"{split}.csv", _header_only)
    with pytest.raises(InputError, match=r"no label rows, only the header \(train, val, test empty\)"):
        import_embedllm_csv(warehouse_path, folder)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path, warehouse_path):
    folder = write_dataset(tmp_path / "csv")
    for split in ("train", "val", "test"):
        _mutate(folder, f"{split}.csv", lambda b: b"\xef\xbb\xbf" + b)
    assert import_embedllm_csv(warehouse_path, folder).summary.report.n_labels == 8


def test_a_second_dataset_with_other_prompts_for_the_same_ids_is_refused(tmp_path, warehouse_path):
    import warehouse

    first = write_dataset(tmp_path / "first")
    import_embedllm_csv(warehouse_path, first)
    second = write_dataset(tmp_path / "second")
    for name in ("train.csv", "val.csv", "test.csv", "question_order.csv"):
        _mutate(second, name, lambda b: b.replace(b"What is 1+1?", b"What is 2+2?"))
    with pytest.raises(
        InputError, match=r"1 question\(s\) of this dataset are in the warehouse with other prompt"
    ):
        import_embedllm_csv(warehouse_path, second)
    with warehouse.session(warehouse_path, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM questions WHERE prompt = 'What is 2+2?'").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM loads").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "name, line, says",
    [  # val.csv's first rows hold a quoted two-line prompt, so its physical line and data row differ
        (
            "val.csv",
            b"12,0,0,0,Line one, unquoted,m/a,math\n",
            r"val\.csv: line 8 \(data row 4\) has 8 fields",
        ),
        ("train.csv", b"10,1,0,1,What is 1+1?,m/b,math,oops\n", r"train\.csv: line 8 \(data row 7\) has 8 fields"),
        (
            "question_order.csv",
            b"14,What, no quotes\n",
            r"question_order\.csv: line 7 \(data row 5\) has 3 fields",
        ),
        ("model_order.csv", b"2,m/c,extra\n", r"model_order\.csv: line 4 \(data row 3\) has 3 fields"),
    ],
)
def test_a_row_with_more_fields_than_the_header_is_refused_naming_file_and_line(
    con, warehouse_path, tmp_path, name, line, says
):
    """An unquoted comma shifts the later columns (here the category would become 'm/a'): refuse, write nothing."""
    folder = write_dataset(tmp_path / "csv")
    _mutate(folder, name, lambda b: b + line)
    with pytest.raises(
        InputError, match=says + r".*but the header has \d \(1 row\(s\) with extra fields\)"
    ) as err:
        import_embedllm_csv(warehouse_path, folder)
    assert "\n" not in str(err.value) and "quote values that hold commas" in str(err.value)
    assert con.sql("SELECT count(*) FROM correctness").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM questions").fetchall()[0][0] == 0


def test_quoted_commas_and_a_trailing_empty_field_are_accepted(con, warehouse_path, tmp_path):
    """Commas inside quotes are data; an empty field after the last column (a trailing comma) carries nothing."""
    folder = write_dataset(tmp_path / "csv")
    _mutate(folder, "test.csv", lambda b: b + b'13,1,1,1,"Q13, with a comma",m/b,geo,\n')
    assert import_embedllm_csv(warehouse_path, folder).summary.report.n_labels == 8
    assert con.sql("SELECT prompt FROM questions WHERE doc_id = 11").fetchall() == [('Capital, of "France"?',)]
