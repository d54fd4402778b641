"""The README's "With an API key" table, each row run word for word against the strict fakes.

A ChatGPT sign-in that holds a platform API key exports entries that go straight to
OpenAI's API (``FakeOpenAI``'s ``/v1``), and an OpenRouter sign-in straight to
OpenRouter (``FakeOpenRouter``); no ``oauth-hub serve`` is running. Each test is a
person's session in a temporary home: the row's export command, then its tool command,
both checked to be in README.md and run in bash with the real tool (llm and LiteLLM from
the test extra, aider, Code Puppy and the LiteLLM proxy from ``.tools/``, opencode from
``tests/tools/opencode``). What is checked is the tool's answer and what the fake
received: the account's API key as the bearer, the model, the API path; the ChatGPT
subscription backend is never called. One call per tool (opencode adds its title request).
"""

from __future__ import annotations

import os
import secrets
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.fake_openrouter import FakeOpenRouter
from oauth_core.testing.seed import seed_sign_in

from .test_serve import seed_models
from .test_tools import OPENCODE
from .test_tools_heavy import AIDER_SCRIPTED
from .toolrun import BIN, TOOLS, person_env, recipe, shell, start_and_wait, stop, tool_bin, user_text

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
CODEX = "/backend-api/codex/responses"
PROXY_PORT = 4000


@dataclass
class KeySession:
    user: Path  # $HOME
    project: Path  # the directory the tool runs in
    openai: FakeOpenAI
    openrouter: FakeOpenRouter
    api_key: str  # the ChatGPT account's platform key
    openrouter_key: str
    path: str

    def env(self, **extra: str) -> dict[str, str]:
        return person_env(self.user, self.path, LITELLM_LOCAL_MODEL_COST_MAP="True", **extra)

    def shell(self, command: str, env: dict[str, str], prelude: str = "") -> str:
        return shell(command, env, self.project, prelude=prelude)

    def platform_calls(self, path: str) -> list[Any]:
        """What OpenAI's API received at ``path``, after checking nothing went to the subscription backend."""
        assert not self.openai.requests_to(CODEX)
        return self.openai.requests_to(path)


def direct_call(call: Any, key: str, model: str) -> None:
    """The provider accepted the tool's own request, made with the account's key for ``model``."""
    assert call.status == 200, call.json
    assert call.headers["authorization"] == f"Bearer {key}"
    assert call.json["model"] == model


@pytest.fixture
def session(request, tmp_path) -> Iterator[KeySession]:
    """Both sign-ins in a fresh home; ``request.param`` names the ``.tools/`` venv put first on PATH."""
    user = tmp_path / "user"
    hub = user / ".config" / "oauth-hub"
    hub.mkdir(parents=True, mode=0o700)
    project = user / "project"
    project.mkdir()
    first = [str(tool_bin(request.param, request.param.split("-proxy")[0]).parent)] if request.param else []
    path = ":".join([*first, str(BIN), str(OPENCODE.parent), os.environ.get("PATH", "")])
    with FakeOpenAI() as openai, FakeOpenRouter() as openrouter:
        (hub / "config.toml").write_text(tomli_w.dumps({"providers": {
            "chatgpt": {"issuer": openai.issuer, "api_base": openai.api_base, "chatgpt_base": openai.chatgpt_base},
            "openrouter": openrouter.provider_settings(),
        }}))
        api_key = f"sk-proj-{secrets.token_hex(16)}"
        openai.issued_api_keys.add(api_key)
        seed_sign_in("chatgpt", openai.mint_tokens(), home=hub, api_key=api_key)
        seed_models("chatgpt", hub)
        openrouter_key = openrouter.mint_key()
        seed_sign_in("openrouter", {"access_token": openrouter_key, "user_id": openrouter.user_id}, home=hub,
                     api_key=openrouter_key)
        seed_models("openrouter", hub)
        yield KeySession(user, project, openai, openrouter, api_key, openrouter_key, path)


def with_tool(venv: str | None):
    return pytest.mark.parametrize("session", [venv], indirect=True)


# -- llm ---------------------------------------------------------------------------------------------------

LLM_ROWS = {
    "chatgpt": ("oauth-hub export chatgpt --to llm",
                'llm keys set oauth-hub-chatgpt --value "$(oauth-hub token chatgpt --api-key)"',
                'llm -m chatgpt-gpt-4o "hi"'),
    "openrouter": ("oauth-hub export openrouter --to llm",
                   'llm keys set oauth-hub-openrouter --value "$(oauth-hub token openrouter --api-key)"',
                   'llm -m openrouter-openai/gpt-4o "hi"'),
}


@with_tool(None)
@pytest.mark.parametrize("provider", ["chatgpt", "openrouter"])
def test_llm_api_key_row(session, provider):
    env = session.env()
    for command in LLM_ROWS[provider][:2]:
        session.shell(recipe(command), env)
    said = session.shell(recipe(LLM_ROWS[provider][2]), env)
    if provider == "chatgpt":
        assert said.strip() == session.openai.reply_text
        (call,) = session.platform_calls(RESPONSES)  # llm's `responses: true` items call the Responses API
        direct_call(call, session.api_key, "gpt-4o")
        assert user_text(call) == "hi" and not session.platform_calls(CHAT)
    else:
        assert said.strip() == session.openrouter.reply_text
        (call,) = session.openrouter.requests_to(session.openrouter.chat_url)
        direct_call(call, session.openrouter_key, "openai/gpt-4o")
        assert user_text(call) == "hi" and call.headers["x-openrouter-title"] == "oauth-hub"
        assert not session.platform_calls(CHAT) and not session.platform_calls(RESPONSES)


# -- LiteLLM (library, OpenRouter) -------------------------------------------------------------------------

LITELLM_ROUTER = ("oauth-hub export openrouter --to litellm -o litellm.yaml", 'eval "$(oauth-hub env openrouter)"',
                  """python -c 'import litellm, yaml; print(litellm.Router(model_list=yaml.safe_load(open("litellm.yaml"))["model_list"]).completion(model="openrouter-openai/gpt-4o", messages=[{"role": "user", "content": "hi"}]).choices[0].message.content)'""")  # noqa: E501


@with_tool(None)
def test_litellm_library_openrouter_row(session):
    env = session.env()
    export, key_line, run_router = (recipe(command) for command in LITELLM_ROUTER)
    session.shell(export, env)
    said = session.shell(run_router, env, prelude=key_line)
    assert said.strip().splitlines()[-1] == session.openrouter.reply_text
    (call,) = session.openrouter.requests_to(session.openrouter.chat_url)
    direct_call(call, session.openrouter_key, "openai/gpt-4o")
    assert user_text(call) == "hi"
