"""API models end to end, never downloaded: two tiny random LMs served by real `transformers serve` processes on
loopback ports are registered with `embedllm models add --base-url`, evaluated through lm-eval's
local-completions backend on a few demo questions, embedded and trained on; then `embedllm serve` routes chat
and completion requests to them and forwards each, streamed or not, to the chosen endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from serving import Service, free_port

from embedllm.tiny_lm import build_tiny_lm

CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
N_QUESTIONS = 16


def embedllm(db: Path, *args: str) -> str:
    """Run the `embedllm` CLI on DB; return stdout (fail with its stderr)."""
    out = subprocess.run(
        [sys.executable, "-c", "from embedllm.cli import main; main()", *args, "--warehouse", str(db)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"embedllm {' '.join(args)}: {out.stderr[-3000:]}"
    return out.stdout


class Upstream:
    """A `transformers serve` process serving one local model folder on a loopback port."""

    def __init__(self, folder: Path):
        self.folder, self.port = folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self.log = open(folder.parent / f"{folder.name}.serve.log", "w")
        cli = Path(sys.executable).with_name("transformers")
        self.proc = subprocess.Popen(
            [str(cli), "serve", str(folder), "--host", "127.0.0.1", "--port", str(self.port), "--device", "cpu"],
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_up(self, timeout: float = 240) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, Path(self.log.name).read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/models", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.5)
        raise AssertionError(f"transformers serve on {self.port} did not come up")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory):
    """Two tiny LMs (different seeds, a plain chat template) each behind its own `transformers serve`."""
    root = tmp_path_factory.mktemp("upstreams")
    servers = []
    for seed in (1, 2):
        folder = build_tiny_lm(root / f"tiny{seed}", seed=seed)
        config = json.loads((folder / "tokenizer_config.json").read_text())
        (folder / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": CHAT_TEMPLATE}))
        servers.append(Upstream(folder))
    try:
        for s in servers:
            s.wait_up()
        yield servers
    finally:
        for s in servers:
            s.stop()


def echo_task(folder: Path, upstreams: list[Upstream]) -> Path:
    """Write a one-token generative task whose answer to question i is what upstream i % 2 says greedily.

    Random tiny LMs never get real questions right; taking the targets from their own greedy first token gives
    each endpoint a known half of the questions it answers correctly, so training sees both labels.
    """
    rows = []
    for i in range(N_QUESTIONS):
        prompt = f"Question: item {i} of the echo list, word {i * 7 % 13}\nAnswer:"
        up = upstreams[i % 2]
        reply = httpx.post(
            f"{up.url}/completions",
            json={"model": str(up.folder), "prompt": prompt, "max_tokens": 1, "temperature": 0},
            timeout=60,
        ).json()
        rows.append(
            {
                "question": prompt.removeprefix("Question: ").removesuffix("\nAnswer:"),
                "answer": reply["choices"][0]["text"],
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "echo.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "echo.yaml").write_text(
        "task: echo\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {folder / 'echo.jsonl'}\ntest_split: test\noutput_type: generate_until\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_target: "{{answer}}"\n'
        "generation_kwargs:\n  until: []\n  do_sample: false\n  temperature: 0.0\n  max_gen_toks: 1\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        '    regexes_to_ignore: [" "]\nmetadata:\n  version: 1.0\n'
    )
    suite = folder / "suite.yaml"
    suite.write_text(
        f"name: echo\ninclude_path: {folder}\nnum_fewshot: 0\ntasks:\n"
        "  - task: echo\n    benchmark: echo\n    label_rule: exact_match\n"
    )
    return suite


@pytest.fixture(scope="module")
def api_warehouse(upstreams, tmp_path_factory):
    """Both endpoints registered, evaluated through lm-eval's API backend, embedded, trained and forecast."""
    root = tmp_path_factory.mktemp("api")
    db = root / "wh.duckdb"
    suite = echo_task(root / "echo", upstreams)
    for i, up in enumerate(upstreams):
        embedllm(db, "models", "add", f"api-{i}", "--base-url", up.url, "--model-args", f"model={up.folder}")
    embedllm(db, "evaluate", "--suite", str(suite))
    embedllm(db, "embed")
    embedllm(db, "train", "--skip-validation")
    return db


def test_api_models_are_evaluated_through_their_endpoints(api_warehouse):
    import warehouse

    con = warehouse.connect(api_warehouse, read_only=True)
    try:
        rows = con.execute(
            "SELECT m.name, m.backend, count(*) FROM correctness c JOIN models m USING (model_id) GROUP BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert sorted(rows) == [
        ("api-0", "local-completions", N_QUESTIONS),
        ("api-1", "local-completions", N_QUESTIONS),
    ]


@pytest.fixture(scope="module")
def router(api_warehouse):
    svc = Service(api_warehouse, "--reload-interval", "0")
    svc.wait_up()
    yield svc
    svc.stop()


def test_chat_requests_are_routed_and_forwarded_to_the_chosen_endpoint(router, upstreams):
    chat = {"model": "router", "messages": [{"role": "user", "content": "What is 7 plus 5?"}], "max_tokens": 4}
    r = router.client.post("/v1/chat/completions", json=chat)
    assert r.status_code == 200, r.text
    chosen = r.headers["x-embedllm-model"]
    assert chosen in ("api-0", "api-1") and 0 < float(r.headers["x-embedllm-p-correct"]) < 1
    body = r.json()
    assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
    assert body["model"] == str(upstreams[int(chosen[-1])].folder)  # the upstream answered under its own name
    expected = router.client.post("/route", json={"prompt": "What is 7 plus 5?", "models": ["api-0", "api-1"]})
    assert expected.json()["model"] == chosen


def test_completions_stream_through_the_proxy(router):
    req = {"model": "router", "prompt": "Question: 3+4?\nAnswer:", "max_tokens": 3, "stream": True}
    with router.client.stream("POST", "/v1/completions", json=req) as r:
        assert r.status_code == 200 and r.headers["x-embedllm-model"] in ("api-0", "api-1")
        events = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert len(events) >= 2 and json.loads(events[0][6:])["object"] == "text_completion"


def test_a_named_subset_or_model_goes_only_there(router):
    chat = {"messages": [{"role": "user", "content": "hello"}], "max_tokens": 2}
    r = router.client.post("/v1/chat/completions", json={**chat, "model": "router:api-1"})
    assert r.status_code == 200 and r.headers["x-embedllm-model"] == "api-1"
    r = router.client.post("/v1/chat/completions", json={**chat, "model": "api-0"})
    assert r.status_code == 200 and r.headers["x-embedllm-model"] == "api-0"
    assert "x-embedllm-p-correct" not in r.headers  # named directly: forwarded without routing


def test_an_api_model_is_onboarded_and_routed_to_without_a_download(api_warehouse, upstreams):
    import warehouse

    up = upstreams[0]  # a third registry entry, served by the first endpoint
    embedllm(api_warehouse, "models", "add", "api-2", "--base-url", up.url, "--model-args", f"model={up.folder}")
    suite = api_warehouse.parent / "echo" / "suite.yaml"
    embedllm(api_warehouse, "onboard", "api-2", "--suite", str(suite), "--questions", "6", "--quiet")
    con = warehouse.connect(api_warehouse, read_only=True)
    try:
        (n,) = con.execute(
            "SELECT n_questions FROM onboarded_models JOIN models USING (model_id) WHERE name = 'api-2'"
        ).fetchone()
    finally:
        con.close()
    assert n == 6
    svc = Service(api_warehouse, "--reload-interval", "0")
    try:
        svc.wait_up()
        models = {m["name"]: m for m in svc.client.get("/models").json()["models"]}
        assert models["api-2"]["vector"] == "onboarded" and models["api-2"]["benchmarks"]
        chat = {"model": "router:api-2", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        r = svc.client.post("/v1/chat/completions", json=chat)
        assert r.status_code == 200 and r.headers["x-embedllm-model"] == "api-2"
    finally:
        svc.stop()


def test_an_upstream_that_is_down_gives_502_json(router, upstreams, api_warehouse):
    port = free_port()  # nothing listens here
    embedllm(api_warehouse, "models", "add", "api-0", "--base-url", f"http://127.0.0.1:{port}/v1")
    svc = Service(api_warehouse, "--reload-interval", "0")
    try:
        svc.wait_up()
        chat = {"model": "api-0", "messages": [{"role": "user", "content": "hi"}]}
        r = svc.client.post("/v1/chat/completions", json=chat)
        assert r.status_code == 502 and r.json()["error"]["type"] == "upstream_error"
    finally:
        svc.stop()
