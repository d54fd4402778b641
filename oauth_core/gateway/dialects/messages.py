"""Anthropic Messages (``POST /v1/messages``) to and from the neutral form.

``system`` (a string or text blocks) becomes system text; ``tool_use`` blocks become
tool calls (their ``input`` object as JSON text) and ``tool_result`` blocks tool
results; thinking blocks stay behind. Written requests alternate user and assistant
turns with tool results first in their user turn, as the API requires, and always
carry ``max_tokens`` (required there, optional elsewhere). Streams are
``message_start``, per content block ``content_block_start`` / ``…_delta`` (text, or
``input_json_delta`` fragments of a tool call's input) / ``…_stop``, ``message_delta``
with the stop reason and usage, and ``message_stop``.
"""

from __future__ import annotations

import json
from typing import Any

from .. import sse
from ..neutral import (
    CONTENT_FILTER,
    LENGTH,
    STOP,
    TOOL_CALLS,
    Conversation,
    Event,
    Failed,
    Finished,
    Image,
    Message,
    ReasoningDelta,
    Reply,
    Started,
    Text,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolCallStarted,
    ToolResult,
    Usage,
    as_int,
    as_text,
    new_id,
    parse_arguments,
)

NAME = "messages"
#: ``max_tokens`` for callers of other dialects that leave the output limit open.
DEFAULT_MAX_TOKENS = 8192
_STOP_OUT = {STOP: "end_turn", LENGTH: "max_tokens", TOOL_CALLS: "tool_use", CONTENT_FILTER: "refusal"}
_STOP_IN = {"end_turn": STOP, "stop_sequence": STOP, "pause_turn": STOP, "max_tokens": LENGTH,
            "tool_use": TOOL_CALLS, "refusal": CONTENT_FILTER}


# -- requests ------------------------------------------------------------------------------


def read_request(body: dict[str, Any]) -> Conversation:
    conv = Conversation(model=str(body.get("model") or ""), stream=bool(body.get("stream")))
    system = body.get("system")
    if isinstance(system, str) and system:
        conv.system.append(system)
    elif isinstance(system, list):
        conv.system.extend(as_text([block]) for block in system if as_text([block]))
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = "assistant" if message.get("role") == "assistant" else "user"
        conv.messages.append(Message(role, _parts(message.get("content"))))
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name") and "input_schema" in tool:
            conv.tools.append(Tool(str(tool["name"]), str(tool.get("description") or ""),
                                   tool.get("input_schema") or {"type": "object", "properties": {}}))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        conv.tool_choice = {"auto": "auto", "any": "required", "none": "none"}.get(str(kind))
        if kind == "tool" and choice.get("name"):
            conv.tool_choice = {"name": str(choice["name"])}
        if choice.get("disable_parallel_tool_use") is True:
            conv.parallel_tool_calls = False
    limit = body.get("max_tokens")
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(conv, key, float(value))
    conv.stop = [s for s in body.get("stop_sequences") or [] if isinstance(s, str)]
    return conv


def _parts(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [Text(content)]
    parts: list[Any] = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            parts.append(Text(str(block.get("text") or "")))
        elif kind == "image":
            source = block.get("source") or {}
            if source.get("type") == "base64":
                parts.append(Image(f"data:{source.get('media_type') or 'image/png'};base64,{source.get('data')}"))
            elif source.get("type") == "url" and isinstance(source.get("url"), str):
                parts.append(Image(source["url"]))
        elif kind == "tool_use":
            parts.append(ToolCall(str(block.get("id") or ""), str(block.get("name") or ""),
                                  json.dumps(block.get("input") or {})))
        elif kind == "tool_result":
            parts.append(ToolResult(str(block.get("tool_use_id") or ""), as_text(block.get("content")),
                                    bool(block.get("is_error"))))
    return parts


def write_request(conv: Conversation) -> dict[str, Any]:
    turns: list[dict[str, Any]] = []
    for message in conv.messages:
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": message.role, "content": blocks})
    for turn in turns:  # tool results lead their user turn
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    body: dict[str, Any] = {"model": conv.model, "max_tokens": conv.max_tokens or DEFAULT_MAX_TOKENS,
                            "messages": turns}
    if conv.system:
        body["system"] = "\n\n".join(conv.system)
    if conv.tools and conv.tool_choice != "none":
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters}
                         for t in conv.tools]
        choice: dict[str, Any] | None = None
        if isinstance(conv.tool_choice, dict):
            choice = {"type": "tool", "name": conv.tool_choice["name"]}
        elif conv.tool_choice in ("auto", "required"):
            choice = {"type": "any" if conv.tool_choice == "required" else "auto"}
        if conv.parallel_tool_calls is False:
            choice = (choice or {"type": "auto"}) | {"disable_parallel_tool_use": True}
        if choice:
            body["tool_choice"] = choice
    if conv.temperature is not None:
        body["temperature"] = conv.temperature
    elif conv.top_p is not None:  # recent models refuse both at once
        body["top_p"] = conv.top_p
    if conv.stop:
        body["stop_sequences"] = conv.stop
    if conv.stream:
        body["stream"] = True
    return body


def _blocks(message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, Text):
            if part.text:
                blocks.append({"type": "text", "text": part.text})
        elif isinstance(part, Image):
            data = part.data()
            source = ({"type": "base64", "media_type": data[0], "data": data[1]} if data
                      else {"type": "url", "url": part.url})
            blocks.append({"type": "image", "source": source})
        elif isinstance(part, ToolCall):
            blocks.append({"type": "tool_use", "id": part.id, "name": part.name,
                           "input": parse_arguments(part.arguments)})
        elif isinstance(part, ToolResult):
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": part.call_id, "content": part.content}
            if part.is_error:
                block["is_error"] = True
            blocks.append(block)
    return blocks


# -- replies ---------------------------------------------------------------------------------


def _read_usage(usage: Any, into: Usage | None = None) -> Usage:
    """Anthropic counts cached input apart; the neutral form (like OpenAI) includes it."""
    out = into or Usage()
    if not isinstance(usage, dict):
        return out
    if "input_tokens" in usage:
        cached = as_int(usage.get("cache_read_input_tokens"))
        out.input_tokens = as_int(usage.get("input_tokens")) + cached + as_int(
            usage.get("cache_creation_input_tokens"))
        out.cached_tokens = cached
    if "output_tokens" in usage:
        out.output_tokens = as_int(usage.get("output_tokens"))
    return out


def read_reply(body: dict[str, Any]) -> Reply:
    reply = Reply(id=str(body.get("id") or new_id("msg_")), model=str(body.get("model") or ""))
    for block in body.get("content") or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            reply.parts.append(Text(str(block.get("text") or "")))
        elif block.get("type") == "tool_use":
            reply.parts.append(ToolCall(str(block.get("id") or ""), str(block.get("name") or ""),
                                        json.dumps(block.get("input") or {})))
        elif block.get("type") == "thinking":
            reply.reasoning += str(block.get("thinking") or "")
    reply.stop_reason = _STOP_IN.get(str(body.get("stop_reason")), STOP)
    reply.usage = _read_usage(body.get("usage"))
    return reply


def _usage(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": max(usage.input_tokens - usage.cached_tokens, 0), "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": usage.cached_tokens}


def write_reply(reply: Reply, request: dict[str, Any] | None = None) -> dict[str, Any]:
    content = []
    for part in reply.parts:
        if isinstance(part, Text):
            content.append({"type": "text", "text": part.text})
        else:
            content.append({"type": "tool_use", "id": part.id, "name": part.name,
                            "input": parse_arguments(part.arguments)})
    rid = reply.id if reply.id.startswith("msg_") else new_id("msg_")
    return {"id": rid, "type": "message", "role": "assistant", "model": reply.model, "content": content,
            "stop_reason": _STOP_OUT.get(reply.stop_reason, "end_turn"), "stop_sequence": None,
            "usage": _usage(reply.usage)}


# -- streams -----------------------------------------------------------------------------------


class StreamReader:
    """Messages stream events → neutral events."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self.usage = Usage()
        self.stop_reason = STOP
        self._calls: dict[int, int] = {}  # content block index -> our tool-call index

    def feed(self, name: str, data: str) -> list[Event]:
        try:
            payload = json.loads(data)
        except ValueError:
            return []
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or name
        if kind == "message_start":
            message = payload.get("message") or {}
            _read_usage(message.get("usage"), self.usage)
            self.started = True
            return [Started(str(message.get("id") or ""), str(message.get("model") or ""), self.usage.input_tokens)]
        if kind == "content_block_start":
            block = payload.get("content_block") or {}
            if block.get("type") == "tool_use":
                index = len(self._calls)
                self._calls[as_int(payload.get("index"))] = index
                events: list[Event] = [ToolCallStarted(index, str(block.get("id") or ""),
                                                       str(block.get("name") or ""))]
                if block.get("input"):
                    events.append(ToolCallDelta(index, json.dumps(block["input"])))
                return events
            if block.get("type") == "text" and block.get("text"):
                return [TextDelta(str(block["text"]))]
            return []
        if kind == "content_block_delta":
            delta = payload.get("delta") or {}
            if delta.get("type") == "text_delta":
                return [TextDelta(str(delta.get("text") or ""))]
            if delta.get("type") == "input_json_delta":
                index = self._calls.get(as_int(payload.get("index")))
                return [] if index is None else [ToolCallDelta(index, str(delta.get("partial_json") or ""))]
            if delta.get("type") == "thinking_delta":
                return [ReasoningDelta(str(delta.get("thinking") or ""))]
            return []
        if kind == "message_delta":
            delta = payload.get("delta") or {}
            if delta.get("stop_reason"):
                self.stop_reason = _STOP_IN.get(str(delta["stop_reason"]), STOP)
            _read_usage(payload.get("usage"), self.usage)
            return []
        if kind == "message_stop":
            self.finished = True
            return [Finished(self.stop_reason, self.usage)]
        if kind == "error":
            self.finished = True
            error = payload.get("error") or {}
            return [Failed(_status_of(str(error.get("type"))), str(error.get("message") or "error"))]
        return []

    def close(self) -> list[Event]:
        if self.started and not self.finished:
            self.finished = True
            return [Failed(502, "The backend's stream ended before the message was complete.")]
        return []


class StreamWriter:
    """Neutral events → the Messages stream an Anthropic client expects."""

    content_type = "text/event-stream"

    def __init__(self, request: dict[str, Any]) -> None:
        self.model = str(request.get("model") or "")
        self.block = -1
        self.open: str | None = None  # "text" or "tool_use"

    def _stop_block(self) -> bytes:
        if self.open is None:
            return b""
        self.open = None
        return sse.event("content_block_stop", {"type": "content_block_stop", "index": self.block})

    def _start_block(self, block: dict[str, Any]) -> bytes:
        out = self._stop_block()
        self.block += 1
        self.open = block["type"]
        return out + sse.event("content_block_start", {"type": "content_block_start", "index": self.block,
                                                        "content_block": block})

    def write(self, item: Event) -> bytes:
        if isinstance(item, Started):
            message = {"id": item.id if item.id.startswith("msg_") else new_id("msg_"), "type": "message",
                       "role": "assistant", "model": self.model, "content": [], "stop_reason": None,
                       "stop_sequence": None, "usage": _usage(Usage(input_tokens=item.input_tokens))}
            return sse.event("message_start", {"type": "message_start", "message": message})
        if isinstance(item, TextDelta):
            out = b"" if self.open == "text" else self._start_block({"type": "text", "text": ""})
            return out + (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                          b'"delta":{"type":"text_delta","text":%s}}\n\n'
                          % (self.block, json.dumps(item.text, ensure_ascii=False).encode()))
        if isinstance(item, ToolCallStarted):
            return self._start_block({"type": "tool_use", "id": item.id, "name": item.name, "input": {}})
        if isinstance(item, ToolCallDelta) and self.open == "tool_use":
            return sse.event("content_block_delta", {"type": "content_block_delta", "index": self.block,
                                                      "delta": {"type": "input_json_delta",
                                                                "partial_json": item.arguments}})
        if isinstance(item, Finished):
            usage = _usage(item.usage or Usage())
            return (self._stop_block()
                    + sse.event("message_delta", {"type": "message_delta",
                                                  "delta": {"stop_reason": _STOP_OUT.get(item.stop_reason, "end_turn"),
                                                            "stop_sequence": None},
                                                  "usage": usage})
                    + sse.event("message_stop", {"type": "message_stop"}))
        if isinstance(item, Failed):
            return self._stop_block() + sse.event("error", error_body(item.status, item.message))
        return b""


# -- errors ----------------------------------------------------------------------------------------

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 529: "overloaded_error"}


def _status_of(kind: str) -> int:
    return next((status for status, name in _ERROR_TYPES.items() if name == kind), 500)


def error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
