"""The OpenAI-compatible proxy of `embedllm serve`: route the last user message, forward the request to the
chosen model's endpoint unchanged (only `model` becomes the upstream's served name), stream when asked.

`model` in the request picks the candidates: "router" (every active model of the served run that has an
endpoint), "router:a,b" (a subset), or one model's name (forwarded to it without routing).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from embedllm.common import did_you_mean
from embedllm.errors import InputError, UnknownModel

ROUTER_MODEL = "router"


class UpstreamError(Exception):
    """The chosen model's endpoint did not answer (refused, timed out, or its key is not set)."""


@dataclass(frozen=True)
class Endpoint:
    """Where one model is served: OpenAI-compatible root URL, the name it is served under, its key variable."""

    name: str
    base_url: str
    served_name: str
    api_key_env: str | None = None

    def url(self, route: str) -> str:
        """Return the upstream URL of ROUTE ('chat/completions' or 'completions')."""
        return f"{self.base_url.rstrip('/')}/{route}"

    def headers(self) -> dict[str, str]:
        """Return the upstream request headers, with its bearer key from $api_key_env when it has one."""
        headers = {"content-type": "application/json"}
        if self.api_key_env:
            key = os.environ.get(self.api_key_env)
            if not key:
                raise UpstreamError(
                    f"model {self.name} reads its API key from ${self.api_key_env}, which is not set"
                )
            headers["authorization"] = f"Bearer {key}"
        return headers


def endpoints(models: list[dict]) -> dict[str, Endpoint]:
    """Return {name: Endpoint} of the served models that have a base_url and are active."""
    found = {}
    for m in models:
        if m.get("base_url") and m.get("active"):
            args = json.loads(m["model_args"]) if m.get("model_args") else {}
            served = str(args.get("model", args.get("pretrained", m["name"])))
            found[m["name"]] = Endpoint(m["name"], m["base_url"], served, m.get("api_key_env"))
    return found


def candidates(model: object, known: list[str], served: dict[str, Endpoint]) -> tuple[list[str], bool]:
    """Return (candidate model names, whether to route) for a request's `model` field."""
    if not isinstance(model, str) or not model.strip():
        raise InputError('`model` must be "router", "router:NAME,NAME" or the name of a served model')
    if model != ROUTER_MODEL and not model.startswith(ROUTER_MODEL + ":"):
        names, route = [model], False
    else:
        names = [n.strip() for n in model.removeprefix(ROUTER_MODEL).removeprefix(":").split(",") if n.strip()]
        names, route = names or list(served), True
        if not names:
            raise InputError(
                "no model of the served run has an endpoint: register one with "
                "`embedllm models add NAME --base-url URL` (models without one are routable only through /route)"
            )
    for name in names:
        if name not in known:
            choices = [ROUTER_MODEL, *known]
            raise UnknownModel(f"unknown model {name!r}{did_you_mean(name, choices)}: GET /models lists them")
        if name not in served:
            raise InputError(
                f"model {name!r} has no endpoint to forward to: `embedllm models add {name} --base-url URL` "
                "gives it one (or route it with POST /route)"
            )
    return names, route


def last_user_text(body: dict, route: str) -> str:
    """Return the text to route: the last user message (chat) or the prompt (completions)."""
    if route == "completions":
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise InputError("`prompt` must be one string (send one request per prompt)")
        return prompt
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InputError("`messages` must be a non-empty list of {role, content} objects")
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts: keep the text ones
                content = "\n".join(
                    p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
            if not isinstance(content, str):
                raise InputError("the last user message has no text content")
            return content
    raise InputError("`messages` holds no message with role 'user' to route")
