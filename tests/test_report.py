"""The report: built from a small real warehouse (real loader, real training), checked in headless Chromium."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import warehouse
from embedllm.ids import question_id
from embedllm.report import costs_and_rule, family_of, nearest_neighbours
from embedllm.routing import routing_curve
from embedllm.synthetic import make_matrix
from tasks.load import Batch, Meta, load_batches
from tasks.report import NoTrainingRun, build_report

EMBEDDER = "all-MiniLM-L6-v2"  # synthetic 384-d vectors stored under the demo embedder's name
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMAGES = {
    "embedding_map.png",
    "accuracy_heatmap.png",
    "forecast_vs_observed.png",
    "calibration.png",
    "routing.png",
}


# ------------------------------------------------------------------------------------------ real warehouses


def load_synthetic(con, n_models: int, n_questions: int, *, seed: int = 0, one_benchmark: bool = False) -> None:
    """Load a synthetic matrix through the real loader and store its question embeddings."""
    sm = make_matrix(n_models, n_questions, emb_dim=384, seed=seed)
    bench = np.full(n_questions, "only") if one_benchmark else sm.benchmark
    qids = [question_id(f"synthetic_{b}", f"doc{j}") for j, b in enumerate(bench)]
    batches = []
    for i, name in enumerate(sm.model_names):
        rows = pl.DataFrame(
            {
                "question_id": qids,
                "benchmark": bench.tolist(),
                "task": [f"synthetic_{b}" for b in bench],
                "prompt": [f"synthetic question {j}" for j in range(n_questions)],
                "label": sm.labels[i],
            }
        )
        batches.append(
            Batch(
                Meta(kind="embedllm-csv", content_hash=f"report-test-{seed}-{i}", model=name, task="synthetic"),
                rows,
            )
        )
    load_batches(con, batches)
    warehouse.upsert(
        con,
        "question_embeddings",
        pl.DataFrame(
            {
                "question_id": qids,
                "embedder": EMBEDDER,
                "embedding": pl.Series([v for v in sm.embeddings], dtype=pl.List(pl.Float32)),
            }
        ),
    )


def train_for_report(db: Path) -> str:
    """Run the real train and forecast stages (small, fast) on the warehouse at db; return the run id."""
    from tasks.forecast import forecast
    from tasks.train import train

    result = train(db, preset="default", embedder=EMBEDDER, require_validation=False)
    forecast(db, result.run_id)
    return result.run_id


@pytest.fixture(scope="module")
def trained_warehouse(tmp_path_factory) -> Path:
    """A warehouse with 16 synthetic models x 600 questions, families, some costs, and one real training run."""
    path = tmp_path_factory.mktemp("report") / "wh.duckdb"
    with warehouse.session(path) as con:
        load_synthetic(con, 16, 600, seed=3)
        names = [r[0] for r in con.execute("SELECT name FROM models ORDER BY name").fetchall()]
        for i, name in enumerate(names):  # family from the name; every third model has no cost
            con.execute(
                "UPDATE models SET family = ?, cost_per_mtok = ? WHERE name = ?",
                [name.split("/")[1].split("-")[0], None if i % 3 == 0 else 0.2 + 0.4 * i, name],
            )
    train_for_report(path)  # checkpoints land beside this warehouse
    return path


@pytest.fixture(scope="module")
def report_index(trained_warehouse, tmp_path_factory) -> Path:
    """The report built from the trained warehouse."""
    return build_report(trained_warehouse, out_dir=tmp_path_factory.mktemp("report_out"))


# ------------------------------------------------------------------------------------------------- report


def test_report_writes_page_with_every_plot(report_index):
    page = report_index.read_text()
    assert report_index.name == "index.html"
    for image in IMAGES:
        assert (report_index.parent / image).stat().st_size > 5_000
        assert f'src="{image}"' in page
    assert page.count('class="caption"') >= 6
    assert "Nearest neighbours" in page and "<td><b>synthetic/" in page
    assert "without a registered cost count as free" in page  # the missing-cost rule is stated


def test_report_on_degenerate_warehouse_notes_instead_of_failing(con, warehouse_path, tmp_path):
    load_synthetic(con, 2, 150, seed=5, one_benchmark=True)  # two models, one benchmark, no costs, no tags
    train_for_report(warehouse_path)
    con.close()  # the report reads on a read-only session
    page = build_report(warehouse_path, out_dir=tmp_path / "out").read_text()
    assert "t-SNE needs at least 4 models" in page
    assert "Only one benchmark" in page
    assert "No model has a cost_per_mtok" in page
    assert (tmp_path / "out" / "embedding_map.png").exists()


def test_report_without_training_run_says_train_first(con, warehouse_path, tmp_path):
    load_synthetic(con, 3, 50)
    con.close()
    with pytest.raises(
        NoTrainingRun, match=f"no completed training run in {warehouse_path}: run `embedllm train`"
    ):
        build_report(warehouse_path, out_dir=tmp_path)


def test_report_unknown_run_lists_recent_runs(trained_warehouse, tmp_path):
    with pytest.raises(NoTrainingRun, match="no training run 'nope'.*recent runs: "):
        build_report(trained_warehouse, out_dir=tmp_path, run_id="nope")


def test_cli_report_prints_index_path_in_default_folder(trained_warehouse):
    out = subprocess.run(
        ["embedllm", "report", "-w", str(trained_warehouse)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    with warehouse.session(trained_warehouse, read_only=True) as con:
        run_id = con.execute("SELECT run_id FROM latest_training_run").fetchall()[0][0]
    index = trained_warehouse.parent / "wh_reports" / run_id / "index.html"
    assert out.stdout.strip() == str(index)
    assert index.exists() and (index.parent / "routing.png").exists()


def test_cli_report_without_run_is_one_line_error(tmp_path):
    with warehouse.session(tmp_path / "empty.duckdb"):
        pass
    out = subprocess.run(
        ["embedllm", "report", "-w", str(tmp_path / "empty.duckdb")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        f"error: no completed training run in {tmp_path / 'empty.duckdb'}: run `embedllm train` first"
    ]


# ------------------------------------------------------------------------------------ hand-computed pieces


def test_family_falls_back_to_tag_then_name_prefix():
    assert family_of("org/model-7b", "llama", ["chat"]) == "llama"
    assert family_of("org/model-7b", None, ["chat", "x"]) == "chat"
    assert family_of("org/model-7b", None, []) == "org"
    assert family_of("plain-name", None, None) == "other"


def test_missing_costs_count_as_free_like_the_router():
    cost, rule = costs_and_rule([1.0, None, 4.0, 2.0])
    assert cost.tolist() == [0.25, 0.0, 1.0, 0.5]
    assert "1 model(s) without a registered cost count as free" in rule
    none, rule = costs_and_rule([None, None])
    assert none.tolist() == [0.0, 0.0] and "no effect" in rule


def test_routing_curve_matches_hand_computed_case():
    # 2 models x 3 questions. Model 0 is expensive and strong, model 1 cheap; model 1 was not asked question 2.
    p = np.array([[0.9, 0.8, 0.7], [0.6, 0.9, 0.0]])
    y = np.array([[1, 0, 1], [0, 1, 0]])
    mask = np.array([[True, True, True], [True, True, False]])
    cost = np.array([1.0, 0.0])
    curve = routing_curve(p, y, mask, cost, weights=np.array([0.0, 0.5]))
    # w=0: picks 0, 1, 0 -> all correct; cost (1+0+1)/3. w=0.5: utilities 0.4/0.6, 0.3/0.9, 0.2/- -> 1, 1, 0
    assert curve.accuracy.tolist() == pytest.approx([1.0, 2 / 3])
    assert curve.cost.tolist() == pytest.approx([2 / 3, 1 / 3])
    assert curve.single_best_model == 0 and curve.single_best_accuracy == pytest.approx(2 / 3)
    # oracle: q0 only model 0 is right (cost 1), q1 only model 1 (cost 0), q2 only model 0 (cost 1)
    assert curve.oracle_accuracy == 1.0 and curve.oracle_cost == pytest.approx(2 / 3)


def test_nearest_neighbours_by_cosine():
    emb = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0]])
    order, sims = nearest_neighbours(emb, k=5)
    assert order.tolist() == [[1, 2], [0, 2], [1, 0]]
    assert sims[0, 0] == pytest.approx(2 / np.hypot(2, 0.1))


# ------------------------------------------------------------------------------------------------ browser


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve DIRECTORY on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static file handler that does not log every request to stderr."""

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


class Browser:
    """Headless Chromium driven over the DevTools protocol (websocket), one page."""

    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="embedllm-chromium-")
        self.proc = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.ws = self._connect()
        self._id = 0

    def _connect(self):
        """Return a websocket to the page target once Chromium has written its DevTools port."""
        from websockets.sync.client import connect

        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"chromium exited with code {self.proc.returncode}")
            if port_file.exists() and port_file.read_text().strip():
                port = port_file.read_text().split()[0]
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as resp:
                        pages = [t for t in json.load(resp) if t["type"] == "page"]
                except OSError:
                    pages = []
                if pages:
                    return connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
            time.sleep(0.2)
        raise RuntimeError("chromium did not open its DevTools port within 60 s")

    def send(self, method: str, params: dict | None = None) -> int:
        """Send one DevTools command; return its id."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        return self._id

    def open(self, url: str, timeout: float = 60) -> tuple[dict, list[str]]:
        """Load URL; return (image states from the page, console/log/exception errors seen while loading)."""
        errors: list[str] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Page.navigate", {"url": url})
        self._pump(errors, until=lambda m: m.get("method") == "Page.loadEventFired", timeout=timeout)
        self._pump(errors, until=lambda m: False, timeout=1.0)  # late console messages
        probe = (
            "JSON.stringify(Array.from(document.images).map(i => ({src: i.getAttribute('src'), "
            "complete: i.complete, width: i.naturalWidth})))"
        )
        call = self.send("Runtime.evaluate", {"expression": probe, "returnByValue": True})
        reply = self._pump(errors, until=lambda m: m.get("id") == call, timeout=timeout)
        return json.loads(reply["result"]["result"]["value"]), errors

    def _pump(self, errors: list[str], until, timeout: float) -> dict | None:
        """Read messages, recording errors, until one satisfies UNTIL (returned) or TIMEOUT passes (None)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                break
            method, params = msg.get("method"), msg.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(
                    "console: " + " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                errors.append("exception: " + params["exceptionDetails"].get("text", ""))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(f"log: {params['entry']['text']} {params['entry'].get('url', '')}")
            if until(msg):
                return msg
        return None

    def close(self) -> None:
        """Close the websocket, stop Chromium and remove its profile."""
        with contextlib.suppress(Exception):
            self.ws.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A headless Chromium for this module (skipped when Debian's chromium is not installed)."""
    if CHROMIUM is None:
        pytest.skip(
            "chromium is not installed (CI installs it: apt-get install -y --no-install-recommends chromium)"
        )
    b = Browser(CHROMIUM)
    yield b
    b.close()


def test_report_page_loads_every_image_without_console_errors(report_index, browser):
    with serve(report_index.parent) as base:
        images, errors = browser.open(base + "index.html")
    assert {i["src"] for i in images} == IMAGES
    assert all(i["complete"] and i["width"] > 0 for i in images), images
    assert errors == []


def test_browser_check_catches_broken_image_and_console_error(browser, tmp_path):
    (tmp_path / "index.html").write_text(
        "<!DOCTYPE html><html><head><link rel='icon' href='data:,'></head><body>"
        "<img src='missing.png'><script>console.error('planted error')</script></body></html>"
    )
    with serve(tmp_path) as base:
        images, errors = browser.open(base + "index.html")
    assert images == [{"src": "missing.png", "complete": True, "width": 0}]
    assert any("planted error" in e for e in errors)
    assert any("404" in e or "missing.png" in e for e in errors)
