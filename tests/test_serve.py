"""The routing service: `embedllm serve` started as a real process on a loopback port over a real trained
warehouse (synthetic EmbedLLM-layout data, real all-MiniLM-L6-v2 embeddings, a real training run); requests go
over HTTP with httpx. Hot reload: a second training run lands while requests keep coming."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from serving import KEY, Service

from embedllm.synthetic import make_matrix, write_embedllm_csv


def build_warehouse(root: Path) -> Path:
    """Import 6 synthetic models x 240 questions, embed them with all-MiniLM-L6-v2, train and forecast."""
    from tasks.embed import embed_questions
    from tasks.forecast import forecast
    from tasks.ingest_embedllm_csv import import_embedllm_csv
    from tasks.train import train

    data, db = root / "data", root / "wh.duckdb"
    write_embedllm_csv(make_matrix(n_models=6, n_questions=240, emb_dim=16, seed=11), data)
    import_embedllm_csv(db, data)
    embed_questions(db, "all-MiniLM-L6-v2", progress=False)
    run = train(db, require_validation=False, overrides={"epochs": 5, "dim_grid": []})
    forecast(db, run.run_id, probe=False)
    return db


@pytest.fixture(scope="module")
def trained_db(tmp_path_factory):
    """A trained warehouse (module-wide; tests that write use a copy)."""
    return build_warehouse(tmp_path_factory.mktemp("serve"))


@pytest.fixture(scope="module")
def service(trained_db):
    """`embedllm serve` on the trained warehouse (no reloading: a pinned view of one run)."""
    svc = Service(trained_db, "--reload-interval", "0")
    svc.wait_up()
    yield svc
    svc.stop()


def test_route_answers_the_chosen_model_with_top_k_and_an_explanation(service):
    r = service.client.post("/route", json={"prompt": "What is 12 times 11?", "top_k": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["run_id"] and body["embedder"] == "all-MiniLM-L6-v2"
    assert len(body["top_k"]) == 3 and body["model"] == body["top_k"][0]["model"]
    probs = [c["utility"] for c in body["top_k"]]
    assert probs == sorted(probs, reverse=True) and 0 < body["p_correct"] < 1
    why = body["explanation"]
    assert why["answered"] == 3 and len(why["nearest"]) == 3 and 0 <= why["correct"] <= 3
    sims = [q["similarity"] for q in why["nearest"]]
    assert sims == sorted(sims, reverse=True) and why["summary"].startswith(body["model"])


def test_route_a_batch_and_restrict_to_a_subset(service):
    models = [m["name"] for m in service.client.get("/models").json()["models"]]
    r = service.client.post("/route", json={"prompts": ["a question", "another one"], "models": models[:2]})
    assert r.status_code == 200, r.text
    routes = r.json()["routes"]
    assert len(routes) == 2 and all(x["model"] in models[:2] for x in routes)
    assert all(len(x["top_k"]) == 2 for x in routes)


def test_the_same_choice_as_embedllm_route(service, trained_db):
    from tasks.route import route

    text = "Which gas do plants take in for photosynthesis?"
    (choice,) = route(trained_db, [text])
    r = service.client.post("/route", json={"prompt": text, "explain": 0}).json()
    assert r["model"] == choice.model and r["p_correct"] == pytest.approx(choice.p_correct, abs=1e-5)
    assert "explanation" not in r


def test_a_request_may_name_the_benchmark_of_its_prompts(service, trained_db):
    from tasks.route import route

    benchmarks = service.client.get("/models").json()["route_benchmarks"]
    assert len(benchmarks) >= 2  # the default preset learns a shift per training benchmark
    text = "Which gas do plants take in for photosynthesis?"
    for name in benchmarks:
        (choice,) = route(trained_db, [text], benchmarks=[name])
        r = service.client.post("/route", json={"prompt": text, "benchmark": name, "explain": 0}).json()
        assert r["model"] == choice.model and r["p_correct"] == pytest.approx(choice.p_correct, abs=1e-5)
    named = {
        service.client.post("/route", json={"prompt": text, "benchmark": b}).json()["p_correct"]
        for b in benchmarks
    }
    assert len(named) == len(benchmarks)  # each benchmark moves the forecast
    r = service.client.post("/route", json={"prompt": text, "benchmark": benchmarks[0] + "x"})
    assert r.status_code == 400 and f"did you mean '{benchmarks[0]}'" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "body,status,words",
    [
        ({"prompt": ""}, 400, "prompt is empty"),
        ({"prompt": "   "}, 400, "prompt is empty"),
        ({"prompts": ["ok", ""]}, 400, "prompts[1] is empty"),
        ({"prompts": []}, 400, "no prompt to route"),
        ({}, 400, "give either `prompt`"),
        ({"prompt": "a", "prompts": ["b"]}, 400, "not both"),
        ({"prompt": "x" * 40_000}, 413, "at most 32000"),
        ({"prompt": "a", "models": ["no-such-model"]}, 404, "unknown model 'no-such-model'"),
        ({"prompt": "a", "cost_weight": -1}, 400, "cost_weight"),
        ({"prompt": "a", "top_k": 0}, 400, "top_k"),
        ({"prompt": "a", "top_k": 1000}, 400, "top_k is 1000"),
        ({"prompt": "a", "colour": "red"}, 400, "colour"),
        ({"prompt": 12}, 400, "prompt"),
    ],
)
def test_bad_route_requests_get_a_4xx_json_error(service, body, status, words):
    r = service.client.post("/route", json=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"]


def test_malformed_json_unknown_paths_and_wrong_methods_are_json_4xx(service):
    r = service.client.post(
        "/route", content=b'{"prompt": "unterminated', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = service.client.post("/v1/chat/completions", content=b"[1,", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    assert service.client.get("/nowhere").status_code == 404
    assert service.client.get("/route").status_code == 405 and "error" in service.client.get("/route").json()
    assert service.client.get("/health").json()["status"] == "ok"  # the worker is still alive


def test_proxy_refuses_models_without_an_endpoint_with_4xx(service):
    chat = {"model": "router", "messages": [{"role": "user", "content": "hi"}]}
    r = service.client.post("/v1/chat/completions", json=chat)
    assert r.status_code == 400 and "no model of the served run has an endpoint" in r.json()["error"]["message"]
    name = service.client.get("/models").json()["models"][0]["name"]
    r = service.client.post("/v1/chat/completions", json={**chat, "model": name})
    assert r.status_code == 400 and "has no endpoint" in r.json()["error"]["message"]
    r = service.client.post("/v1/chat/completions", json={**chat, "model": "gpt-7"})
    assert r.status_code == 404 and "unknown model 'gpt-7'" in r.json()["error"]["message"]
    r = service.client.post("/v1/completions", json={"model": "router", "prompt": ["a", "b"]})
    assert r.status_code == 400


def test_models_lists_costs_and_benchmark_forecasts(service):
    body = service.client.get("/models").json()
    assert len(body["models"]) == 6
    first = body["models"][0]
    assert first["active"] is True and first["benchmarks"]
    b = first["benchmarks"][0]
    assert 0 <= b["predicted_accuracy"] <= 1 and {"benchmark", "observed_accuracy", "n_observed"} <= set(b)


def test_metrics_are_prometheus_text_with_request_counts(service):
    service.client.post("/route", json={"prompt": "count me"})
    text = service.client.get("/metrics").text
    assert 'embedllm_requests_total{endpoint="/route",status="200"}' in text
    assert "embedllm_request_seconds_bucket" in text and "embedllm_reloads_total" in text


def test_an_api_key_is_required_on_every_request_when_set(trained_db):
    svc = Service(
        trained_db, "--api-key-env", "SERVE_TEST_KEY", "--reload-interval", "0", env={"SERVE_TEST_KEY": KEY}
    )
    try:
        svc.wait_up()
        assert svc.client.post("/route", json={"prompt": "hi"}).status_code == 401
        bad = svc.client.get("/health", headers={"authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"]["type"] == "authentication_error"
        ok = svc.client.post("/route", json={"prompt": "hi"}, headers={"authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
    finally:
        svc.stop()


def test_serve_refuses_an_unset_key_variable_and_an_unknown_run(trained_db):
    env = {k: v for k, v in os.environ.items() if k != "SERVE_UNSET_KEY"}
    base = [sys.executable, "-c", "from embedllm.cli import main; main()", "serve", "--warehouse", str(trained_db)]
    out = subprocess.run([*base, "--api-key-env", "SERVE_UNSET_KEY"], env=env, capture_output=True, text=True)
    assert out.returncode == 1 and "$SERVE_UNSET_KEY is not set" in out.stderr
    out = subprocess.run([*base, "--run", "nope"], capture_output=True, text=True)
    assert out.returncode == 1 and "--run nope: no such training run" in out.stderr


def test_no_training_run_yet_is_409_then_the_first_run_is_picked_up(tmp_path, trained_db):
    import warehouse

    empty = tmp_path / "empty.duckdb"
    warehouse.connect(empty).close()
    svc = Service(empty, "--reload-interval", "0.5")
    try:
        svc.wait_up()
        assert svc.client.get("/health").json()["status"] == "waiting"
        r = svc.client.post("/route", json={"prompt": "hi"})
        assert r.status_code == 409 and r.json()["error"]["type"] == "no_training_run"
    finally:
        svc.stop()


def test_hot_reload_swaps_to_a_newer_run_without_a_failed_request(trained_db, tmp_path):
    from tasks.forecast import forecast
    from tasks.train import train

    db = tmp_path / "wh.duckdb"
    shutil.copy(trained_db, db)
    svc = Service(db, "--reload-interval", "0.3")
    try:
        svc.wait_up()
        first = svc.client.get("/health").json()["run_id"]
        statuses, stop = [], threading.Event()

        def hammer():
            with httpx.Client(base_url=svc.url, timeout=30) as c:
                while not stop.is_set():
                    statuses.append(c.post("/route", json={"prompt": "keep asking"}).status_code)

        t = threading.Thread(target=hammer)
        t.start()
        try:
            second = train(
                db, require_validation=False, force=True, overrides={"epochs": 3, "dim_grid": []}
            ).run_id
            forecast(db, second, probe=False)  # the run counts as completed once its forecasts are in
            end = time.monotonic() + 60
            while svc.client.get("/health").json()["run_id"] != second and time.monotonic() < end:
                time.sleep(0.2)
        finally:
            stop.set()
            t.join()
        assert svc.client.get("/health").json()["run_id"] == second != first
        assert statuses and set(statuses) == {200}, f"{len(statuses)} requests: {sorted(set(statuses))}"
        assert "embedllm_reloads_total 1.0" in svc.client.get("/metrics").text
    finally:
        svc.stop()


def test_a_form_body_is_told_to_send_json(service):
    r = service.client.post("/route", data={"prompt": "hi"})
    assert r.status_code == 400 and "must be a JSON object" in r.json()["error"]["message"]


def test_a_registry_change_is_picked_up_without_a_restart(trained_db, tmp_path):
    db = tmp_path / "wh.duckdb"
    shutil.copy(trained_db, db)
    svc = Service(db, "--reload-interval", "0.3")
    try:
        svc.wait_up()
        name = svc.client.get("/models").json()["models"][0]["name"]
        cli = [sys.executable, "-c", "from embedllm.cli import main; main()", "models", "remove", name]
        out = subprocess.run([*cli, "--warehouse", str(db)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        end, active = time.monotonic() + 30, True
        while active and time.monotonic() < end:
            time.sleep(0.2)
            active = svc.client.get("/models").json()["models"][0]["active"]
        assert active is False  # and it is no longer chosen:
        r = svc.client.post("/route", json={"prompts": ["a", "b", "c"], "top_k": 100})
        assert all(name not in [c["model"] for c in x["top_k"]] for x in r.json()["routes"])
    finally:
        svc.stop()
