"""The official OpenAI and Anthropic SDKs recover from a 401 through oauth_core's httpx auths.

Current releases of both SDKs are built on ``httpx2`` (and still accept a legacy
``httpx`` client). Each test starts with a sign-in whose credential the fake no longer
accepts, so the SDK's first call is answered 401: the auth refreshes once, retries
once, and the SDK call returns normally. The fakes record what was sent.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import anthropic as anthropic_sdk
import httpx
import httpx2
import openai
import pytest

from oauth_core.httpx2_auth import OAuthHubHttpx2Auth
from oauth_core.httpx_auth import OAuthHubHttpxAuth
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX
from oauth_core.testing.seed import seed_sign_in

REVOKED_KEY = "sk-revoked-key-000000000000"
PLACEHOLDER = "placeholder-the-auth-replaces"


@pytest.fixture
def revoked_key_account(chatgpt_home, idp):
    """A ChatGPT account whose stored API key the API no longer accepts (revoked, rotated elsewhere)."""
    return seed_sign_in("chatgpt", idp.mint_tokens(), home=chatgpt_home, api_key=REVOKED_KEY)


@pytest.fixture
def expired_claude(claude_home, anthropic):
    """A Claude subscription whose access token the API already treats as expired."""
    anthropic.require_claude_code_system = True
    seeded = seed_sign_in("claude_code", anthropic.mint_tokens(), home=claude_home)
    anthropic.expire_access_tokens()
    return seeded


def stored(home, provider):
    return json.loads((home / f"{provider}_oauth.json").read_text())


def check_openai_recovery(idp, home):
    calls = idp.requests_to("/v1/models")
    assert [c.status for c in calls] == [401, 200]
    assert calls[0].headers["authorization"] == f"Bearer {REVOKED_KEY}"
    new_key = stored(home, "chatgpt")["api_key"]
    assert new_key != REVOKED_KEY and calls[1].headers["authorization"] == f"Bearer {new_key}"
    assert all(PLACEHOLDER not in str(c.headers) for c in calls)


def test_openai_sdk_on_httpx2_recovers_from_a_401(chatgpt_home, idp, revoked_key_account):
    client = openai.OpenAI(api_key=PLACEHOLDER, base_url=idp.api_base,
                           http_client=httpx2.Client(auth=OAuthHubHttpx2Auth("chatgpt", home=chatgpt_home)))
    assert [m.id for m in client.models.list()] == list(idp.models)
    check_openai_recovery(idp, chatgpt_home)


def test_async_openai_sdk_on_httpx2_recovers_from_a_401(chatgpt_home, idp, revoked_key_account):
    async def main():
        auth = OAuthHubHttpx2Auth("chatgpt", home=chatgpt_home)
        async with openai.AsyncOpenAI(api_key=PLACEHOLDER, base_url=idp.api_base,
                                      http_client=httpx2.AsyncClient(auth=auth)) as client:
            return [m.id async for m in client.models.list()]

    assert asyncio.run(main()) == list(idp.models)
    check_openai_recovery(idp, chatgpt_home)


def test_openai_sdk_on_a_legacy_httpx_client_recovers_from_a_401(chatgpt_home, idp, revoked_key_account):
    client = openai.OpenAI(api_key=PLACEHOLDER, base_url=idp.api_base,
                           http_client=httpx.Client(auth=OAuthHubHttpxAuth("chatgpt", home=chatgpt_home)))
    assert [m.id for m in client.models.list()] == list(idp.models)
    check_openai_recovery(idp, chatgpt_home)


def check_claude_recovery(anthropic, home, seeded):
    calls = anthropic.requests_to("/v1/messages")
    assert [c.status for c in calls] == [401, 200]
    assert calls[0].headers["authorization"] == f"Bearer {seeded.access_token}"
    fresh = stored(home, "claude_code")["access_token"]
    assert fresh != seeded.access_token and calls[1].headers["authorization"] == f"Bearer {fresh}"
    for call in calls:
        assert "x-api-key" not in call.headers  # the SDK's placeholder key was taken out
        assert "oauth-2025-04-20" in call.headers["anthropic-beta"].split(",")
    assert calls[0].json == calls[1].json  # the body went out again unchanged
    assert anthropic.count(urlsplit(anthropic.token_url).path, "refresh_token") == 1


def test_anthropic_sdk_on_httpx2_recovers_from_a_401(claude_home, anthropic, expired_claude):
    client = anthropic_sdk.Anthropic(
        api_key=PLACEHOLDER, base_url=anthropic.api_base,
        http_client=httpx2.Client(auth=OAuthHubHttpx2Auth("claude_code", home=claude_home)))
    reply = client.messages.create(model=anthropic.models[0]["id"], max_tokens=64, system=CLAUDE_CODE_SYSTEM_PREFIX,
                                   messages=[{"role": "user", "content": "hello"}])
    assert reply.content[0].text == anthropic.reply_text
    check_claude_recovery(anthropic, claude_home, expired_claude)


def test_async_anthropic_sdk_streams_after_recovering_from_a_401(claude_home, anthropic, expired_claude):
    async def main():
        auth = OAuthHubHttpx2Auth("claude_code", home=claude_home)
        async with anthropic_sdk.AsyncAnthropic(api_key=PLACEHOLDER, base_url=anthropic.api_base,
                                                http_client=httpx2.AsyncClient(auth=auth)) as client:
            async with client.messages.stream(model=anthropic.models[0]["id"], max_tokens=64,
                                              system=CLAUDE_CODE_SYSTEM_PREFIX,
                                              messages=[{"role": "user", "content": "hello"}]) as stream:
                return "".join([text async for text in stream.text_stream])

    assert asyncio.run(main()) == anthropic.reply_text
    check_claude_recovery(anthropic, claude_home, expired_claude)


def test_a_second_401_goes_back_to_the_caller(chatgpt_home, idp, revoked_key_account):
    """One refresh and one retry only: a credential the API still refuses is the caller's to see."""
    idp.api_key_exchange = False  # the account can no longer get an API key, so no new one comes
    client = openai.OpenAI(api_key=PLACEHOLDER, base_url=idp.api_base, max_retries=0,
                           http_client=httpx2.Client(auth=OAuthHubHttpx2Auth("chatgpt", home=chatgpt_home)))
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    assert [c.status for c in idp.requests_to("/v1/models")] == [401, 401]
