"""A third-party provider joins the gateway through the four gateway hooks alone.

"Acme" is a provider registered from Python (as a separately installed package would
be through its entry point) whose backend speaks Anthropic Messages (the strict
FakeAnthropic stands in for it). Its backend wants tool names prefixed with ``ext_``:
``gateway_request`` adds the prefix and ``gateway_response_event`` takes it off again,
in streamed and whole answers; ``gateway_rate_limits`` reports its usage window. An
OpenAI client reaches it through /v1 without knowing any of that.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from oauth_core import register_provider, unregister_provider
from oauth_core import serve as hub_serve
from oauth_core.hookspecs import hookimpl
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_gateway_server import wait_until
from .test_serve import KEY, seed_models

MODEL = "claude-sonnet-4-20250514"


class Acme:
    """The hook module of the third-party provider."""

    @hookimpl
    def provider_defaults(self) -> dict[str, Any]:
        return {"title": "Acme", "port": 0, "api_base": "https://api.acme.example", "prefix": "acme-"}

    @hookimpl
    def build_auth_url(self, settings, redirect_uri, state, code_challenge):
        return f"{settings['api_base']}/authorize?state={state}"

    @hookimpl
    def exchange_code(self, settings, http, code):
        raise AssertionError("not used: the tests seed a sign-in")

    @hookimpl
    def list_models(self, settings, http, credentials):
        return [{"id": MODEL}]

    @hookimpl
    def model_entry(self, settings, model):
        return {"type": "acme", "name": model["id"]}

    @hookimpl
    def request_headers(self, settings, credentials, use_api_key):
        return {"Authorization": f"Bearer {credentials.access_token}", "anthropic-beta": "oauth-2025-04-20",
                "anthropic-version": "2023-06-01"}

    @hookimpl
    def gateway_backend(self, credentials):
        return {"messages": "v1/messages"}

    @hookimpl
    def gateway_request(self, settings, credentials, request):
        body = request.body
        body["system"] = [{"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}]
        for tool in body.get("tools") or []:
            tool["name"] = "ext_" + tool["name"]
        for message in body.get("messages") or []:
            for block in message["content"] if isinstance(message["content"], list) else []:
                if block.get("type") == "tool_use":
                    block["name"] = "ext_" + block["name"]

    @hookimpl
    def gateway_response_event(self, dialect, event):
        blocks = [event.get("content_block") or {}, *(event.get("content") or [])]
        for block in blocks:
            if block.get("type") == "tool_use":
                block["name"] = block["name"].removeprefix("ext_")

    @hookimpl
    def gateway_rate_limits(self, headers):
        used = headers.get("anthropic-ratelimit-unified-5h-utilization")
        return None if used is None else [{"name": "acme-5h", "used_percent": float(used) * 100}]


@pytest.fixture
def acme(home, anthropic):
    register_provider("acme", Acme())
    try:
        write_config(home, "acme", api_base=anthropic.api_base)
        seed_sign_in("acme", anthropic.mint_tokens(), home=home)
        seed_models("acme", home)
        server = hub_serve.make_server(port=0, key=KEY, home=home)
        hub_serve.start_in_thread(server)
        yield server
        server.shutdown()
        server.server_close()
    finally:
        unregister_provider("acme")


TOOL = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_third_party_provider_adapts_requests_and_answers(acme, anthropic, home, stream):
    anthropic.stream_delay = 0
    client = openai.OpenAI(base_url=f"{acme.base_url}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == [f"acme/{MODEL}"]
    messages = [{"role": "user", "content": "Weather?"}]
    if stream:
        with client.chat.completions.stream(model=f"acme/{MODEL}", messages=messages, tools=[TOOL]) as events:
            answer = events.get_final_completion()
    else:
        answer = client.chat.completions.create(model=f"acme/{MODEL}", messages=messages, tools=[TOOL])
    (call,) = answer.choices[0].message.tool_calls
    assert call.function.name == "weather"  # the backend's prefix was taken off on the way back
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    messages += [answer.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    assert client.chat.completions.create(model=f"acme/{MODEL}", messages=messages,
                                          tools=[TOOL]).choices[0].message.content == "pong"

    offered, followed = anthropic.requests_to("/v1/messages")[-2:]
    assert [t["name"] for t in offered.json["tools"]] == ["ext_weather"]
    assert offered.json["system"] == [{"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}]
    assert [b["name"] for b in followed.json["messages"][1]["content"] if b["type"] == "tool_use"] == ["ext_weather"]
    assert wait_until(lambda: (home / "acme_usage.json").exists())
    assert json.loads((home / "acme_usage.json").read_text())["windows"] == [{"name": "acme-5h",
                                                                              "used_percent": 21.0}]


def test_a_backend_in_a_dialect_the_gateway_does_not_know_is_refused_in_the_callers_dialect(acme, anthropic):
    class Other(Acme):
        @hookimpl
        def gateway_backend(self, credentials):
            return {"grpc": "v1/generate"}

    register_provider("acme", Other())
    acme.gateway._providers.clear()  # serve loads a provider once per run; this test swaps it
    before = len(anthropic.requests)
    client = openai.OpenAI(base_url=f"{acme.base_url}/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="does not take requests through the gateway"):
        client.chat.completions.create(model=f"acme/{MODEL}", messages=[{"role": "user", "content": "x"}])
    assert len(anthropic.requests) == before
