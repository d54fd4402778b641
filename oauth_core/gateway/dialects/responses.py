"""OpenAI Responses (``POST /v1/responses``) to and from the neutral form.

``instructions`` and system/developer input messages become system text;
``function_call`` / ``function_call_output`` items become tool calls and results;
reasoning items and item references cannot cross into another dialect and are dropped
there. Streams are typed events with ``sequence_number``s: ``response.created``, an
``output_item.added`` / ``…done`` pair around each message or function call with the
text or argument deltas between, and ``response.completed`` carrying the whole
response with its usage.

:func:`aggregate` turns such a stream back into one response object without going
through the neutral form, so a same-dialect caller that did not ask to stream keeps
everything (reasoning items included) when a backend insists on streaming.
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
from .chat import error_body, error_object  # Responses errors use the Chat Completions envelope

NAME = "responses"

__all__ = ["NAME", "StreamReader", "StreamWriter", "aggregate", "error_body", "error_object", "read_reply",
           "read_request", "write_reply", "write_request"]


# -- requests ------------------------------------------------------------------------------


def read_request(body: dict[str, Any]) -> Conversation:
    conv = Conversation(model=str(body.get("model") or ""), stream=bool(body.get("stream")))
    if isinstance(body.get("instructions"), str) and body["instructions"]:
        conv.system.append(body["instructions"])
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    for item in items or []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                conv.system.append(as_text(content))
            elif role == "assistant":
                text = as_text(content)
                _add(conv.messages, "assistant", [Text(text)] if text else [])
            else:
                _add(conv.messages, "user", _user_parts(content))
        elif kind == "function_call":
            _add(conv.messages, "assistant", [ToolCall(str(item.get("call_id") or ""), str(item.get("name") or ""),
                                                        str(item.get("arguments") or ""))])
        elif kind == "function_call_output":
            _add(conv.messages, "user", [ToolResult(str(item.get("call_id") or ""), as_text(item.get("output")))])
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and tool.get("name"):
            conv.tools.append(Tool(str(tool["name"]), str(tool.get("description") or ""),
                                   tool.get("parameters") or {"type": "object", "properties": {}}))
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        conv.tool_choice = choice
    elif isinstance(choice, dict) and choice.get("name"):
        conv.tool_choice = {"name": str(choice["name"])}
    if isinstance(body.get("parallel_tool_calls"), bool):
        conv.parallel_tool_calls = body["parallel_tool_calls"]
    limit = body.get("max_output_tokens")
    conv.max_tokens = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            setattr(conv, key, float(value))
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and isinstance(reasoning.get("effort"), str):
        conv.reasoning_effort = reasoning["effort"]
    return conv


def _user_parts(content: Any) -> list[Any]:
    if isinstance(content, str):
        return [Text(content)]
    parts: list[Any] = []
    for item in content or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") in ("input_text", "output_text", "text"):
            parts.append(Text(str(item.get("text") or "")))
        elif item.get("type") == "input_image" and isinstance(item.get("image_url"), str):
            parts.append(Image(item["image_url"]))
    return parts


def _add(messages: list[Message], role: str, parts: list[Any]) -> None:
    """Items of one turn (a message and its function calls, or several outputs) share a message."""
    if not parts:
        return
    if messages and messages[-1].role == role and (
            role == "assistant" or any(isinstance(p, ToolResult) for p in messages[-1].parts + parts)):
        messages[-1].parts.extend(parts)
    else:
        messages.append(Message(role, list(parts)))


def write_request(conv: Conversation) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for message in conv.messages:
        for part in message.parts:
            if isinstance(part, ToolCall):
                items.append({"type": "function_call", "call_id": part.id, "name": part.name,
                              "arguments": part.arguments or "{}"})
            elif isinstance(part, ToolResult):
                items.append({"type": "function_call_output", "call_id": part.call_id, "output": part.content})
            elif message.role == "assistant" and isinstance(part, Text):
                items.append({"type": "message", "role": "assistant",
                              "content": [{"type": "output_text", "text": part.text}]})
            elif isinstance(part, Text):
                _user_item(items).append({"type": "input_text", "text": part.text})
            elif isinstance(part, Image):
                _user_item(items).append({"type": "input_image", "image_url": part.url})
    body: dict[str, Any] = {"model": conv.model, "input": items}
    if conv.system:
        body["instructions"] = "\n\n".join(conv.system)
    if conv.tools:
        # strict: false, said out loud: the Responses API makes a tool strict when it is left out,
        # and the other dialects' tools are not (their schemas need not be strict-compatible).
        body["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                          "parameters": t.parameters, "strict": False} for t in conv.tools]
    if isinstance(conv.tool_choice, dict):
        body["tool_choice"] = {"type": "function", "name": conv.tool_choice["name"]}
    elif conv.tool_choice:
        body["tool_choice"] = conv.tool_choice
    if conv.parallel_tool_calls is not None and conv.tools:
        body["parallel_tool_calls"] = conv.parallel_tool_calls
    if conv.max_tokens:
        body["max_output_tokens"] = conv.max_tokens
    for key in ("temperature", "top_p"):
        if getattr(conv, key) is not None:
            body[key] = getattr(conv, key)
    if conv.reasoning_effort:
        body["reasoning"] = {"effort": conv.reasoning_effort}
    if conv.stream:
        body["stream"] = True
    return body


def _user_item(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The content list of the user message being written (a new one after any other item)."""
    last = items[-1] if items else None
    if last is None or last.get("type") != "message" or last.get("role") != "user":
        last = {"type": "message", "role": "user", "content": []}
        items.append(last)
    return last["content"]


# -- replies ---------------------------------------------------------------------------------


def _stop_reason(response: dict[str, Any], has_calls: bool) -> str:
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return CONTENT_FILTER if reason == "content_filter" else LENGTH
    return TOOL_CALLS if has_calls else STOP


def _read_usage(usage: Any) -> Usage:
    if not isinstance(usage, dict):
        return Usage()
    return Usage(as_int(usage.get("input_tokens")), as_int(usage.get("output_tokens")),
                 as_int((usage.get("input_tokens_details") or {}).get("cached_tokens")),
                 as_int((usage.get("output_tokens_details") or {}).get("reasoning_tokens")))


def read_reply(body: dict[str, Any]) -> Reply:
    reply = Reply(id=str(body.get("id") or new_id("resp_")), model=str(body.get("model") or ""))
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            text = as_text(item.get("content"))
            if text:
                reply.parts.append(Text(text))
        elif item.get("type") == "function_call":
            reply.parts.append(ToolCall(str(item.get("call_id") or ""), str(item.get("name") or ""),
                                        str(item.get("arguments") or "")))
        elif item.get("type") == "reasoning":
            reply.reasoning += as_text(item.get("summary"))
    reply.stop_reason = _stop_reason(body, bool(reply.tool_calls()))
    reply.usage = _read_usage(body.get("usage"))
    return reply


def _usage(usage: Usage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "input_tokens_details": {"cached_tokens": usage.cached_tokens},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.total_tokens}


def _message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" else []}


def _call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call.id, "name": call.name,
            "arguments": call.arguments if status == "completed" else ""}


def _response(rid: str, model: str, status: str, output: list[dict[str, Any]], usage: Usage | None,
              stop_reason: str) -> dict[str, Any]:
    incomplete = None
    if status == "incomplete":
        incomplete = {"reason": "content_filter" if stop_reason == CONTENT_FILTER else "max_output_tokens"}
    return {"id": rid, "object": "response", "created_at": now(), "status": status, "model": model,
            "output": output, "usage": _usage(usage) if usage else None, "incomplete_details": incomplete,
            "error": None, "instructions": None, "metadata": {}, "parallel_tool_calls": True, "tool_choice": "auto",
            "tools": [], "text": {"format": {"type": "text"}}}


def _status(stop_reason: str) -> str:
    return "incomplete" if stop_reason in (LENGTH, CONTENT_FILTER) else "completed"


def write_reply(reply: Reply, request: dict[str, Any] | None = None) -> dict[str, Any]:
    output = []
    for part in reply.parts:
        if isinstance(part, Text):
            output.append(_message_item(new_id("msg_"), part.text))
        else:
            output.append(_call_item(new_id("fc_"), part))
    rid = reply.id if reply.id.startswith("resp_") else new_id("resp_")
    return _response(rid, reply.model, _status(reply.stop_reason), output, reply.usage, reply.stop_reason)


# -- streams -----------------------------------------------------------------------------------


#: Events that carry nothing the neutral form keeps (their content arrives in other events).
_UNUSED_EVENTS = frozenset({
    "response.content_part.added", "response.content_part.done", "response.output_text.done",
    "response.function_call_arguments.done", "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done", "response.reasoning_summary_text.done",
    "response.output_text.annotation.added",
})


class StreamReader:
    """Responses stream events → neutral events."""

    def __init__(self) -> None:
        self.started = False
        self.finished = False
        self._calls: dict[str, int] = {}  # function-call item id -> our index
        self._seen_arguments: set[str] = set()

    def feed(self, name: str, data: str) -> list[Event]:
        if name in _UNUSED_EVENTS:
            return []  # named on the event line: no need to decode what the neutral form does not carry
        try:
            payload = json.loads(data)
        except ValueError:
            return []
        if not isinstance(payload, dict):
            return []
        kind = payload.get("type") or name
        events: list[Event] = []
        if kind in ("response.created", "response.in_progress"):
            if not self.started:
                self.started = True
                response = payload.get("response") or {}
                events.append(Started(str(response.get("id") or ""), str(response.get("model") or "")))
        elif kind == "response.output_text.delta":
            events.append(TextDelta(str(payload.get("delta") or "")))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            events.append(ReasoningDelta(str(payload.get("delta") or "")))
        elif kind == "response.output_item.added":
            item = payload.get("item") or {}
            if item.get("type") == "function_call":
                index = len(self._calls)
                self._calls[str(item.get("id") or index)] = index
                events.append(ToolCallStarted(index, str(item.get("call_id") or ""), str(item.get("name") or "")))
        elif kind == "response.function_call_arguments.delta":
            item_id = str(payload.get("item_id") or "")
            if item_id in self._calls:
                self._seen_arguments.add(item_id)
                events.append(ToolCallDelta(self._calls[item_id], str(payload.get("delta") or "")))
        elif kind == "response.output_item.done":
            item = payload.get("item") or {}
            item_id = str(item.get("id") or "")
            if item.get("type") == "function_call" and item_id in self._calls and item_id not in self._seen_arguments:
                events.append(ToolCallDelta(self._calls[item_id], str(item.get("arguments") or "")))
        elif kind in ("response.completed", "response.incomplete"):
            response = payload.get("response") or {}
            self.finished = True
            events.append(Finished(_stop_reason(response, bool(self._calls)), _read_usage(response.get("usage"))))
        elif kind in ("response.failed", "error"):
            self.finished = True
            events.append(_failure(payload))
        return events

    def close(self) -> list[Event]:
        if self.started and not self.finished:
            self.finished = True
            return [Failed(502, "The backend's stream ended before the response was complete.")]
        return []


#: Error codes of a failed response that a retry can fix, with the status that says so; any
#: other code (an invalid prompt, a context too long) is the request's fault: 400.
_RETRYABLE_CODES = {"server_error": 500, "rate_limit_exceeded": 429, "insufficient_quota": 429,
                    "vector_store_timeout": 504}


def _failure(payload: dict[str, Any]) -> Failed:
    """A ``response.failed`` or ``error`` event as a failure, with a status a client can act on."""
    error = (payload.get("response") or {}).get("error") if payload.get("type") == "response.failed" else payload
    if isinstance(error, dict) and isinstance(error.get("error"), dict):
        error = error["error"]
    if not isinstance(error, dict):
        return Failed(500, "The backend reported an error.")
    code = str(error.get("code") or error.get("type") or "")
    status = _RETRYABLE_CODES.get(code, 400 if code else 500)
    return Failed(status, str(error.get("message") or error.get("code") or "The backend reported an error."))


class StreamWriter:
    """Neutral events → the Responses stream an OpenAI client expects."""

    content_type = "text/event-stream"

    def __init__(self, request: dict[str, Any]) -> None:
        self.model = str(request.get("model") or "")
        self.id = new_id("resp_")
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self._text: tuple[str, int, list[str]] | None = None  # item id, output index, pieces
        self._call: tuple[str, int, ToolCall] | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return sse.event(kind, data)

    def _close_open(self) -> bytes:
        out = b""
        if self._text is not None:
            item_id, index, pieces = self._text
            text = "".join(pieces)
            out += self._event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                               text=text, logprobs=[])
            out += self._event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                               part={"type": "output_text", "text": text, "annotations": []})
            item = _message_item(item_id, text)
            out += self._event("response.output_item.done", output_index=index, item=item)
            self.output.append(item)
            self._text = None
        if self._call is not None:
            item_id, index, call = self._call
            out += self._event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                               arguments=call.arguments)
            item = _call_item(item_id, call)
            out += self._event("response.output_item.done", output_index=index, item=item)
            self.output.append(item)
            self._call = None
        return out

    def write(self, item: Event) -> bytes:
        if isinstance(item, Started):
            shell = _response(self.id, self.model, "in_progress", [], None, STOP)
            return self._event("response.created", response=shell) + self._event("response.in_progress",
                                                                                  response=shell)
        if isinstance(item, TextDelta):
            out = b""
            if self._text is None:
                out += self._close_open()
                item_id, index = new_id("msg_"), len(self.output)
                self._text = (item_id, index, [])
                out += self._event("response.output_item.added", output_index=index,
                                   item=_message_item(item_id, "", "in_progress"))
                out += self._event("response.content_part.added", item_id=item_id, output_index=index,
                                   content_index=0, part={"type": "output_text", "text": "", "annotations": []})
            item_id, index, pieces = self._text
            pieces.append(item.text)
            self.seq += 1
            return out + (b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
                          b'"sequence_number":%d,"item_id":"%s","output_index":%d,"content_index":0,"delta":%s,'
                          b'"logprobs":[]}\n\n' % (self.seq - 1, item_id.encode(), index,
                                                   json.dumps(item.text, ensure_ascii=False).encode()))
        if isinstance(item, ToolCallStarted):
            out = self._close_open()
            item_id, index = new_id("fc_"), len(self.output)
            call = ToolCall(item.id, item.name)
            self._call = (item_id, index, call)
            return out + self._event("response.output_item.added", output_index=index,
                                     item=_call_item(item_id, call, "in_progress"))
        if isinstance(item, ToolCallDelta) and self._call is not None:
            item_id, index, call = self._call
            call.arguments += item.arguments
            return self._event("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                               delta=item.arguments)
        if isinstance(item, Finished):
            out = self._close_open()
            status = _status(item.stop_reason)
            response = _response(self.id, self.model, status, self.output, item.usage or Usage(), item.stop_reason)
            return out + self._event(f"response.{status}", response=response)
        if isinstance(item, Failed):
            out = self._close_open()
            response = _response(self.id, self.model, "failed", self.output, None, STOP)
            response["error"] = {"code": "server_error" if item.status >= 500 else "invalid_request",
                                 "message": item.message}
            return out + self._event("response.failed", response=response)
        return b""


def aggregate(events: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The response object a Responses stream describes (its final event's, with the items streamed)."""
    items = [e["item"] for e in events if e.get("type") == "response.output_item.done" and isinstance(e.get("item"),
                                                                                                        dict)]
    for payload in reversed(events):
        if payload.get("type") in ("response.completed", "response.incomplete") and isinstance(
                payload.get("response"), dict):
            response = dict(payload["response"])
            if not response.get("output"):
                response["output"] = items
            return response
    return None

