"""The ChatGPT Codex backend's ``POST /backend-api/codex/responses``, as strict as the real one.

Part of :class:`~oauth_core.testing.fake_openai.FakeOpenAI` (a mixin: it shares the
fake's tokens, lock and request log). The rules are the ones public reference clients
document for a ChatGPT-subscription access token (openai/codex ``codex-rs/codex-api``,
the opencode Codex plugins, ChatMock):

* ``Authorization: Bearer <access token>`` and a ``ChatGPT-Account-Id`` that matches it;
* a top-level ``instructions`` string (a system prompt sent as an input item does not
  count): ``400 {"detail": "Instructions are required"}``;
* ``store`` must be ``false``, and leaving it out is wrong too; ``stream`` must be ``true``;
* no ``max_output_tokens`` / ``max_tokens`` / ``max_completion_tokens`` and none of the
  sampling parameters the reference clients strip (``Unsupported parameter: …``);
* no ``item_reference`` items, no stored item ids and no ``previous_response_id``: with
  ``store: false`` nothing is persisted;
* only models the plan allows (the fake's ``codex_models``);
* every ``function_call_output`` answers a ``function_call`` of the same input;
* a function tool is strict unless it says ``"strict": false`` (the Responses API's
  default; Codex itself always sends ``false``), and a strict tool's schema must follow
  the structured-outputs rules (``additionalProperties: false`` and every property
  required, on every object) or the request is refused.

The answer is always a stream of server-sent events in the Responses API's shape
(``response.created`` … ``response.completed`` with usage), with the plan's rate-limit
state in ``x-codex-*`` headers. The reply: a function call to the first tool when the
request offers tools and the input holds no tool output yet, else ``reply_text``; a
reasoning item first when ``include`` asks for ``reasoning.encrypted_content``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from oauth_core.testing._server import JSON, Break, ReplyError, Request, Response, Stall, json_response

#: Parameters the backend refuses (the reference clients never send them).
UNSUPPORTED = ("max_output_tokens", "max_tokens", "max_completion_tokens", "temperature", "top_p")
NOT_PERSISTED = ("Item with id '{id}' not found. Items are not persisted when `store` is set to false. "
                 "Try again with `store` set to true, or remove this item from your input.")


def _detail(status: int, message: str) -> ReplyError:
    """The Codex backend's own error shape: ``{"detail": "..."}``."""
    return ReplyError(json_response(status, {"detail": message}))


def _param_error(message: str, param: str | None, code: str | None = None) -> ReplyError:
    return ReplyError(json_response(400, {"error": {"message": message, "type": "invalid_request_error",
                                                     "param": param, "code": code}}))


def _sse(data: dict[str, Any]) -> bytes:
    return f"event: {data['type']}\ndata: {json.dumps(data)}\n\n".encode()


def _chunks(text: str, parts: int = 3) -> list[str]:
    if len(text) < parts:
        return [text]
    step = -(-len(text) // parts)
    return [text[i:i + step] for i in range(0, len(text), step)]


def _strict_schema_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """Why ``schema`` cannot be used in strict mode (the Responses API's structured-outputs rules), or None.

    Every object must list all its properties in ``required`` and set
    ``additionalProperties: false``; the API's message names the place as a tuple.
    """
    if not isinstance(schema, dict):
        return None
    where = f"In context={context!r}" if context else "In context=()"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"{where}, 'additionalProperties' is required to be supplied and to be false."
        properties = schema.get("properties") or {}
        missing = [k for k in properties if k not in (schema.get("required") or [])]
        if missing:
            return (f"{where}, 'required' is required to be supplied and to be an array including every key in "
                    f"properties. Missing '{missing[0]}'.")
        for name, sub in properties.items():
            problem = _strict_schema_problem(sub, (*context, "properties", name))
            if problem:
                return problem
    if isinstance(schema.get("items"), dict):
        return _strict_schema_problem(schema["items"], (*context, "items"))
    return None


class CodexResponsesMixin:
    """Adds ``/backend-api/codex/responses`` to FakeOpenAI. See the module docstring."""

    #: The assistant's text answer (streamed in three deltas).
    reply_text: str = "pong"
    #: The arguments (JSON text) of the function call the fake makes when offered tools.
    tool_call_arguments: str = '{"city": "Paris"}'
    #: The tool the fake calls when offered it (by name); otherwise the first tool offered.
    tool_call_name: str | None = None
    #: Seconds between streamed deltas.
    stream_delay: float = 0.0
    #: When > 0, the stream goes silent this long after its first delta (a model that
    #: thinks), and notices meanwhile when the client hangs up (``aborted_streams``).
    stream_stall: float = 0.0
    #: When true, the backend dies after the first delta: the connection closes mid-answer.
    stream_break: bool = False
    #: Rate-limit state sent back in headers: window -> (used percent, window minutes, resets in s).
    codex_usage: dict[str, tuple[float, int, int]] = {  # noqa: RUF012 - replaced per instance
        "primary": (12.0, 300, 3600),
        "secondary": (40.0, 10080, 86400),
    }

    def _codex_rate_headers(self) -> dict[str, str]:
        headers = {}
        now = int(self.now())  # type: ignore[attr-defined]
        for name, (used, minutes, resets_in) in self.codex_usage.items():
            headers[f"x-codex-{name}-used-percent"] = f"{used:g}"
            headers[f"x-codex-{name}-window-minutes"] = str(minutes)
            headers[f"x-codex-{name}-reset-after-seconds"] = str(resets_in)
            headers[f"x-codex-{name}-reset-at"] = str(now + resets_in)
        return headers

    def _codex_responses(self, req: Request) -> Response:
        self._codex_caller(req)  # type: ignore[attr-defined]
        if req.content_type != JSON or not isinstance(req.json, dict):
            raise _detail(400, "Request body must be a JSON object.")
        body: dict[str, Any] = req.json
        instructions = body.get("instructions")
        if not isinstance(instructions, str) or not instructions.strip():
            raise _detail(400, "Instructions are required")
        if body.get("store") is not False:
            raise _detail(400, "Store must be set to false")
        if body.get("stream") is not True:
            raise _detail(400, "Stream must be set to true")
        for param in UNSUPPORTED:
            if param in body:
                raise _detail(400, f"Unsupported parameter: {param}")
        if body.get("previous_response_id"):
            raise _detail(400, "Previous response cannot be used when `store` is set to false.")
        model = body.get("model")
        allowed = {m.get("slug") for m in self.codex_models}  # type: ignore[attr-defined]
        if not isinstance(model, str) or model not in allowed:
            raise _detail(400, f"The '{model}' model is not supported when using Codex with a ChatGPT account.")
        items = self._codex_input(body.get("input"))
        tools = self._codex_tools(body.get("tools"))
        return Response(
            200,
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", **self._codex_rate_headers()},
            stream=self._codex_events(body, model, items, tools),
        )

    @staticmethod
    def _codex_input(raw: Any) -> list[dict[str, Any]]:
        if isinstance(raw, str):
            return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
        if not isinstance(raw, list):
            raise _param_error("Invalid type for 'input': expected a string or an array of input items.", "input")
        calls: set[str] = set()
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                raise _param_error(f"Invalid type for 'input[{index}]': expected an object.", f"input[{index}]")
            kind = item.get("type", "message")
            if kind == "item_reference" or "id" in item:
                raise _param_error(NOT_PERSISTED.format(id=item.get("id")), "input")
            if kind == "message":
                if item.get("role") not in ("user", "assistant", "system", "developer"):
                    raise _param_error(f"Invalid value for 'input[{index}].role'.", f"input[{index}].role")
                if not isinstance(item.get("content"), (str, list)):
                    raise _param_error(f"Missing required parameter: 'input[{index}].content'.",
                                       f"input[{index}].content", "missing_required_parameter")
            elif kind == "function_call":
                for key in ("call_id", "name", "arguments"):
                    if not isinstance(item.get(key), str):
                        raise _param_error(f"Missing required parameter: 'input[{index}].{key}'.",
                                           f"input[{index}].{key}", "missing_required_parameter")
                calls.add(item["call_id"])
            elif kind == "function_call_output":
                if item.get("call_id") not in calls:
                    raise _param_error(f"No tool call found for function call output with call_id "
                                       f"{item.get('call_id')}.", "input")
                if not isinstance(item.get("output"), (str, list)):
                    raise _param_error(f"Missing required parameter: 'input[{index}].output'.",
                                       f"input[{index}].output", "missing_required_parameter")
            elif kind != "reasoning":
                raise _param_error(f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', "
                                   "'function_call_output', 'reasoning'.", f"input[{index}].type", "invalid_value")
        return list(raw)

    @staticmethod
    def _codex_tools(raw: Any) -> list[dict[str, Any]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise _param_error("Invalid type for 'tools': expected an array.", "tools")
        for index, tool in enumerate(raw):
            if not isinstance(tool, dict) or tool.get("type") != "function":
                continue  # built-in tools (web_search…) are not the fake's business
            if not isinstance(tool.get("name"), str):
                raise _param_error(f"Missing required parameter: 'tools[{index}].name'.", f"tools[{index}].name",
                                   "missing_required_parameter")
            if "strict" in tool and tool["strict"] is not None and not isinstance(tool["strict"], bool):
                raise _param_error(f"Invalid type for 'tools[{index}].strict': expected a boolean.",
                                   f"tools[{index}].strict", "invalid_type")
            if tool.get("strict") is not False:  # left out or null: the Responses API's default, strict
                problem = _strict_schema_problem(tool.get("parameters"))
                if problem:
                    raise _param_error(f"Invalid schema for function '{tool['name']}': {problem}",
                                       f"tools[{index}].parameters", "invalid_function_parameters")
        return [t for t in raw if isinstance(t, dict) and t.get("type") == "function"]

    def _codex_events(self, body: dict[str, Any], model: str, items: list[dict[str, Any]],
                      tools: list[dict[str, Any]]) -> Iterator[bytes | Stall | Break]:
        seq = iter(range(1 << 30))
        rid = "resp_" + secrets.token_hex(12)
        created = int(time.time())
        base = {"id": rid, "object": "response", "created_at": created, "model": model, "instructions":
                body["instructions"], "store": False, "tools": tools, "tool_choice": body.get("tool_choice", "auto"),
                "parallel_tool_calls": body.get("parallel_tool_calls", True), "output": [], "usage": None,
                "error": None, "incomplete_details": None, "metadata": {}, "text": {"format": {"type": "text"}},
                "reasoning": body.get("reasoning") or {"effort": None, "summary": None}}

        def event(kind: str, **fields: Any) -> bytes:
            return _sse({"type": kind, "sequence_number": next(seq), **fields})

        yield event("response.created", response={**base, "status": "in_progress"})
        yield event("response.in_progress", response={**base, "status": "in_progress"})
        output: list[dict[str, Any]] = []
        if "reasoning.encrypted_content" in (body.get("include") or []):
            item = {"id": "rs_" + secrets.token_hex(12), "type": "reasoning", "summary": [],
                    "encrypted_content": "gAAAAB" + secrets.token_urlsafe(24)}
            yield event("response.output_item.added", output_index=len(output), item={**item})
            yield event("response.output_item.done", output_index=len(output), item=item)
            output.append(item)
        answered = any(i.get("type") == "function_call_output" for i in items)
        call_tool = bool(tools) and body.get("tool_choice") != "none" and not answered
        index = len(output)
        stalled = False
        if call_tool:
            tool = next((t for t in tools if t.get("name") == self.tool_call_name), tools[0])
            item_id = "fc_" + secrets.token_hex(12)
            item = {"id": item_id, "type": "function_call", "status": "in_progress", "arguments": "",
                    "call_id": "call_" + secrets.token_hex(10), "name": tool["name"]}
            yield event("response.output_item.added", output_index=index, item=dict(item))
            for piece in _chunks(self.tool_call_arguments):
                if self.stream_delay:
                    time.sleep(self.stream_delay)
                yield event("response.function_call_arguments.delta", item_id=item_id, output_index=index,
                            delta=piece)
                if self.stream_break:
                    yield Break()
                    return
                if self.stream_stall and not stalled:
                    stalled = True
                    yield Stall(self.stream_stall)
            yield event("response.function_call_arguments.done", item_id=item_id, output_index=index,
                        arguments=self.tool_call_arguments)
            item.update(status="completed", arguments=self.tool_call_arguments)
        else:
            text = self.reply_text
            item_id = "msg_" + secrets.token_hex(12)
            item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
            yield event("response.output_item.added", output_index=index, item=dict(item))
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event("response.content_part.added", item_id=item_id, output_index=index, content_index=0,
                        part=part)
            for piece in _chunks(text):
                if self.stream_delay:
                    time.sleep(self.stream_delay)
                yield event("response.output_text.delta", item_id=item_id, output_index=index, content_index=0,
                            delta=piece, logprobs=[])
                if self.stream_break:
                    yield Break()
                    return
                if self.stream_stall and not stalled:
                    stalled = True
                    yield Stall(self.stream_stall)
            yield event("response.output_text.done", item_id=item_id, output_index=index, content_index=0,
                        text=text, logprobs=[])
            done_part = {"type": "output_text", "text": text, "annotations": []}
            yield event("response.content_part.done", item_id=item_id, output_index=index, content_index=0,
                        part=done_part)
            item.update(status="completed", content=[done_part])
        yield event("response.output_item.done", output_index=index, item=item)
        output.append(item)
        input_tokens = max(1, len(json.dumps(items)) // 4)
        output_tokens = max(1, len(json.dumps(item)) // 8)
        usage = {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": input_tokens + output_tokens}
        yield event("response.completed", response={**base, "status": "completed", "output": output, "usage": usage})
