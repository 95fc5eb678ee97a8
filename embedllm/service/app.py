"""`embedllm serve`'s HTTP app: POST /route, GET /models, /health, /metrics, and the OpenAI-compatible
POST /v1/chat/completions and /v1/completions that route, then forward to the chosen model's endpoint.

Every error is a JSON body {"error": {"message", "type"}} with a 4xx status (502/504 when an upstream fails);
when an API key is configured every request needs `Authorization: Bearer <key>`.
"""

from __future__ import annotations

import hmac
import logging
import time
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from embedllm.errors import EmbedLLMError, InputError, UnknownModel
from embedllm.model import EmbedderMismatch
from embedllm.service.proxy import ROUTER_MODEL, UpstreamError, candidates, endpoints, last_user_text
from embedllm.service.state import NoTrainingRun, PromptTooLong, ServiceState, summary

log = logging.getLogger("embedllm.serve")
ENDPOINTS = {"/route", "/models", "/health", "/metrics", "/v1/chat/completions", "/v1/completions", "/v1/models"}
UPSTREAM_TIMEOUT = httpx.Timeout(300.0, connect=5.0)


class RouteRequest(BaseModel):
    """POST /route: one prompt or a list, with the routing options of `embedllm route`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, description="one question to route")
    prompts: list[str] | None = Field(None, description="several questions to route in one call")
    cost_weight: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 0.0
    top_k: Annotated[int, Field(ge=1)] = 3
    models: list[str] | None = Field(None, description="route only among these models")
    explain: Annotated[int, Field(ge=0, le=20)] = 3  # nearest answered training questions to show (0: none)
    benchmark: str | None = Field(
        None, description="the prompts' benchmark, one of GET /models' route_benchmarks (default: unknown)"
    )


def error(
    status: int, message: str, kind: str = "invalid_request_error", headers: dict | None = None
) -> JSONResponse:
    """Return the JSON error response every failure gets."""
    return JSONResponse({"error": {"message": message, "type": kind}}, status_code=status, headers=headers)


def status_of(exc: EmbedLLMError) -> tuple[int, str]:
    """Return (HTTP status, error type) for a refused request."""
    if isinstance(exc, NoTrainingRun):
        return 409, "no_training_run"
    if isinstance(exc, PromptTooLong):
        return 413, "prompt_too_long"
    if isinstance(exc, EmbedderMismatch):
        return 409, "embedder_mismatch"
    if isinstance(exc, UnknownModel):
        return 404, "model_not_found"
    return 400, "invalid_request_error"


def validation_message(exc: RequestValidationError) -> str:
    """Return one line for the first problem pydantic found in a request body."""
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})"
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    if not where:
        return (
            'the body must be a JSON object such as {"prompt": "..."} (sent with Content-Type: application/json)'
        )
    return f"{where}: {first.get('msg', 'invalid')}"


def route_payload(choice, why: dict | None) -> dict:
    """Return one prompt's answer: the chosen model, the top-k with P(correct), utility and cost, the why."""
    top = [
        {"model": c.model, "p_correct": c.p_correct, "utility": c.utility, "cost_per_mtok": c.cost_per_mtok}
        for c in choice.ranked
    ]
    out = {"prompt": choice.question, "model": choice.model, "p_correct": choice.p_correct, "top_k": top}
    if why is not None:
        out["explanation"] = {"summary": summary(choice, why), **why}
    return out


class AuthAndMetrics:
    """ASGI middleware: refuse requests without the bearer key (when one is set); count and time every request."""

    def __init__(self, app, state: ServiceState, api_key: str | None):
        self.app, self.state, self.expected = app, state, f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0, status = time.perf_counter(), [500]
        endpoint = scope["path"] if scope["path"] in ENDPOINTS else "other"

        async def send_status(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            given = dict(scope["headers"]).get(b"authorization", b"")
            if self.expected and not hmac.compare_digest(given, self.expected):
                refusal = error(
                    401,
                    "missing or wrong API key: send `Authorization: Bearer <key>`",
                    "authentication_error",
                    {"WWW-Authenticate": "Bearer"},
                )
                await refusal(scope, receive, send_status)
            else:
                await self.app(scope, receive, send_status)
        finally:
            self.state.metrics.requests.labels(endpoint, str(status[0])).inc()
            self.state.metrics.latency.labels(endpoint).observe(time.perf_counter() - t0)


def create_app(state: ServiceState, api_key: str | None = None) -> FastAPI:
    """Return the FastAPI app serving STATE (its watcher runs while the app does)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.client = httpx.AsyncClient(timeout=UPSTREAM_TIMEOUT)
        state.watch()
        try:
            yield
        finally:
            state.stop()
            await app.state.client.aclose()

    app = FastAPI(title="EmbedLLM router", lifespan=lifespan, docs_url="/docs", redoc_url=None)

    app.add_middleware(AuthAndMetrics, state=state, api_key=api_key)

    @app.exception_handler(RequestValidationError)
    async def bad_body(request: Request, exc: RequestValidationError):
        return error(400, validation_message(exc))

    @app.exception_handler(EmbedLLMError)
    async def refused(request: Request, exc: EmbedLLMError):
        status, kind = status_of(exc)
        return error(status, str(exc).splitlines()[0], kind)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        message = "no such endpoint: see GET /docs" if exc.status_code == 404 else str(exc.detail)
        return error(exc.status_code, message, "not_found" if exc.status_code == 404 else "invalid_request_error")

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception):  # a bug: say so in JSON, keep the worker alive
        log.exception("unexpected error on %s", request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the service log", "internal_error")

    @app.post("/route")
    def route(body: RouteRequest) -> dict:
        """Route one prompt (or a list) to the model most likely to answer it; explain with nearby questions."""
        if (body.prompt is None) == (body.prompts is None):
            raise InputError("give either `prompt` (a string) or `prompts` (a list of strings), not both")
        prompts = [body.prompt] if body.prompt is not None else body.prompts
        served, choices, why = state.route(
            prompts,
            cost_weight=body.cost_weight,
            top_k=body.top_k,
            models=body.models,
            explain=body.explain,
            benchmark=body.benchmark,
        )
        routes = [route_payload(c, why[i] if why else None) for i, c in enumerate(choices)]
        head = {"run_id": served.router.run_id, "embedder": served.router.embedder}
        return {**head, **routes[0]} if body.prompt is not None else {**head, "routes": routes}

    @app.get("/models")
    def models() -> dict:
        """Return the served run's models: registry fields, cost, endpoint, per-benchmark forecast accuracy."""
        served = state.current()
        rows = [
            {
                "name": m["name"],
                "model_id": m["model_id"],
                "active": m["active"],
                "revision": m["revision"],
                "backend": m["backend"],
                "endpoint": m["base_url"],
                "cost_per_mtok": m["cost_per_mtok"],
                "tags": m["tags"] or [],
                "source": m["source"],
                "vector": m["vector_source"],
                "benchmarks": m["benchmarks"] or [],
            }
            for m in served.models
        ]
        return {
            "run_id": served.router.run_id,
            "embedder": served.router.embedder,
            "route_benchmarks": served.router.benchmarks,  # what a /route request may name as `benchmark`
            "models": rows,
        }

    @app.get("/v1/models")
    def openai_models() -> dict:
        """Return the names the proxy accepts as `model`, in the OpenAI list shape."""
        served = state.current()
        names = [ROUTER_MODEL, *endpoints(served.models)]
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "embedllm"} for n in names]}

    @app.get("/health")
    def health() -> dict:
        """Return whether a run is served, which one, and since when."""
        served = state.served
        if served is None:
            return {"status": "waiting", "run_id": None, "detail": "no completed training run yet"}
        return {
            "status": "ok",
            "run_id": served.router.run_id,
            "embedder": served.router.embedder,
            "models": len(served.router.names),
            "loaded_at": state.loaded_at,
        }

    @app.get("/metrics")
    def metrics() -> Response:
        """Return request counts, latencies and reloads in Prometheus text format."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def proxy(request: Request, route: str) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return error(400, f"the body is not valid JSON ({exc})")
        if not isinstance(body, dict):
            return error(400, "the body must be a JSON object")
        served = state.current()
        served_endpoints = endpoints(served.models)
        names, do_route = candidates(body.get("model"), served.router.names, served_endpoints)
        headers = {"x-embedllm-run-id": served.router.run_id}
        if do_route:
            text = last_user_text(body, route)
            _, (choice,), _ = await run_in_threadpool(state.route, [text], models=names, explain=0, served=served)
            name = choice.model
            headers |= {"x-embedllm-model": name, "x-embedllm-p-correct": f"{choice.p_correct:.4f}"}
        else:
            name = names[0]
            headers["x-embedllm-model"] = name
        target = served_endpoints[name]
        try:
            upstream = request.app.state.client.build_request(
                "POST",
                target.url(route),
                content=orjson.dumps({**body, "model": target.served_name}),
                headers=target.headers(),
            )
            reply = await request.app.state.client.send(upstream, stream=bool(body.get("stream")))
        except UpstreamError as exc:
            return error(502, str(exc), "upstream_error", headers)
        except httpx.TimeoutException:
            return error(504, f"model {name} at {target.base_url} timed out", "upstream_error", headers)
        except httpx.HTTPError as exc:
            return error(
                502, f"model {name} at {target.base_url} did not answer ({exc})", "upstream_error", headers
            )
        media = reply.headers.get("content-type", "application/json")
        if reply.status_code >= 500:  # the upstream failed: say which, as JSON, with what it answered
            text = (await reply.aread()).decode("utf-8", "replace").strip()[:300]
            await reply.aclose()
            return error(
                502,
                f"model {name} at {target.base_url} answered {reply.status_code}: {text}",
                "upstream_error",
                headers,
            )
        if body.get("stream"):
            return StreamingResponse(
                reply.aiter_raw(),
                status_code=reply.status_code,
                media_type=media,
                headers=headers,
                background=BackgroundTask(reply.aclose),
            )
        return Response(reply.content, status_code=reply.status_code, media_type=media, headers=headers)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        """Route the last user message and forward the chat request to the chosen model (streams if asked)."""
        return await proxy(request, "chat/completions")

    @app.post("/v1/completions")
    async def completions(request: Request) -> Response:
        """Route the prompt and forward the completion request to the chosen model (streams if asked)."""
        return await proxy(request, "completions")

    return app
