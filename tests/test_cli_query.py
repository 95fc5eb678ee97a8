"""CLI edge of the import/query area: `embedllm import ...`, `embedllm sql`, `embedllm status`, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_import_embedllm_csv import write_dataset  # tests/ is on sys.path (rootdir conftest)

from embedllm.cli import main

JSONL = Path(__file__).parent / "fixtures" / "lm_eval" / "jsonl"
RULE_ARGS = ["-l", "fx_mc=acc", "-l", "fx_gen=exact_match,flexible-extract", "-l", "fx_cont=p_correct>0.5"]


def run(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    """Run the embedllm CLI in-process; return (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["embedllm", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def filled(warehouse_path, tmp_path, monkeypatch, capsys):
    """A warehouse holding the recorded lm-eval fixture (model tiny-lm) and the hand-made EmbedLLM CSV set."""
    assert run(monkeypatch, capsys, "import", "lm-eval", str(JSONL), "--model", "tiny-lm", *RULE_ARGS)[0] == 0
    assert run(monkeypatch, capsys, "import", "embedllm-csv", str(write_dataset(tmp_path / "csv")))[0] == 0
    return warehouse_path


def test_import_commands_print_what_was_loaded_and_skip_repeats(warehouse_path, tmp_path, monkeypatch, capsys):
    code, out, _ = run(
        monkeypatch,
        capsys,
        "import",
        "lm-eval",
        str(JSONL),
        "--model",
        "tiny-lm",
        *RULE_ARGS,
        "--warehouse",
        str(warehouse_path),
    )
    assert code == 0 and "lm-eval 0.4.13" in out
    assert "loaded 32 labels, 32 new questions, 1 new model(s); 0 task(s) skipped" in out
    assert "fx_gen" in out and "exact_match,flexible-extract" in out
    code, out, _ = run(monkeypatch, capsys, "import", "lm-eval", str(JSONL), "--model", "tiny-lm", *RULE_ARGS)
    assert "loaded 0 labels" in out and "3 task(s) skipped as already loaded" in out and "already loaded" in out
    csv_dir = str(write_dataset(tmp_path / "csv"))
    code, out, _ = run(monkeypatch, capsys, "import", "embedllm-csv", csv_dir)
    assert code == 0 and "13 rows, 2 models x 4 questions (test 1, train 2, val 1)" in out
    assert (
        "duplicates: 4 (model, question) pairs had more than one row (5 extra rows); 2 of them conflicted" in out
    )
    code, out, _ = run(monkeypatch, capsys, "import", "embedllm-csv", csv_dir)
    assert code == 0 and "already loaded" in out and "nothing changed" in out


def test_sql_prints_table_csv_and_json(filled, monkeypatch, capsys):
    q = "SELECT model, benchmark, accuracy FROM leaderboard WHERE model = 'm/a' ORDER BY benchmark"
    code, out, _ = run(monkeypatch, capsys, "sql", q)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["model", "benchmark", "accuracy"] and lines[2].split() == ["m/a", "geo", "1"]
    assert lines[-1] == "(2 rows)"
    code, out, _ = run(monkeypatch, capsys, "sql", q, "--format", "csv")
    assert out.splitlines() == ["model,benchmark,accuracy", "m/a,geo,1.0", "m/a,math,0.5"]
    code, out, _ = run(monkeypatch, capsys, "sql", q, "-f", "json")
    assert json.loads(out) == [
        {"model": "m/a", "benchmark": "geo", "accuracy": 1.0},
        {"model": "m/a", "benchmark": "math", "accuracy": 0.5},
    ]


def test_sql_connection_is_read_only_and_errors_are_one_line(filled, monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, "sql", "DELETE FROM correctness")
    assert code == 1 and err.startswith("error: sql: ") and "read-only" in err and err.count("\n") == 1
    code, _, err = run(monkeypatch, capsys, "sql", "SELECT nope FROM models")
    assert code == 1 and err.startswith("error: sql: Binder Error") and err.count("\n") == 1
    code, out, _ = run(monkeypatch, capsys, "sql", "SELECT count(*) AS n FROM correctness")
    assert out.splitlines()[2].strip() == "40"  # 32 lm-eval labels + 8 CSV pairs: nothing was deleted


def test_status_shows_models_questions_labels_and_loads(filled, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, "status")
    assert code == 0 and f"warehouse {filled}" in out
    for section in ("== models", "== correctness labels", "== questions by benchmark and split", "== last loads"):
        assert section in out
    code, out, _ = run(monkeypatch, capsys, "status", "--format", "json")
    data = json.loads(out)
    assert data["correctness labels"] == [
        {
            "labels": 40,
            "models": 3,
            "questions": 36,
            "mean_label": 0.425,
            "filled": pytest.approx(40 / 108, abs=1e-4),
        }
    ]
    by_bench = {r["benchmark"]: r for r in data["questions by benchmark and split"]}
    assert (by_bench["geo"]["train"], by_bench["geo"]["test"], by_bench["geo"]["labels"]) == (1, 1, 4)
    assert {r["kind"] for r in data["last loads"]} == {"lm-eval-import", "embedllm-csv"}


def test_bad_input_gives_one_line_errors_and_exit_one(warehouse_path, tmp_path, monkeypatch, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run(monkeypatch, capsys, "import", "lm-eval", str(tmp_path / "empty"), "--model", "x")
    assert code == 1 and "no lm-eval results file found; expected" in err and err.count("\n") == 1
    code, _, err = run(monkeypatch, capsys, "import", "lm-eval", str(JSONL), "--model", "x", "-l", "fx_mc")
    assert code == 1 and "expected TASK=RULE" in err
    code, _, err = run(monkeypatch, capsys, "import", "embedllm-csv", str(tmp_path / "empty"))
    assert code == 1 and "missing train.csv, val.csv, test.csv" in err
    code, _, err = run(monkeypatch, capsys, "sql", "SELECT 1", "--warehouse", str(tmp_path / "none.duckdb"))
    assert code == 1 and "no warehouse at" in err


def test_locked_warehouse_is_a_one_line_error_and_nothing_is_written(
    warehouse_path, tmp_path, monkeypatch, capsys
):
    import warehouse

    warehouse.connect(warehouse_path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, _, err = run(monkeypatch, capsys, "import", "embedllm-csv", str(write_dataset(tmp_path / "csv")))
    finally:
        holder.kill()
        holder.wait()
    assert code == 1 and "is locked" in err and err.count("\n") == 1
    time.sleep(0.2)
    con = warehouse.connect(warehouse_path, read_only=True)
    assert con.sql("SELECT count(*) FROM correctness").fetchall()[0][0] == 0
    con.close()


@pytest.mark.parametrize("command", [["import", "lm-eval"], ["import", "embedllm-csv"], ["sql"], ["status"]])
def test_commands_have_help_with_an_example(command, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, *command, "--help")
    assert code == 0 and "Example" in out and "--warehouse" in out


# ------------------------------------------------------------------------------- `embedllm sql` cannot write


def make_other_warehouse(path: Path) -> Path:
    """Create another DuckDB file holding a `correctness` table with one row, for escape attempts."""
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE correctness AS SELECT 1 AS model_id, 'q' AS question_id, 1 AS label")
    con.close()
    return path


@pytest.mark.parametrize(
    "statement, says",
    [
        ("ATTACH '{other}' AS o (READ_WRITE)", "ATTACH statements are not allowed"),
        ("DELETE FROM correctness", "DELETE statements are not allowed"),
        ("COPY (SELECT * FROM models) TO '{other}'", "COPY statements are not allowed"),
        ("SELECT 1; DELETE FROM correctness", "exactly one statement"),
        ("INSTALL httpfs", "LOAD statements are not allowed"),
        ("SET threads = 1", "SET statements are not allowed"),
        ("SELECT * FROM read_text('/etc/hostname')", "--allow-files"),
        ("SELECT * FROM glob('/etc/*')", "--allow-files"),
        ("SELECT * FROM read_parquet('{other}')", "--allow-files"),
        ("CREATE TABLE x AS SELECT 1", "CREATE statements are not allowed"),
    ],
)
def test_sql_refuses_every_way_out_with_one_line(filled, tmp_path, monkeypatch, capsys, statement, says):
    other = make_other_warehouse(tmp_path / "other.duckdb")
    before = other.read_bytes()
    code, out, err = run(monkeypatch, capsys, "sql", statement.format(other=other))
    assert code == 1 and says in err and err.count("\n") == 1, err
    assert other.read_bytes() == before  # the other warehouse is untouched
    code, out, _ = run(monkeypatch, capsys, "sql", "SELECT count(*) AS n FROM correctness", "-f", "csv")
    assert code == 0 and int(out.splitlines()[1]) > 0  # nothing was deleted here either


def test_sql_reads_other_files_only_with_allow_files(filled, tmp_path, monkeypatch, capsys):
    import polars as pl

    pl.DataFrame({"x": [1, 2, 3]}).write_parquet(tmp_path / "extra.parquet")
    query = f"SELECT sum(x) AS s FROM read_parquet('{tmp_path / 'extra.parquet'}')"
    assert run(monkeypatch, capsys, "sql", query)[0] == 1
    code, out, _ = run(monkeypatch, capsys, "sql", query, "--allow-files", "-f", "csv")
    assert code == 0 and out.splitlines()[1] == "6"
    code, _, err = run(monkeypatch, capsys, "sql", f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'", "--allow-files")
    assert code == 1 and "COPY statements are not allowed" in err and not (tmp_path / "out.csv").exists()
    code, out, _ = run(monkeypatch, capsys, "sql", "DESCRIBE correctness", "-f", "csv")
    assert code == 0 and "label" in out


def test_bad_values_are_refused_with_one_line_and_a_new_warehouse_path_stays_empty(tmp_path, monkeypatch, capsys):
    from embedllm.tiny_lm import build_tiny_lm

    folder = build_tiny_lm(tmp_path / "tiny")
    capsys.readouterr()  # the build's progress bars
    fresh = tmp_path / "fresh.duckdb"
    for cost in ("nan", "inf", "-1"):
        code, _, err = run(
            monkeypatch, capsys, "models", "add", str(folder), "--cost-per-mtok", cost, "-w", str(fresh)
        )
        assert code == 1 and "--cost-per-mtok must be a finite number >= 0" in err and err.count("\n") == 1
    code, _, err = run(
        monkeypatch, capsys, "import", "lm-eval", str(JSONL), "--model", "", *RULE_ARGS, "-w", str(fresh)
    )
    assert code == 1 and err.startswith("error: --model is empty") and err.count("\n") == 1
    bad = write_dataset(tmp_path / "csv")
    (bad / "train.csv").write_text((bad / "train.csv").read_text().replace(",1,", ",7,", 1))  # a label of 7
    code, _, err = run(monkeypatch, capsys, "import", "embedllm-csv", str(bad), "-w", str(fresh))
    assert code == 1 and err.count("\n") == 1
    assert not fresh.exists(), "a failed command left a database file at a new --warehouse path"
