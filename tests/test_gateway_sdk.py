"""The official ``openai`` and ``anthropic`` SDKs through ``oauth-hub serve``'s /v1, on both subscriptions.

Each test drives a real SDK against the gateway, which talks to the strict fakes of the
ChatGPT Codex backend and of Anthropic's Messages API (a subscription sign-in on
each), and then checks what the fake received: the rules of each backend (Codex:
instructions, ``store: false``, ``stream: true``, no output limit; Claude: the identity
system line, merged betas, Claude Code's headers) and the translated content (system
text, tool calls and their results with the same ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
import tomli_w

from oauth_core import serve as hub_serve
from oauth_core.accounts import load_credentials
from oauth_core.http import HttpClient
from oauth_core.login import build_model_entries, write_model_entries
from oauth_core.provider import Provider
from oauth_core.store import Store
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX, FakeAnthropic
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

KEY = "gateway-sdk-test-key-0123456789abcdef"
CODEX = "/backend-api/codex/responses"
MESSAGES = "/v1/messages"
SONNET = "claude-sonnet-4-20250514"
WEATHER_OPENAI = {"type": "function", "function": {
    "name": "weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
WEATHER_RESPONSES = {"type": "function", "name": "weather", "description": "The weather in a city",
                     "parameters": WEATHER_OPENAI["function"]["parameters"]}
WEATHER_ANTHROPIC = {"name": "weather", "description": "The weather in a city",
                     "input_schema": WEATHER_OPENAI["function"]["parameters"]}


def seed_models(provider: str, home: Path) -> None:
    store = Store(home)
    loaded = Provider.load(provider, store)
    entries = build_model_entries(loaded, HttpClient(), load_credentials(provider, store))
    write_model_entries(store.models_path(provider), entries, loaded.settings["oauth_source"])


@dataclass
class Stack:
    server: Any
    codex: FakeOpenAI
    claude: FakeAnthropic
    home: Path

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.base_url}/v1", api_key=KEY, max_retries=0)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.server.base_url, api_key=KEY, max_retries=0)

    def mark(self) -> tuple[int, int]:
        return len(self.codex.requests_to(CODEX)), len(self.claude.requests_to(MESSAGES))

    def received(self, model: str, mark: tuple[int, int]) -> list[Any]:
        """What the fake behind ``model`` received since ``mark``."""
        if model.startswith("chatgpt/"):
            return self.codex.requests_to(CODEX)[mark[0]:]
        return self.claude.requests_to(MESSAGES)[mark[1]:]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("gateway") / "home"
    home.mkdir(mode=0o700)
    with FakeOpenAI(organization_id=None, project_id=None) as codex, FakeAnthropic(stream_delay=0) as claude:
        (home / "config.toml").write_text(tomli_w.dumps({"providers": {
            "chatgpt": {"issuer": codex.issuer, "api_base": codex.api_base, "chatgpt_base": codex.chatgpt_base},
            "claude_code": claude.provider_settings(),
        }}))
        seed_sign_in("chatgpt", codex.mint_tokens(), home=home)
        seed_models("chatgpt", home)
        seed_sign_in("claude_code", claude.mint_tokens(), home=home)
        seed_models("claude_code", home)
        server = hub_serve.make_server(port=0, key=KEY, home=home)
        hub_serve.start_in_thread(server)
        try:
            yield Stack(server, codex, claude, home)
        finally:
            server.shutdown()
            server.server_close()


MODELS = ["chatgpt/gpt-5", f"claude_code/{SONNET}"]


def check_backend_rules(stack: Stack, model: str, seen: Any, system: str | None) -> None:
    """The backend's own rules, on the request the fake accepted."""
    assert seen.status == 200
    body, headers = seen.json, seen.headers
    if model.startswith("chatgpt/"):
        assert body["model"] == "gpt-5"
        assert body["store"] is False and body["stream"] is True
        assert body["instructions"] == (system or "You are a helpful assistant.")
        assert not {"max_output_tokens", "max_tokens", "max_completion_tokens", "temperature"} & set(body)
        assert "reasoning.encrypted_content" in body["include"]
        assert headers["chatgpt-account-id"] == stack.codex.account_id
        assert headers["originator"] == "codex_cli_rs"
        assert headers["session_id"] and "openai-beta" not in headers  # as Codex 0.171 sends them
        assert headers["authorization"].startswith("Bearer ey")
        assert KEY not in json.dumps(headers)
    else:
        assert body["model"] == SONNET
        assert body["system"][0] == {"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}
        if system:
            assert body["system"][1:] == [{"type": "text", "text": system}]
        betas = headers["anthropic-beta"].split(",")
        assert "oauth-2025-04-20" in betas and "claude-code-20250219" in betas
        assert headers["x-app"] == "cli" and headers["user-agent"].startswith("claude-cli/")
        assert headers["authorization"].startswith("Bearer sk-ant-oat01-")
        assert "x-api-key" not in headers and KEY not in json.dumps(headers)


def user_text(model: str, seen: Any) -> str:
    """The user's words as the backend got them."""
    if model.startswith("chatgpt/"):
        items = [i for i in seen.json["input"] if i.get("role") == "user"]
        return "".join(p["text"] for p in items[0]["content"])
    content = seen.json["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b["text"] for b in content)


def tool_exchange(model: str, seen: Any) -> tuple[str, str, str]:
    """(call id, call id the result answers, result text) as the backend got the follow-up."""
    if model.startswith("chatgpt/"):
        call = next(i for i in seen.json["input"] if i.get("type") == "function_call")
        result = next(i for i in seen.json["input"] if i.get("type") == "function_call_output")
        return call["call_id"], result["call_id"], result["output"]
    assistant = seen.json["messages"][1]["content"]
    call = next(b for b in assistant if b["type"] == "tool_use")
    result = seen.json["messages"][2]["content"][0]
    return call["id"], result["tool_use_id"], result["content"]


# -- the models list ----------------------------------------------------------------------------------


def test_models_list_in_both_shapes(stack):
    ids = [m.id for m in stack.openai().models.list()]
    assert sorted(ids) == sorted(["chatgpt/gpt-5-codex", "chatgpt/gpt-5", "chatgpt/gpt-5-mini",
                                  *[f"claude_code/{m['id']}" for m in stack.claude.models]])
    assert "chatgpt/codex-mini-latest" not in ids  # hidden by the plan's listing
    listed = [m.id for m in stack.anthropic().models.list()]
    assert listed == ids
    assert stack.anthropic().models.retrieve(f"claude_code/{SONNET}").id == f"claude_code/{SONNET}"


# -- openai SDK: Chat Completions -------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_openai_chat_plain(stack, model):
    mark = stack.mark()
    answer = stack.openai().chat.completions.create(
        model=model, max_tokens=50,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "ping"}])
    reply = stack.codex.reply_text if model.startswith("chatgpt/") else stack.claude.reply_text
    assert answer.choices[0].message.content == reply
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage.prompt_tokens > 0 and answer.usage.completion_tokens > 0
    (seen,) = stack.received(model, mark)
    check_backend_rules(stack, model, seen, "Be brief.")
    assert user_text(model, seen) == "ping"
    if model.startswith("claude_code/"):
        assert seen.json["max_tokens"] == 50


@pytest.mark.parametrize("model", MODELS)
def test_openai_chat_streaming(stack, model):
    mark = stack.mark()
    chunks = list(stack.openai().chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "ping"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "pong"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    (seen,) = stack.received(model, mark)
    check_backend_rules(stack, model, seen, None)
    assert seen.json.get("stream") is True


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_chat_tools_round_trip(stack, model, stream):
    client = stack.openai()
    mark = stack.mark()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with client.chat.completions.stream(model=model, messages=messages, tools=[WEATHER_OPENAI]) as events:
            first = events.get_final_completion()
    else:
        first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_OPENAI])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_OPENAI])
    assert second.choices[0].message.content == "pong"
    offered, followed = stack.received(model, mark)
    check_backend_rules(stack, model, offered, None)
    tools = offered.json["tools"]
    assert [t.get("name") for t in tools] == ["weather"]
    assert (tools[0].get("parameters") or tools[0].get("input_schema")) == WEATHER_OPENAI["function"]["parameters"]
    call_id, answered, result = tool_exchange(model, followed)
    assert call_id == answered == call.id and result == "sunny, 21 C"


# -- openai SDK: Responses -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_openai_responses_plain(stack, model):
    mark = stack.mark()
    answer = stack.openai().responses.create(model=model, instructions="Be brief.", input="ping",
                                             max_output_tokens=64)
    assert answer.output_text == "pong" and answer.status == "completed"
    assert answer.usage.input_tokens > 0
    (seen,) = stack.received(model, mark)
    check_backend_rules(stack, model, seen, "Be brief.")
    assert user_text(model, seen) == "ping"


@pytest.mark.parametrize("model", MODELS)
def test_openai_responses_streaming(stack, model):
    mark = stack.mark()
    with stack.openai().responses.stream(model=model, input=[
            {"role": "developer", "content": "Be brief."}, {"role": "user", "content": "ping"}]) as events:
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        final = events.get_final_response()
    assert "".join(deltas) == "pong" and final.output_text == "pong"
    assert final.usage.total_tokens > 0
    (seen,) = stack.received(model, mark)
    # A developer message is the system prompt: Codex wants it as instructions.
    check_backend_rules(stack, model, seen, "Be brief.")
    if model.startswith("chatgpt/"):
        assert all(i.get("role") != "developer" for i in seen.json["input"])


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_responses_tools_round_trip(stack, model, stream):
    client = stack.openai()
    mark = stack.mark()
    if stream:
        with client.responses.stream(model=model, input="Weather in Paris?", tools=[WEATHER_RESPONSES]) as events:
            first = events.get_final_response()
    else:
        first = client.responses.create(model=model, input="Weather in Paris?", tools=[WEATHER_RESPONSES])
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "weather" and json.loads(call.arguments) == {"city": "Paris"}
    follow = [{"role": "user", "content": "Weather in Paris?"},
              *[o.model_dump(exclude_none=True) for o in first.output],
              {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}]
    second = client.responses.create(model=model, input=follow, tools=[WEATHER_RESPONSES])
    assert second.output_text == "pong"
    offered, followed = stack.received(model, mark)
    check_backend_rules(stack, model, offered, None)
    call_id, answered, result = tool_exchange(model, followed)
    assert call_id == answered == call.call_id and result == "sunny, 21 C"
    if model.startswith("chatgpt/"):  # items streamed back with ids: Codex stores nothing, so ids must go
        assert all("id" not in item for item in followed.json["input"])


# -- anthropic SDK: Messages -------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_messages_plain(stack, model):
    mark = stack.mark()
    answer = stack.anthropic().messages.create(model=model, max_tokens=64, system="Be brief.",
                                               messages=[{"role": "user", "content": "ping"}])
    assert [b.text for b in answer.content] == ["pong"]
    assert answer.stop_reason == "end_turn" and answer.usage.output_tokens > 0
    (seen,) = stack.received(model, mark)
    check_backend_rules(stack, model, seen, "Be brief.")
    assert user_text(model, seen) == "ping"


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_messages_streaming(stack, model):
    mark = stack.mark()
    with stack.anthropic().messages.stream(model=model, max_tokens=64,
                                           messages=[{"role": "user", "content": "ping"}]) as events:
        text = "".join(events.text_stream)
        final = events.get_final_message()
    assert text == "pong" and final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    (seen,) = stack.received(model, mark)
    check_backend_rules(stack, model, seen, None)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_messages_tools_round_trip(stack, model, stream):
    client = stack.anthropic()
    mark = stack.mark()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with client.messages.stream(model=model, max_tokens=256, messages=messages,
                                    tools=[WEATHER_ANTHROPIC]) as events:
            first = events.get_final_message()
    else:
        first = client.messages.create(model=model, max_tokens=256, messages=messages, tools=[WEATHER_ANTHROPIC])
    assert first.stop_reason == "tool_use"
    (call,) = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "weather" and call.input == {"city": "Paris"}
    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "sunny, 21 C"}]}]
    second = client.messages.create(model=model, max_tokens=256, messages=messages, tools=[WEATHER_ANTHROPIC])
    assert [b.text for b in second.content if b.type == "text"] == ["pong"]
    offered, followed = stack.received(model, mark)
    check_backend_rules(stack, model, offered, None)
    call_id, answered, result = tool_exchange(model, followed)
    assert call_id == answered == call.id and result == "sunny, 21 C"


# -- errors in the caller's dialect ------------------------------------------------------------------------


def test_backend_errors_reach_each_sdk_with_their_message(stack):
    stack.codex.fail_next(CODEX, 429, {"detail": "You have hit your ChatGPT usage limit."},
                          headers={"retry-after": "7"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        stack.anthropic().messages.create(model="chatgpt/gpt-5", max_tokens=8,
                                          messages=[{"role": "user", "content": "x"}])
    assert caught.value.body["error"] == {"type": "rate_limit_error",
                                          "message": "You have hit your ChatGPT usage limit."}
    assert caught.value.response.headers["retry-after"] == "7"
    stack.claude.fail_next(MESSAGES, 529)
    with pytest.raises(openai.InternalServerError) as failed:
        stack.openai().chat.completions.create(model=f"claude_code/{SONNET}",
                                               messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 529 and failed.value.body["type"] == "server_error"
    with pytest.raises(openai.NotFoundError, match="does not offer the model 'gpt-4o'"):
        stack.openai().chat.completions.create(model="chatgpt/gpt-4o", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.NotFoundError, match="No signed-in provider offers the model 'nope'"):
        stack.anthropic().messages.create(model="nope", max_tokens=8, messages=[{"role": "user", "content": "x"}])


def test_models_route_by_entry_name_and_bare_id(stack):
    client = stack.openai()
    mark = stack.mark()
    for name in ("chatgpt-gpt-5-mini", "gpt-5-mini", "claude-code-claude-3-5-haiku-20241022"):
        assert client.chat.completions.create(model=name, messages=[{"role": "user", "content": "x"}]).choices
    first, second = stack.received("chatgpt/", mark)
    assert first.json["model"] == second.json["model"] == "gpt-5-mini"
    (haiku,) = stack.received("claude_code/", mark)
    assert haiku.json["model"] == "claude-3-5-haiku-20241022"
    assert haiku.headers["anthropic-beta"] == "oauth-2025-04-20"  # Claude Code sends its own beta but for Haiku
