"""The warm state of `embedllm serve`: the served training run (router, models, explanations) and its hot reload.

A `Served` snapshot (tasks/route.py) is immutable once loaded; every request takes the current one at its start
and uses only that, so swapping in a newer snapshot never fails a request in flight. A watcher thread polls
`served_version` (run id, model vectors, last onboarding, last registry change) every `reload_interval` seconds in a short read-only
session; when it changes it loads the new snapshot, warms its encoder, then swaps. A poll that finds the file
held by a writer, or a load that fails, keeps the old snapshot and is retried at the next poll.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from embedllm.common import utc_now
from embedllm.errors import EmbedLLMError, InputError
from embedllm.routing import RouteChoice, check_cost_weight
from tasks.route import Served, load_served, served_version

log = logging.getLogger("embedllm.serve")


class NoTrainingRun(EmbedLLMError):
    """The warehouse has no completed training run (yet): there is nothing to route with."""


class PromptTooLong(InputError):
    """A prompt (or a batch) is longer than the service accepts."""


@dataclass
class Limits:
    """What one request may ask for."""

    max_prompt_chars: int = 32_000
    max_prompts: int = 1024
    max_top_k: int = 100


class Metrics:
    """The service's Prometheus metrics, in a registry of its own (so two apps in one process do not clash)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "embedllm_requests",
            "HTTP requests by endpoint and status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "embedllm_request_seconds",
            "Request latency by endpoint",
            ["endpoint"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.routed = Counter(
            "embedllm_routed_prompts", "Prompts routed, by chosen model", ["model"], registry=self.registry
        )
        self.reloads = Counter(
            "embedllm_reloads", "Snapshots swapped in (a newer run or onboarding)", registry=self.registry
        )
        self.reload_failures = Counter(
            "embedllm_reload_failures", "Reloads that failed (old run kept)", registry=self.registry
        )
        self.models = Gauge("embedllm_served_models", "Models in the served run", registry=self.registry)


@dataclass
class ServiceState:
    """The service's snapshot, its watcher and its metrics."""

    db: Path
    run_id: str | None = None  # pinned run (None: follow the latest completed run)
    reload_interval: float = 5.0
    limits: Limits = field(default_factory=Limits)
    served: Served | None = None
    loaded_at: str | None = None
    metrics: Metrics = field(default_factory=Metrics)
    _compute: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one encoder call at a time
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _watcher: threading.Thread | None = field(default=None, repr=False)

    # ------------------------------------------------------------------------------------------- loading

    def refresh(self) -> bool:
        """Load and swap in the current snapshot if its version changed; return whether it did."""
        version = served_version(self.db, self.run_id)
        if version is None or (self.served is not None and version == self.served.version):
            return False
        new = load_served(self.db, self.run_id)
        new.router.encode(["warm up the encoder"])  # load the run's embedder before any request needs it
        self.served, self.loaded_at = new, utc_now().isoformat(timespec="seconds") + "Z"
        self.metrics.models.set(len(new.router.names))
        log.info("serving run %s (%d models, %d vectors)", new.router.run_id, len(new.router.names), version[1])
        return True

    def watch(self) -> None:
        """Start the thread that reloads when a newer run or onboarding lands (no-op if reload_interval <= 0)."""
        if self.reload_interval <= 0 or self._watcher is not None:
            return
        self._watcher = threading.Thread(target=self._poll, name="embedllm-reload", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        """Stop the reload thread."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)

    def _poll(self) -> None:
        while not self._stop.wait(self.reload_interval):
            try:
                if self.refresh():
                    self.metrics.reloads.inc()
            except Exception as exc:  # keep serving the old snapshot; the next poll tries again
                self.metrics.reload_failures.inc()
                log.warning("reload skipped: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    def current(self) -> Served:
        """Return the snapshot to answer with; raise NoTrainingRun when there is none yet."""
        served = self.served
        if served is None:
            what = f"training run {self.run_id!r}" if self.run_id else "completed training run"
            raise NoTrainingRun(f"no {what} in {self.db} yet: run `embedllm train` (the service picks it up)")
        return served

    # ------------------------------------------------------------------------------------------- routing

    def check_prompts(self, prompts: list[str]) -> list[str]:
        """Return PROMPTS if each is a non-blank string within the limits; raise InputError naming the first bad one."""
        if not prompts:
            raise InputError("no prompt to route: give `prompt` (a string) or `prompts` (a list of strings)")
        if len(prompts) > self.limits.max_prompts:
            raise PromptTooLong(f"{len(prompts)} prompts in one request: at most {self.limits.max_prompts}")
        for i, text in enumerate(prompts):
            which = "prompt" if len(prompts) == 1 else f"prompts[{i}]"
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"{which} is empty or blank: give the question text to route")
            if len(text) > self.limits.max_prompt_chars:
                raise PromptTooLong(
                    f"{which} has {len(text)} characters: at most {self.limits.max_prompt_chars} "
                    "(embedders read only the first few hundred tokens anyway)"
                )
        return prompts

    def route(
        self,
        prompts: list[str],
        *,
        cost_weight: float = 0.0,
        top_k: int = 3,
        models: list[str] | None = None,
        explain: int = 3,
        served: Served | None = None,
        benchmark: str | None = None,
    ) -> tuple[Served, list[RouteChoice], list[dict]]:
        """Return (snapshot used, one RouteChoice per prompt, one explanation per prompt).

        BENCHMARK names the prompts' benchmark when they come from one the run was trained on (None: unknown).
        """
        served = served or self.current()
        router = served.router
        self.check_prompts(prompts)
        check_cost_weight(cost_weight)
        if top_k > self.limits.max_top_k:
            raise InputError(f"top_k is {top_k}: at most {self.limits.max_top_k}")
        router.allowed(models)  # unknown or inactive names before paying for the encoder
        benchmarks = None if benchmark is None else [benchmark] * len(prompts)
        router.check_benchmarks(benchmarks)
        with self._compute:
            q = router.encode(prompts)
            choices = router.route(q, cost_weight, top_k, models, prompts, benchmarks)
            index = {name: i for i, name in enumerate(router.names)}
            why = served.neighbours.explain(q, [index[c.model] for c in choices], explain) if explain else []
        for c in choices:
            self.metrics.routed.labels(c.model).inc()
        return served, choices, why


def summary(choice: RouteChoice, why: dict) -> str:
    """Return one sentence on why: how the chosen model did on the nearest answered training questions."""
    if not why.get("answered"):
        return f"{choice.model} has the highest utility; it has no answered training question to compare with"
    return (
        f"{choice.model} answered {why['correct']} of the {why['answered']} nearest training questions correctly "
        f"(P(correct) {choice.p_correct:.2f})"
    )
