"""The single loader: transactions, idempotency, the aggregate cross-check, staging files."""

import polars as pl
import pytest

from embedllm.errors import AggregateMismatch, InputError
from embedllm.ids import question_id, split_of
from tasks.load import Batch, Meta, load_batches, load_staging, write_staging


def _batch(labels, *, aggregate=None, content="c1", model="m1", task="t"):
    rows = pl.DataFrame(
        {
            "question_id": [question_id(task, str(i)) for i in range(len(labels))],
            "benchmark": "bench",
            "task": task,
            "prompt": [f"q{i}" for i in range(len(labels))],
            "label": labels,
            "value": [float(x) for x in labels],
        }
    )
    return Batch(
        Meta(
            kind="lm-eval-import",
            content_hash=content,
            model=model,
            task=task,
            aggregate_value=aggregate,
            label_rule="acc",
        ),
        rows,
    )


def test_loading_same_content_twice_changes_nothing(con):
    first = load_batches(con, [_batch([1, 0, 1, 1], aggregate=0.75)])
    second = load_batches(con, [_batch([1, 0, 1, 1], aggregate=0.75)])
    assert first.n_labels == 4 and first.n_new_questions == 4 and first.n_new_models == 1
    assert second.loaded == [] and second.skipped == ["m1/t"]
    assert con.sql("SELECT count(*) FROM loads").fetchall()[0][0] == 1
    assert con.sql("SELECT accuracy, n_questions FROM leaderboard").fetchall() == [(0.75, 4)]


def test_aggregate_mismatch_is_refused_and_nothing_is_written(con):
    good = _batch([1, 1], aggregate=1.0, task="good")
    bad = _batch([1, 0, 0], aggregate=0.5, task="bad")
    with pytest.raises(AggregateMismatch, match=r"task bad: .*0\.333333.*0\.500000"):
        load_batches(con, [good, bad])
    assert con.sql("SELECT count(*) FROM correctness").fetchall()[0][0] == 0
    assert con.sql("SELECT count(*) FROM models").fetchall()[0][0] == 0


def test_label_outside_zero_one_is_refused(con):
    with pytest.raises(InputError, match="label must be 0 or 1, got 2"):
        load_batches(con, [_batch([1, 2])])


def test_new_content_replaces_the_current_label(con):
    load_batches(con, [_batch([0, 0], content="old")])
    load_batches(con, [_batch([1, 0], content="new")])
    labels = con.sql("SELECT label FROM correctness ORDER BY question_id").fetchall()
    assert sorted(x[0] for x in labels) == [0, 1]
    assert con.sql("SELECT count(*) FROM loads").fetchall()[0][0] == 2
    assert con.sql("SELECT count(DISTINCT load_id) FROM correctness").fetchall()[0][0] == 1


def test_splits_follow_question_ids(con):
    load_batches(con, [_batch([1] * 50)])
    rows = con.sql("SELECT question_id, split FROM questions").fetchall()
    assert all(split == split_of(qid) for qid, split in rows)


def test_staging_round_trip_loads_and_removes_files(con, warehouse_path, tmp_path):
    path = write_staging(_batch([1, 0], aggregate=0.5), tmp_path / "staging")
    assert path.exists() and not list((tmp_path / "staging").glob(".tmp-*"))
    done = load_staging(warehouse_path, tmp_path / "staging")
    assert done.load.n_labels == 2 and not path.exists()
    assert done.report.rows["correctness"] == 2 and con.sql("SELECT count(*) FROM correctness").fetchall() == [
        (2,)
    ]
