"""OpenAI Chat Completions (``POST /v1/chat/completions``) to and from the neutral form.

System and developer messages become system text; ``tool`` messages become tool
results of a user turn; an assistant's ``tool_calls`` become tool calls. Streams are
``chat.completion.chunk`` objects, tool calls announced with an id and name and their
arguments sent as fragments under the same ``index``, a usage chunk when the caller
asked for one (``stream_options.include_usage``), then ``data: [DONE]``.
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
    now,
)

NAME = "chat"
_FINISH = {STOP: "stop", LENGTH: "length", TOOL_CALLS: "tool_calls", CONTENT_FILTER: "content_filter"}
_STOP = {v: k for k, v in _FINISH.items()} | {"function_call": TOOL_CALLS}


# -- requests ------------------------------------------------------------------------------


def read_request(body: dict[str, Any]) -> Conversation:
    conv = Conversation(model=str(body.get("model") or ""), stream=bool(body.get("stream")))
    for message in body.get("messages") or []:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            conv.system.append(as_text(content))
        elif role == "tool":
            _append(conv.messages, "user", ToolResult(str(message.get("tool_call_id") or ""), as_text(content)))
        elif role == "assistant":
            parts: list[Any] = [Text(as_text(content))] if as_text(content) else []
            for call in message.get("tool_calls") or []:
                if not isinstance(call, dict):
                    continue
                function = call.get("function") or {}
                parts.append(ToolCall(str(call.get("id") or new_id("call_")), str(function.get("name") or ""),
                                      str(function.get("arguments") or "")))
            conv.messages.append(Message("assistant", parts))
        else:
            conv.messages.append(Message("user", _user_parts(content)))
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name"):
            conv.tools.append(Tool(str(function["name"]), str(function.get("description") or ""),
                                   function.get("parameters") or {"type": "object", "properties": {}}))
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        conv.tool_choice = choice
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        conv.tool_choice = {"name": str(choice["function"].get("name") or "")}
    if isinstance(body.get("parallel_tool_calls"), bool):
        conv.parallel_tool_calls = body["parallel_tool_calls"]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    conv.temperature = _number(body.get("temperature"))
    conv.top_p = _number(body.get("top_p"))
    stop = body.get("stop")
    conv.stop = [stop] if isinstance(stop, str) else [s for s in stop or [] if isinstance(s, str)]
    if isinstance(body.get("reasoning_effort"), str):
        conv.reasoning_effort = body["reasoning_effort"]
    return conv


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _user_parts(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [Text(content)]
    parts: list[Any] = []
    for item in content or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "text":
            parts.append(Text(str(item.get("text") or "")))
        elif item.get("type") == "image_url":
            image = item.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                parts.append(Image(url))
    return parts


def _append(messages: list[Message], role: str, part: Any) -> None:
    """Consecutive tool results belong to one user turn."""
    if messages and messages[-1].role == role and any(isinstance(p, ToolResult) for p in messages[-1].parts):
        messages[-1].parts.append(part)
    else:
        messages.append(Message(role, [part]))


def write_request(conv: Conversation) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if conv.system:
        messages.append({"role": "system", "content": "\n\n".join(conv.system)})
    for message in conv.messages:
        if message.role == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": message.text() or None}
            calls = [p for p in message.parts if isinstance(p, ToolCall)]
            if calls:
                out["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": c.arguments or "{}"}} for c in calls]
            messages.append(out)
            continue
        for part in message.parts:
            if isinstance(part, ToolResult):
                messages.append({"role": "tool", "tool_call_id": part.call_id, "content": part.content})
        rest = [p for p in message.parts if isinstance(p, (Text, Image))]
        if rest:
            if all(isinstance(p, Text) for p in rest):
                messages.append({"role": "user", "content": "".join(p.text for p in rest if isinstance(p, Text))})
            else:
                messages.append({"role": "user", "content": [
                    {"type": "text", "text": p.text} if isinstance(p, Text)
                    else {"type": "image_url", "image_url": {"url": p.url}} for p in rest]})
    body: dict[str, Any] = {"model": conv.model, "messages": messages}
    if conv.tools:
        body["tools"] = [{"type": "function", "function": {"name": t.name, "description": t.description,
                                                           "parameters": t.parameters}} for t in conv.tools]
    if isinstance(conv.tool_choice, dict):
        body["tool_choice"] = {"type": "function", "function": {"name": conv.tool_choice["name"]}}
    elif conv.tool_choice:
        body["tool_choice"] = conv.tool_choice
    if conv.parallel_tool_calls is not None and conv.tools:
        body["parallel_tool_calls"] = conv.parallel_tool_calls
    if conv.max_tokens:
        body["max_completion_tokens"] = conv.max_tokens
    for key in ("temperature", "top_p"):
        if getattr(conv, key) is not None:
            body[key] = getattr(conv, key)
    if conv.stop:
        body["stop"] = conv.stop
    if conv.reasoning_effort:
        body["reasoning_effort"] = conv.reasoning_effort
    if conv.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


# -- replies ---------------------------------------------------------------------------------


def read_reply(body: dict[str, Any]) -> Reply:
    reply = Reply(id=str(body.get("id") or new_id("chatcmpl-")), model=str(body.get("model") or ""))
    choices = body.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    if as_text(message.get("content")):
        reply.parts.append(Text(as_text(message.get("content"))))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        reply.parts.append(ToolCall(str(call.get("id") or ""), str(function.get("name") or ""),
                                    str(function.get("arguments") or "")))
    reply.stop_reason = _STOP.get(str(choice.get("finish_reason")), STOP)
    reply.usage = _read_usage(body.get("usage"))
    return reply


def _read_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(as_int(usage.get("prompt_tokens")), as_int(usage.get("completion_tokens")),
                 as_int((usage.get("prompt_tokens_details") or {}).get("cached_tokens")),
                 as_int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens")))


def _usage(usage: Usage) -> dict[str, Any]:
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens, "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def write_reply(reply: Reply, request: dict[str, Any] | None = None) -> dict[str, Any]:
    calls = reply.tool_calls()
    message: dict[str, Any] = {"role": "assistant", "content": reply.text() or None, "refusal": None}
    if calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments or "{}"}} for c in calls]
    return {"id": _chat_id(reply.id), "object": "chat.completion", "created": now(), "model": reply.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _FINISH.get(reply.stop_reason, "stop")}],
            "usage": _usage(reply.usage)}


def _chat_id(reply_id: str) -> str:
    return reply_id if reply_id.startswith("chatcmpl-") else f"chatcmpl-{reply_id or new_id('')}"


# -- streams ----------------------------------------------------------------------------------


class StreamReader:
    """``chat.completion.chunk`` data lines → neutral events."""

    def __init__(self) -> None:
        self.started = False
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.done = False
        self._calls: dict[int, int] = {}  # the chunk's tool-call index -> our index

    def feed(self, name: str, data: str) -> list[Event]:
        if data.strip() == "[DONE]":
            return self._end()
        try:
            chunk = json.loads(data)
        except ValueError:
            return []
        if not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), dict):
            return [Failed(500, str(chunk["error"].get("message") or "error"))]
        events: list[Event] = []
        if not self.started:
            self.started = True
            events.append(Started(str(chunk.get("id") or ""), str(chunk.get("model") or "")))
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if isinstance(delta.get("reasoning_content"), str) and delta["reasoning_content"]:
                events.append(ReasoningDelta(delta["reasoning_content"]))
            if isinstance(delta.get("content"), str) and delta["content"]:
                events.append(TextDelta(delta["content"]))
            for call in delta.get("tool_calls") or []:
                position = call.get("index", 0)
                function = call.get("function") or {}
                if position not in self._calls:
                    self._calls[position] = len(self._calls)
                    events.append(ToolCallStarted(self._calls[position], str(call.get("id") or new_id("call_")),
                                                  str(function.get("name") or "")))
                if function.get("arguments"):
                    events.append(ToolCallDelta(self._calls[position], str(function["arguments"])))
            if choice.get("finish_reason"):
                self.finish = _STOP.get(str(choice["finish_reason"]), STOP)
        if isinstance(chunk.get("usage"), dict):
            self.usage = _read_usage(chunk["usage"])
        return events

    def _end(self) -> list[Event]:
        if self.done:
            return []
        self.done = True
        return [Finished(self.finish or STOP, self.usage)]

    def close(self) -> list[Event]:
        return self._end() if self.started else []


class StreamWriter:
    """Neutral events → the chunks an OpenAI client expects."""

    content_type = "text/event-stream"

    def __init__(self, request: dict[str, Any]) -> None:
        options = request.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.id = new_id("chatcmpl-")
        self.model = str(request.get("model") or "")
        self.created = now()
        # Text deltas are most of a stream: their chunk is a template with the delta spliced in.
        head = json.dumps({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model}, separators=(",", ":"))[:-1]
        self._text_head = f'data: {head},"choices":[{{"index":0,"delta":{{"content":'.encode()
        self._text_tail = b'},"logprobs":null,"finish_reason":null}]}\n\n'

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        return sse.event(None, {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                "model": self.model, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                                  "finish_reason": finish}]})

    def write(self, item: Event) -> bytes:
        if isinstance(item, Started):
            return self._chunk({"role": "assistant", "content": ""})
        if isinstance(item, TextDelta):
            return self._text_head + json.dumps(item.text, ensure_ascii=False).encode() + self._text_tail
        if isinstance(item, ToolCallStarted):
            return self._chunk({"tool_calls": [{"index": item.index, "id": item.id, "type": "function",
                                                "function": {"name": item.name, "arguments": ""}}]})
        if isinstance(item, ToolCallDelta):
            return self._chunk({"tool_calls": [{"index": item.index, "function": {"arguments": item.arguments}}]})
        if isinstance(item, Finished):
            out = self._chunk({}, _FINISH.get(item.stop_reason, "stop"))
            if self.include_usage:
                out += sse.event(None, {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                        "model": self.model, "choices": [],
                                        "usage": _usage(item.usage or Usage())})
            return out + b"data: [DONE]\n\n"
        if isinstance(item, Failed):
            return sse.event(None, {"error": error_object(item.status, item.message)})
        return b""


# -- errors ------------------------------------------------------------------------------------

_ERROR_TYPES = {401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                429: "rate_limit_error"}


def error_object(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"message": message, "type": kind, "param": None, "code": None}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": error_object(status, message)}
