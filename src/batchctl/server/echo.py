"""The built-in offline `echo` model: answers every request from its own body, in its endpoint's real shape.

Chat completions, completions, embeddings, Responses and moderations each get the response object
OpenAI's API returns for them (with deterministic content and token estimates), so a client's parser
sees what it would see from OpenAI. Anything else -- images, videos -- the echo model does not serve:
`serve` refuses such batches on create (ECHO_ENDPOINTS) unless an upstream does the work.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import struct
import time
from typing import Any

from batchctl.server.config import ServerConfig
from batchctl.server.outcome import Outcome, error_body, quick_id

ECHO_MODEL = "echo"
ECHO_DIMENSIONS = 16
# OpenAI's moderation categories, in its order (omni-moderation).
MODERATION_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)  # fmt: skip


def echo_should_fail(custom_id: str, failure_rate: float) -> bool:
    """Whether the echo model fails this request: deterministic, so tests can predict it."""
    if failure_rate <= 0:
        return False
    bucket = int.from_bytes(hashlib.sha256(custom_id.encode()).digest()[:4], "big") % 1000
    return bucket < failure_rate * 1000


def estimate_tokens(text: str) -> int:
    return max(1, (len(text) + 3) // 4)


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    return ""


def _unit_hash(text: str, counter: int) -> float:
    """A deterministic number in [0, 1) from `text`."""
    return int.from_bytes(hashlib.sha256(f"{counter}:{text}".encode()).digest()[:4], "big") / 2**32


def echo_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic unit vector derived from a hash of `text`."""
    raw = b""
    counter = 0
    while len(raw) < dimensions * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [(int.from_bytes(raw[i * 4 : i * 4 + 4], "big") / 0xFFFFFFFF) * 2 - 1 for i in range(dimensions)]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    return [round(v / norm, 6) for v in values]


def _cut(content: str, limit: Any) -> tuple[str, bool]:
    """`content` cut to a token `limit` (about 4 characters a token), and whether it was cut."""
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 and estimate_tokens(content) > limit:
        return content[: limit * 4], True
    return content, False


def echo_chat(body: dict[str, Any]) -> dict[str, Any]:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last = _text_of(users[-1].get("content")) if users else ""
    content, cut = _cut(f"echo: {last}", body.get("max_completion_tokens", body.get("max_tokens")))
    prompt_tokens = sum(estimate_tokens(_text_of(m.get("content"))) for m in messages if isinstance(m, dict)) or 1
    completion_tokens = estimate_tokens(content)
    return {
        "id": quick_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or ECHO_MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "length" if cut else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "system_fingerprint": "fp_batchctl_echo",
    }


def echo_completion(body: dict[str, Any]) -> dict[str, Any]:
    prompt = body.get("prompt")
    prompts = prompt if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else [str(prompt or "")]
    choices = [
        {"index": i, "text": f"echo: {p}", "logprobs": None, "finish_reason": "stop"} for i, p in enumerate(prompts)
    ]
    prompt_tokens = sum(estimate_tokens(p) for p in prompts)
    completion_tokens = sum(estimate_tokens(c["text"]) for c in choices)
    return {
        "id": quick_id("cmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": body.get("model") or ECHO_MODEL,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def echo_embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    texts = [i if isinstance(i, str) else repr(i) for i in inputs]
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and 1 <= dims <= 4096 else ECHO_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(texts):
        vector = echo_vector(text, dims)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(estimate_tokens(t) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") or ECHO_MODEL,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _response_input(value: Any) -> tuple[str, int]:
    """(the text to echo, input tokens) of a Responses `input`: a string, or a list of input items."""
    if isinstance(value, str):
        return value, estimate_tokens(value)
    items = [i for i in value if isinstance(i, dict)] if isinstance(value, list) else []
    texts = [_text_of(i.get("content")) for i in items]
    users = [_text_of(i.get("content")) for i in items if i.get("role", "user") == "user"]
    return (users[-1] if users else ""), sum(estimate_tokens(t) for t in texts) or 1


def echo_responses(body: dict[str, Any]) -> dict[str, Any]:
    """A Responses object: one assistant `message` output item with the echoed text as `output_text`."""
    text, input_tokens = _response_input(body.get("input"))
    instructions = body.get("instructions") if isinstance(body.get("instructions"), str) else None
    if instructions:
        input_tokens += estimate_tokens(instructions)
    content, cut = _cut(f"echo: {text}", body.get("max_output_tokens"))
    output_tokens = estimate_tokens(content)
    now = int(time.time())
    return {
        "id": quick_id("resp_"),
        "object": "response",
        "created_at": now,
        "status": "incomplete" if cut else "completed",
        "completed_at": None if cut else now,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body.get("model") or ECHO_MODEL,
        "output": [
            {
                "type": "message",
                "id": quick_id("msg_"),
                "status": "incomplete" if cut else "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}],
            }
        ],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "metadata": body.get("metadata") or {},
        # `user` is deprecated; the description types it a string, so it is sent only when the request set it.
        **({"user": body["user"]} if isinstance(body.get("user"), str) else {}),
    }


def _moderation_inputs(value: Any) -> list[str]:
    """One text per moderation result: a string input is one; a list of strings is one each; a list of
    multimodal parts (text and image_url) is one input, of its text."""
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, list):
        return [_text_of(value)]
    return [value if isinstance(value, str) else ""]


def echo_moderations(body: dict[str, Any]) -> dict[str, Any]:
    """A moderation result per input: nothing flagged, with small deterministic scores."""
    results = []
    for text in _moderation_inputs(body.get("input")):
        scores = {c: round(_unit_hash(text, i) * 0.01, 6) for i, c in enumerate(MODERATION_CATEGORIES)}
        results.append({
            "flagged": False,
            "categories": {c: False for c in MODERATION_CATEGORIES},
            "category_scores": scores,
            "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
        })  # fmt: skip
    return {"id": quick_id("modr-"), "model": body.get("model") or ECHO_MODEL, "results": results}


ECHO_HANDLERS = {
    "/v1/chat/completions": echo_chat,
    "/v1/completions": echo_completion,
    "/v1/embeddings": echo_embeddings,
    "/v1/responses": echo_responses,
    "/v1/moderations": echo_moderations,
}
ECHO_ENDPOINTS = tuple(ECHO_HANDLERS)


class EchoExecutor:
    """The offline model: answers every request from its own body, after `latency` seconds."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.concurrency = max(1, config.concurrency)
        # Answers without awaiting anything: the runner gives it one worker and time slices (runner.py).
        self.instant = config.latency <= 0

    async def execute(self, endpoint: str, body: dict[str, Any], custom_id: str) -> Outcome:
        if self.config.latency > 0:
            await asyncio.sleep(self.config.latency)
        if echo_should_fail(custom_id, self.config.failure_rate):
            return Outcome(
                500,
                error_body(
                    # One message for all (the line carries its custom_id), so the failures group as one reason.
                    f"Injected failure (--failure-rate {self.config.failure_rate:g}: chosen by custom_id, so a retry "
                    "on this server fails the same requests).",
                    "server_error",
                    "injected_failure",
                ),
            )
        handler = ECHO_HANDLERS.get(endpoint)
        if handler is None:
            return Outcome(404, error_body(f"The echo model does not serve {endpoint}.", "invalid_request_error"))
        return Outcome(200, handler(body))

    async def models(self) -> list[str]:
        return [ECHO_MODEL]

    async def aclose(self) -> None:
        return None
