"""GitHub Copilot and OpenRouter through `oauth-hub serve`'s /v1, driven by the official SDKs.

FakeCopilot refuses what the Copilot API refuses (no editor headers for an editor-app
token, a model called on an endpoint it does not list, an image without
Copilot-Vision-Request, an expired token), and FakeOpenRouter what OpenRouter does, so
a pass means the gateway sent each backend everything it requires; the tests then
read what the fakes received, header by header and field by field.
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
from oauth_core.testing.fake_copilot import FakeCopilot
from oauth_core.testing.fake_openrouter import FakeOpenRouter
from oauth_core.testing.seed import seed_sign_in

from .test_gateway_sdk import seed_models

KEY = "gateway-providers-test-key-0123456789ab"
ASK = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Say hello."}]
COPILOT_HEADERS = {"copilot-integration-id": "vscode-chat", "editor-version": "vscode/1.104.3",
                   "editor-plugin-version": "copilot-chat/0.26.7", "user-agent": "GitHubCopilotChat/0.26.7",
                   "x-github-api-version": "2025-04-01", "openai-intent": "conversation-panel"}


@dataclass
class Stack:
    server: Any
    copilot: FakeCopilot
    openrouter: FakeOpenRouter
    home: Path
    openrouter_key: str

    def openai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.server.base_url}/v1", api_key=KEY, max_retries=0)

    def anthropic(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.server.base_url, api_key=KEY, max_retries=0)

    def copilot_token(self) -> str:
        return json.loads((self.home / "copilot_oauth.json").read_text())["access_token"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    home = tmp_path_factory.mktemp("gateway-providers") / "home"
    home.mkdir(mode=0o700)
    with FakeCopilot() as copilot, FakeOpenRouter() as openrouter:
        (home / "config.toml").write_text(tomli_w.dumps({"providers": {
            "copilot": copilot.provider_settings(), "openrouter": openrouter.provider_settings()}}))
        seed_sign_in("copilot", copilot.mint_tokens(), home=home)
        seed_models("copilot", home)
        key = openrouter.mint_key(limit=1000.0)
        seed_sign_in("openrouter", {"access_token": key, "user_id": openrouter.user_id}, home=home, api_key=key)
        seed_models("openrouter", home)
        server = hub_serve.make_server(port=0, key=KEY, home=home)
        hub_serve.start_in_thread(server)
        try:
            yield Stack(server, copilot, openrouter, home, key)
        finally:
            server.shutdown()
            server.server_close()


def check_copilot_call(stack: Stack, seen: Any, path: str, model: str, stream: bool, initiator: str = "user") -> None:
    assert seen.status == 200
    assert seen.path == f"/api.individual.githubcopilot.com/{path}"  # the plan's host, from endpoints.api
    assert seen.headers["authorization"] == f"Bearer {stack.copilot_token()}"
    for name, value in COPILOT_HEADERS.items():
        assert seen.headers[name] == value, name
    assert seen.headers["x-initiator"] == initiator and seen.headers["x-request-id"]
    assert KEY not in json.dumps(seen.headers)
    assert seen.json["model"] == model and bool(seen.json.get("stream")) is stream


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
@pytest.mark.parametrize("model", ["copilot/gpt-4.1", "copilot/claude-sonnet-4.5"])
def test_openai_sdk_chat_through_copilot(stack, model, stream):
    before = len(stack.copilot.inference_requests())
    client = stack.openai()
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=ASK, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(model=model, messages=ASK)
        text = answer.choices[0].message.content
        assert answer.model == model.split("/", 1)[1]
    assert text == stack.copilot.reply_text
    (seen,) = stack.copilot.inference_requests()[before:]
    check_copilot_call(stack, seen, "chat/completions", model.split("/", 1)[1], stream)
    assert seen.json["messages"] == ASK  # same dialect: the caller's messages as sent


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_a_responses_only_model_is_reached_through_responses(stack, stream):
    """gpt-5-codex lists only /responses: a Chat Completions caller is translated, not refused."""
    before = len(stack.copilot.inference_requests())
    client = stack.openai()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="copilot/gpt-5-codex", messages=ASK, stream=True) if c.choices)
    else:
        text = client.chat.completions.create(model="copilot/gpt-5-codex", messages=ASK).choices[0].message.content
    assert text == stack.copilot.reply_text
    (seen,) = stack.copilot.inference_requests()[before:]
    assert seen.path.endswith("/responses")
    assert "messages" not in seen.json and seen.json["input"]
    assert seen.headers["x-initiator"] == "user" and seen.headers["copilot-integration-id"] == "vscode-chat"


def test_openai_responses_and_anthropic_messages_go_native(stack):
    before = len(stack.copilot.inference_requests())
    reply = stack.openai().responses.create(model="copilot/gpt-4.1", input="Say hello.")
    assert reply.output_text == stack.copilot.reply_text
    message = stack.anthropic().messages.create(model="copilot/claude-sonnet-4.5", max_tokens=100,
                                                messages=[{"role": "user", "content": "Say hello."}])
    assert message.content[0].text == stack.copilot.reply_text
    responses, messages = stack.copilot.inference_requests()[before:]
    check_copilot_call(stack, responses, "responses", "gpt-4.1", False)
    check_copilot_call(stack, messages, "v1/messages", "claude-sonnet-4.5", False)
    assert messages.headers["anthropic-version"] == "2023-06-01"


def test_a_tool_loop_turn_is_the_agents_and_images_are_announced(stack):
    weather = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object",
                                                                                 "properties": {}}}}
    loop = [{"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]
    premium = stack.copilot.premium_used()
    before = len(stack.copilot.inference_requests())
    client = stack.openai()
    client.chat.completions.create(model="copilot/claude-sonnet-4.5", messages=loop, tools=[weather])
    assert stack.copilot.premium_used() == premium  # the follow-up of a tool call spends no premium request
    picture = [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}]}]
    assert client.chat.completions.create(model="copilot/gpt-4.1", messages=picture).choices[0].message.content
    agent, vision = stack.copilot.inference_requests()[before:]
    assert agent.headers["x-initiator"] == "agent" and agent.json["tools"] == [weather]
    assert vision.headers["copilot-vision-request"] == "true" and vision.headers["x-initiator"] == "user"
    assert "copilot-vision-request" not in agent.headers


def test_an_expired_copilot_token_is_renewed_once_and_the_call_retried(stack):
    old = stack.copilot_token()
    stack.copilot.expire_copilot_tokens()  # the API refuses it before the record says it expires
    exchanges = stack.copilot.count(stack.copilot.copilot_token_url)
    before = len(stack.copilot.inference_requests())
    answer = stack.openai().chat.completions.create(model="copilot/gpt-4.1", messages=ASK)
    assert answer.choices[0].message.content == stack.copilot.reply_text
    refused, retried = stack.copilot.inference_requests()[before:]
    assert refused.status == 401 and refused.headers["authorization"] == f"Bearer {old}"
    assert retried.status == 200 and retried.headers["authorization"] == f"Bearer {stack.copilot_token()}" != (
        f"Bearer {old}")
    assert stack.copilot.count(stack.copilot.copilot_token_url) - exchanges == 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_openai_sdk_chat_through_openrouter(stack, stream):
    before = len(stack.openrouter.requests_to(stack.openrouter.chat_url))
    client = stack.openai()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="openrouter/openai/gpt-4o", messages=ASK, stream=True) if c.choices)
    else:
        text = client.chat.completions.create(model="openrouter/openai/gpt-4o", messages=ASK).choices[0].message.content
    assert text == stack.openrouter.reply_text
    (seen,) = stack.openrouter.requests_to(stack.openrouter.chat_url)[before:]
    assert seen.status == 200 and seen.json["model"] == "openai/gpt-4o" and seen.json["messages"] == ASK
    assert bool(seen.json.get("stream")) is stream
    assert seen.headers["authorization"] == f"Bearer {stack.openrouter_key}"
    assert seen.headers["x-openrouter-title"] == "oauth-hub"
    assert KEY not in json.dumps(seen.headers)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_anthropic_sdk_through_openrouter_is_translated_to_chat(stack, stream):
    before = len(stack.openrouter.requests_to(stack.openrouter.chat_url))
    client = stack.anthropic()
    ask = {"model": "openrouter/anthropic/claude-sonnet-4.5", "max_tokens": 100, "system": "Answer briefly.",
           "messages": [{"role": "user", "content": "Say hello."}]}
    if stream:
        with client.messages.stream(**ask) as events:
            text = "".join(events.text_stream)
    else:
        text = client.messages.create(**ask).content[0].text
    assert text == stack.openrouter.reply_text
    (seen,) = stack.openrouter.requests_to(stack.openrouter.chat_url)[before:]
    assert seen.json["model"] == "anthropic/claude-sonnet-4.5"
    assert seen.json["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert seen.json["messages"][-1]["role"] == "user"
    assert seen.headers["authorization"] == f"Bearer {stack.openrouter_key}"


def test_models_lists_both_providers(stack):
    ids = {m.id for m in stack.openai().models.list()}
    assert {"copilot/gpt-4.1", "copilot/gpt-5-codex", "copilot/claude-sonnet-4.5", "openrouter/openai/gpt-4o",
            "openrouter/anthropic/claude-sonnet-4.5"} <= ids
    assert not {i for i in ids if i.endswith(("gpt-4o-mini", "gemini-2.5-pro", "flux-1.1-pro"))}
