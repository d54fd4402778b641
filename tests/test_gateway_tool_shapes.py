"""What each agent tool really sends, replayed through the gateway's /v1 against the strict fakes.

The request shapes are the ones recorded from opencode 1.18, aider 0.86 (LiteLLM 1.81),
LiteLLM 1.108/1.110, llm 0.36 and Code Puppy 0.0.946 (tests/test_tools_*.py run the
tools themselves): the system prompt in four places, output limits, replayed item ids,
``"strict": null``, JSON-schema extras, a second system message after the user turn,
``/v1/messages?beta=true`` with an upper-case ``X-Api-Key``, and a backend that breaks
off mid-answer. Each test checks what the strict fake accepted.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from oauth_core.gateway import neutral
from oauth_core.gateway.dialects import responses as responses_dialect
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX

from . import test_gateway_sdk
from .test_gateway_sdk import CODEX, KEY, MESSAGES, SONNET

stack = test_gateway_sdk.stack  # the same module-scoped fixture: both fakes signed in, serve running

OPENCODE_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                   "properties": {"command": {"type": "string"}, "timeout": {"type": "number"}},
                   "required": ["command"]}
CODE_PUPPY_SCHEMA = {"type": "object", "properties": {"directory": {"type": "string"}},
                     "required": ["directory"], "additionalProperties": False}


def post(stack: Any, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
    sent = {"Authorization": f"Bearer {KEY}", **headers}
    return requests.post(f"{stack.server.base_url}{path}", json=body, headers=sent, timeout=30)


def events(response: requests.Response) -> list[tuple[str | None, Any]]:
    """(event name, decoded data) of an SSE answer."""
    found, name = [], None
    for line in response.text.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
            found.append((name, data if data == "[DONE]" else json.loads(data)))
            name = None
    return found


def last_codex(stack: Any) -> Any:
    return stack.codex.requests_to(CODEX)[-1]


def last_claude(stack: Any) -> Any:
    return stack.claude.requests_to(MESSAGES)[-1]


# -- the Codex backend: instructions, store, limits, ids, strict ------------------------------------------


@pytest.mark.parametrize(("shape", "instructions"), [
    ("instructions", "Be brief."),  # aider (LiteLLM 1.81), LiteLLM 1.108, Code Puppy, llm -s
    ("developer item", "Be brief."),  # opencode (@ai-sdk/openai)
    ("system message item", "Be brief."),  # LiteLLM 1.110's bridge
    ("none", "You are a helpful assistant."),  # llm without -s
])
def test_the_system_prompt_in_each_shape_becomes_codex_instructions(stack, shape, instructions):
    user = {"role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    body: dict[str, Any] = {"model": "chatgpt/gpt-5", "input": [user], "stream": True}
    if shape == "instructions":
        body["instructions"] = "Be brief."
    elif shape == "developer item":
        body.update(input=[{"role": "developer", "content": "Be brief."}, user], store=False,
                    max_output_tokens=32000, include=["reasoning.encrypted_content"],
                    reasoning={"effort": "medium", "summary": "auto"}, prompt_cache_key="ses_1")
    elif shape == "system message item":
        body["input"] = [{"type": "message", "role": "system",
                          "content": [{"type": "input_text", "text": "Be brief."}]}, user]
    answer = post(stack, "/v1/responses", body)
    assert answer.status_code == 200, answer.text
    assert events(answer)[-1][1]["type"] == "response.completed"
    seen = last_codex(stack)
    assert seen.status == 200
    assert seen.json["instructions"] == instructions
    assert [i.get("role") for i in seen.json["input"]] == ["user"]
    assert seen.json["store"] is False and "max_output_tokens" not in seen.json


def test_code_puppys_responses_request_with_a_replayed_call_id_is_accepted(stack):
    tool = {"name": "list_files", "parameters": CODE_PUPPY_SCHEMA, "type": "function",
            "description": "List files", "strict": False}
    body = {"model": "chatgpt/gpt-5", "stream": True, "include": ["reasoning.encrypted_content"],
            "instructions": "You are Pup.", "max_output_tokens": 128000, "reasoning": {"effort": "medium",
                                                                                        "summary": "auto"},
            "text": {"verbosity": "medium"}, "tool_choice": "auto", "tools": [tool],
            "input": [{"role": "user", "content": "List the files here"},
                      {"name": "list_files", "arguments": '{"directory": "."}', "call_id": "call_1",
                       "type": "function_call", "id": "fc_rec1"},
                      {"type": "function_call_output", "call_id": "call_1", "output": "README.md"}]}
    answer = post(stack, "/v1/responses", body)
    assert answer.status_code == 200, answer.text
    seen = last_codex(stack)
    assert seen.status == 200 and seen.json["store"] is False and "max_output_tokens" not in seen.json
    call = next(i for i in seen.json["input"] if i.get("type") == "function_call")
    assert "id" not in call and call["call_id"] == "call_1"  # nothing is stored with store:false


def test_a_tool_with_strict_null_is_sent_non_strict(stack):
    """LiteLLM's chat→Responses bridge sends ``"strict": null``; left so, the tool would be strict."""
    tool = {"type": "function", "name": "bash", "description": "Run a command", "parameters": OPENCODE_SCHEMA,
            "strict": None}
    body = {"model": "chatgpt/gpt-5", "input": [{"type": "message", "role": "user", "content": "ls"}],
            "instructions": "Be brief.", "tools": [tool], "stream": False}
    answer = post(stack, "/v1/responses", body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["output"][-1]["type"] == "function_call"
    assert last_codex(stack).json["tools"][0]["strict"] is False


def test_opencodes_chat_tools_reach_codex_as_non_strict_function_tools(stack):
    tool = {"type": "function", "function": {"name": "bash", "description": "Run a command",
                                             "parameters": OPENCODE_SCHEMA}}
    body = {"model": "chatgpt/gpt-5", "max_tokens": 32000, "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": "You are OpenCode."}, {"role": "user", "content": "ls"}],
            "tools": [tool], "tool_choice": "auto", "reasoning_effort": "medium"}
    answer = post(stack, "/v1/chat/completions", body)
    assert answer.status_code == 200, answer.text
    chunks = [data for _, data in events(answer) if data != "[DONE]"]
    calls = [c for chunk in chunks for choice in chunk["choices"] for c in choice["delta"].get("tool_calls", [])]
    assert calls[0]["function"]["name"] == "bash"
    seen = last_codex(stack)
    assert seen.status == 200 and seen.json["instructions"] == "You are OpenCode."
    assert seen.json["tools"] == [{"type": "function", "name": "bash", "description": "Run a command",
                                   "parameters": OPENCODE_SCHEMA, "strict": False}]


@pytest.mark.parametrize("model", ["chatgpt/gpt-5", f"claude_code/{SONNET}"])
def test_aiders_second_system_message_after_the_user_turn(stack, model):
    body = {"model": model, "stream": True, "temperature": 0, "messages": [
        {"role": "system", "content": "Act as an expert software developer."},
        {"role": "user", "content": "Change the greeting."},
        {"role": "assistant", "content": "Ok."},
        {"role": "user", "content": "Say hello"},
        {"role": "system", "content": "Reply with SEARCH/REPLACE blocks."},
    ]}
    answer = post(stack, "/v1/chat/completions", body)
    assert answer.status_code == 200, answer.text
    assert events(answer)[-1][1] == "[DONE]"
    if model.startswith("chatgpt/"):
        seen = last_codex(stack)
        assert seen.json["instructions"] == "Act as an expert software developer.\n\nReply with SEARCH/REPLACE blocks."
        assert [i["role"] for i in seen.json["input"]] == ["user", "assistant", "user"]
    else:
        seen = last_claude(stack)
        assert [b["text"] for b in seen.json["system"]] == [
            CLAUDE_CODE_SYSTEM_PREFIX, "Act as an expert software developer.\n\nReply with SEARCH/REPLACE blocks."]
        assert [m["role"] for m in seen.json["messages"]] == ["user", "assistant", "user"]
    assert seen.status == 200


# -- Anthropic Messages: Code Puppy's and opencode's requests ---------------------------------------------------


def test_code_puppys_messages_request_with_beta_query_and_upper_case_key(stack):
    body = {"max_tokens": 64000, "model": f"claude_code/{SONNET}", "stream": True, "temperature": 1.0,
            "thinking": {"type": "enabled", "budget_tokens": 10000}, "tool_choice": {"type": "auto"},
            "system": [{"type": "text", "text": "You are Pup.", "cache_control": {"type": "ephemeral", "ttl": "5m"}},
                       {"type": "text", "text": "Environment: linux"}],
            "tools": [{"name": "list_files", "description": "List files", "input_schema": CODE_PUPPY_SCHEMA}],
            "messages": [{"role": "user", "content": "List the files here"}]}
    answer = requests.post(f"{stack.server.base_url}/v1/messages?beta=true", json=body, timeout=30, headers={
        "X-Api-Key": KEY, "anthropic-version": "2023-06-01", "user-agent": "claude-cli/2.1.280 (external, cli)",
        "anthropic-beta": "oauth-2025-04-20,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"})
    assert answer.status_code == 200, answer.text
    assert [name for name, _ in events(answer)][-1] == "message_stop"
    seen = last_claude(stack)
    assert seen.status == 200 and seen.query == {}  # the SDK's ?beta=true is not the API's business
    assert seen.headers["anthropic-beta"].split(",") == [
        "claude-code-20250219", "oauth-2025-04-20", "interleaved-thinking-2025-05-14",
        "fine-grained-tool-streaming-2025-05-14"]
    assert seen.json["system"][0] == {"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}
    assert seen.json["system"][1:] == body["system"] and seen.json["thinking"] == body["thinking"]
    assert KEY not in json.dumps(dict(seen.headers))


@pytest.mark.parametrize("model", [f"claude_code/{SONNET}", "chatgpt/gpt-5"])
def test_opencodes_and_litellms_anthropic_tools(stack, model):
    """opencode's tools carry ``eager_input_streaming`` and ``$schema``, LiteLLM's ``type: custom``: the
    Messages API takes them (Claude Code itself sends eager_input_streaming), so they pass to Claude
    unchanged; to another backend they become plain function tools."""
    tools = [{"name": "bash", "description": "Run a command", "input_schema": OPENCODE_SCHEMA,
              "eager_input_streaming": True},
             {"type": "custom", "name": "read", "description": "Read a file", "input_schema": CODE_PUPPY_SCHEMA}]
    body = {"model": model, "max_tokens": 32000, "stream": True, "tool_choice": {"type": "auto"}, "tools": tools,
            "system": [{"type": "text", "text": "You are OpenCode.", "cache_control": {"type": "ephemeral"}}],
            "messages": [{"role": "user", "content": [{"type": "text", "text": "ls"}]}]}
    answer = post(stack, "/v1/messages", body, **{"anthropic-version": "2023-06-01"})
    assert answer.status_code == 200, answer.text
    starts = [data["content_block"] for name, data in events(answer) if name == "content_block_start"]
    assert starts[-1]["type"] == "tool_use" and starts[-1]["name"] == "bash"
    if model.startswith("claude_code/"):
        seen = last_claude(stack)
        assert seen.json["tools"] == tools
    else:
        seen = last_codex(stack)
        assert [(t["name"], t["strict"], t["parameters"]) for t in seen.json["tools"]] == [
            ("bash", False, OPENCODE_SCHEMA), ("read", False, CODE_PUPPY_SCHEMA)]
    assert seen.status == 200


# -- a backend that breaks off mid-answer ---------------------------------------------------------------------


def _ask(stack: Any, dialect: str, model: str) -> requests.Response:
    if dialect == "chat":
        return post(stack, "/v1/chat/completions", {"model": model, "stream": True,
                                                    "messages": [{"role": "user", "content": "hi"}]})
    if dialect == "responses":
        return post(stack, "/v1/responses", {"model": model, "stream": True, "input": "hi"})
    return post(stack, "/v1/messages", {"model": model, "stream": True, "max_tokens": 100,
                                        "messages": [{"role": "user", "content": "hi"}]},
                **{"anthropic-version": "2023-06-01"})


@pytest.mark.parametrize(("dialect", "model"), [
    ("responses", "chatgpt/gpt-5"),  # same dialect: relayed
    ("messages", f"claude_code/{SONNET}"),  # same dialect: relayed
    ("chat", "chatgpt/gpt-5"),  # translated
    ("chat", f"claude_code/{SONNET}"),  # translated
    ("messages", "chatgpt/gpt-5"),  # translated
])
def test_a_backend_that_breaks_off_is_reported_in_the_stream(stack, dialect, model):
    fake = stack.codex if model.startswith("chatgpt/") else stack.claude
    fake.stream_break = True
    try:
        answer = _ask(stack, dialect, model)
    finally:
        fake.stream_break = False
    assert answer.status_code == 200  # the stream had begun: the error can only come inside it
    name, last = events(answer)[-1]
    if dialect == "chat":
        assert last["error"]["type"] == "server_error" and "before" in last["error"]["message"]
    elif dialect == "responses":
        assert name == "response.failed" and "before" in last["response"]["error"]["message"]
    else:
        assert name == "error" and last["error"]["type"] == "api_error" and "before" in last["error"]["message"]
    assert any(name not in (None, "error", "response.failed") or (name is None and "choices" in data)
               for name, data in events(answer)[:-1])  # what arrived before the break was passed on


def test_a_failed_response_keeps_a_status_that_says_whether_to_retry():
    def status(code: str) -> int:
        reader = responses_dialect.StreamReader()
        (failed,) = reader.feed("response.failed", json.dumps({"type": "response.failed", "response": {
            "error": {"code": code, "message": "no"}}}))
        assert isinstance(failed, neutral.Failed)
        return failed.status

    assert [status(c) for c in ("rate_limit_exceeded", "server_error", "invalid_prompt",
                                "context_length_exceeded")] == [429, 500, 400, 400]
