"""The OpenAI-style inference endpoints the Copilot and OpenRouter fakes share.

GitHub Copilot's API and OpenRouter both speak OpenAI's Chat Completions
(``POST …/chat/completions``), and Copilot also Responses (``POST …/responses``) and
Anthropic's Messages (``POST …/v1/messages``) for the models that list them. What is
the same in both services lives here: checking a request body the way an
OpenAI-compatible server does (a wrong shape is a 400 naming the field, never a
silent success) and answering it, whole or streamed as server-sent events. Who may
call, which models exist and the error envelopes stay in each fake.

Every check raises :class:`BodyError` with a message; the fake wraps it in its own
error shape. Answers carry the fake's ``reply_text`` split into three deltas, so a
client that drops or reorders a streamed piece is caught.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})


class BodyError(ValueError):
    """A request body the real server would refuse with 400; the message says why."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def _split3(text: str) -> list[str]:
    third = max(len(text) // 3, 1)
    return [text[:third], text[third:2 * third], text[2 * third:]]


def _tokens(text: str) -> int:
    return max(len(text.split()), 1)


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}data: {payload}\n\n".encode()


# -- Chat Completions ---------------------------------------------------------------------


def check_chat(body: Any) -> dict[str, Any]:
    """The Chat Completions body, checked as an OpenAI-compatible server checks it."""
    if not isinstance(body, dict):
        raise BodyError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BodyError("you must provide a model parameter", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BodyError("'messages' must be a non-empty array.", "messages")
    called: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in CHAT_ROLES:
            raise BodyError(f"messages[{index}]: role must be one of {sorted(CHAT_ROLES)}.", f"messages[{index}].role")
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if not isinstance(part, dict) or part.get("type") not in ("text", "image_url", "input_audio", "file"):
                    raise BodyError(f"messages[{index}].content: unknown content part.", f"messages[{index}].content")
        elif content is not None and not isinstance(content, str):
            raise BodyError(f"messages[{index}].content must be a string or an array.", f"messages[{index}].content")
        if message["role"] == "assistant":
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    called.add(call["id"])
        if message["role"] == "tool":
            if message.get("tool_call_id") not in called:
                raise BodyError(f"messages[{index}]: tool_call_id does not answer a tool call of an earlier "
                                "assistant message.", f"messages[{index}].tool_call_id")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(
                isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str) for t in tools):
            raise BodyError("'tools' must be an array of {type: function, function: {name, …}}.", "tools")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise BodyError("'stream' must be a boolean.", "stream")
    if "stream_options" in body and body.get("stream") is not True:
        raise BodyError("'stream_options' is only allowed when 'stream' is true.", "stream_options")
    return body


def has_image(body: dict[str, Any]) -> bool:
    """Whether any message carries an image (chat ``image_url``, Responses ``input_image``, Messages ``image``)."""
    items = list(body.get("messages") or [])
    if isinstance(body.get("input"), list):
        items.extend(body["input"])
    for item in items:
        content = item.get("content") if isinstance(item, dict) else None
        if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") in ("image_url", "input_image",
                                                                                         "image") for p in content):
            return True
    return False


def last_role(body: dict[str, Any]) -> str | None:
    messages = body.get("messages") or body.get("input")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        return messages[-1].get("role") or messages[-1].get("type")
    return None


def chat_answer(model: str, reply: str, prompt_tokens: int = 12) -> dict[str, Any]:
    completion = _tokens(reply)
    return {
        "id": "chatcmpl-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                  "total_tokens": prompt_tokens + completion},
    }


def chat_stream(model: str, reply: str, include_usage: bool, delay: float = 0.0,
                prompt_tokens: int = 12) -> Iterator[bytes]:
    """``data:`` chunks: the role, three content deltas, the finish reason, usage if asked, ``[DONE]``."""
    ident = "chatcmpl-" + secrets.token_hex(12)
    created = int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    for piece in _split3(reply):
        if delay:
            time.sleep(delay)
        yield chunk({"content": piece})
    yield chunk({}, "stop")
    if include_usage:
        completion = _tokens(reply)
        yield sse({"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion,
                                            "total_tokens": prompt_tokens + completion}})
    yield b"data: [DONE]\n\n"


# -- Responses ----------------------------------------------------------------------------


def check_responses(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BodyError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BodyError("Missing required parameter: 'model'.", "model")
    if not isinstance(body.get("input"), (str, list)):
        raise BodyError("Missing required parameter: 'input'.", "input")
    if "messages" in body:
        raise BodyError("Unsupported parameter: 'messages'. The Responses API takes 'input'.", "messages")
    return body


def responses_answer(model: str, reply: str) -> dict[str, Any]:
    out = _tokens(reply)
    return {
        "id": "resp_" + secrets.token_hex(12), "object": "response", "created_at": int(time.time()),
        "status": "completed", "model": model,
        "output": [{"type": "message", "id": "msg_" + secrets.token_hex(8), "status": "completed",
                    "role": "assistant", "content": [{"type": "output_text", "text": reply, "annotations": []}]}],
        "usage": {"input_tokens": 12, "output_tokens": out, "total_tokens": 12 + out},
    }


def responses_stream(model: str, reply: str) -> Iterator[bytes]:
    whole = responses_answer(model, reply)
    item = whole["output"][0]
    started = dict(whole, status="in_progress", output=[], usage=None)
    seq = iter(range(1_000))

    def event(kind: str, **fields: Any) -> bytes:
        return sse({"type": kind, "sequence_number": next(seq), **fields}, kind)

    yield event("response.created", response=started)
    yield event("response.output_item.added", output_index=0, item=dict(item, status="in_progress", content=[]))
    yield event("response.content_part.added", output_index=0, item_id=item["id"], content_index=0,
                part={"type": "output_text", "text": "", "annotations": []})
    for piece in _split3(reply):
        yield event("response.output_text.delta", output_index=0, item_id=item["id"], content_index=0, delta=piece)
    yield event("response.output_text.done", output_index=0, item_id=item["id"], content_index=0, text=reply)
    yield event("response.content_part.done", output_index=0, item_id=item["id"], content_index=0,
                part=item["content"][0])
    yield event("response.output_item.done", output_index=0, item=item)
    yield event("response.completed", response=whole)


# -- Messages -----------------------------------------------------------------------------


def check_messages(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BodyError("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BodyError("model: Field required", "model")
    if not isinstance(body.get("max_tokens"), int) or isinstance(body.get("max_tokens"), bool):
        raise BodyError("max_tokens: Field required", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BodyError("messages: Field required", "messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BodyError(f"messages.{index}.role: Input should be 'user' or 'assistant'", "messages")
    return body


def messages_answer(model: str, reply: str) -> dict[str, Any]:
    return {"id": "msg_" + secrets.token_hex(12), "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": reply}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 12, "output_tokens": _tokens(reply)}}


def messages_stream(model: str, reply: str) -> Iterator[bytes]:
    whole = messages_answer(model, reply)
    yield sse({"type": "message_start", "message": dict(whole, content=[], stop_reason=None,
                                                        usage={"input_tokens": 12, "output_tokens": 1})},
              "message_start")
    yield sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              "content_block_start")
    for piece in _split3(reply):
        yield sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                  "content_block_delta")
    yield sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    yield sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
               "usage": {"output_tokens": _tokens(reply)}}, "message_delta")
    yield sse({"type": "message_stop"}, "message_stop")
