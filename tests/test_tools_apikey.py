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
from .toolrun import BIN, person_env, recipe, shell, start_and_wait, stop, tool_bin, user_text

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
        return person_env(self.user, self.path, **{"LITELLM_LOCAL_MODEL_COST_MAP": "True", **extra})

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
        (call,) = session.platform_calls(CHAT)
        direct_call(call, session.api_key, "gpt-4o")
        assert user_text(call) == "hi" and not session.platform_calls(RESPONSES)
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


# -- Code Puppy --------------------------------------------------------------------------------------------

PUPPY_ROW = ("oauth-hub export chatgpt", 'oauth-hub exec chatgpt -- code-puppy -m chatgpt-gpt-4o -p "Say hello"')


@with_tool("code-puppy")
def test_code_puppy_api_key_row(session):
    env = session.env(NO_VERSION_UPDATE="1")  # Code Puppy's switch for its PyPI version check
    config = Path(env["XDG_CONFIG_HOME"]) / "code_puppy"  # its first-run questions, answered beforehand
    config.mkdir(parents=True)
    (config / "puppy.cfg").write_text("[puppy]\npuppy_name = Rex\nowner_name = Tester\n")
    export, run_puppy = (recipe(command) for command in PUPPY_ROW)
    session.shell(export, env)
    output = session.shell(run_puppy, env)
    assert session.openai.reply_text in output.splitlines(), output[-3000:]
    (call,) = session.platform_calls(CHAT)  # API-key entries are Chat Completions models
    direct_call(call, session.api_key, "gpt-4o")
    assert "Say hello" in user_text(call)
    assert "Rex" in call.json["messages"][0]["content"]  # Code Puppy's own system prompt
    assert not session.platform_calls(RESPONSES)


# -- aider -------------------------------------------------------------------------------------------------

AIDER_ROW = ("oauth-hub export chatgpt --to aider",
             'OPENAI_API_BASE="$(oauth-hub config get chatgpt.api_base)" OPENAI_API_KEY="$(oauth-hub token chatgpt'
             ' --api-key)" aider --model openai/gpt-4o --message "Say hello"')


@with_tool("aider")
def test_aider_api_key_row(session):
    env = session.env(**AIDER_SCRIPTED)
    export, run_aider = (recipe(command) for command in AIDER_ROW)
    session.shell(export, env)
    output = session.shell(run_aider, env)
    assert "Aider v0.86.2" in output and "Unknown model" not in output, output[-3000:]
    assert session.openai.reply_text in output.splitlines(), output[-3000:]
    (call,) = session.platform_calls(CHAT)
    direct_call(call, session.api_key, "gpt-4o")
    assert "Say hello" in user_text(call)
    assert call.json["messages"][0]["content"].startswith("Act as an expert software developer")
    assert not session.platform_calls(RESPONSES)


# -- opencode ----------------------------------------------------------------------------------------------

OPENCODE_ROW = ("oauth-hub export chatgpt --to opencode",
                'oauth-hub exec chatgpt -- opencode run -m oauth-hub-chatgpt/gpt-4o "Say hello"')


@with_tool(None)
def test_opencode_api_key_row(session):
    env = session.env(OPENCODE_DISABLE_MODELS_FETCH="1", OPENCODE_DISABLE_AUTOUPDATE="1")
    export, run_opencode = (recipe(command) for command in OPENCODE_ROW)
    session.shell(export, env)
    output = session.shell(run_opencode, env)
    assert session.openai.reply_text in output, output[-3000:]
    calls = session.platform_calls(CHAT)  # API-key entries are Chat Completions models
    assert len(calls) == 2  # opencode's title request, then the turn
    for call in calls:
        direct_call(call, session.api_key, "gpt-4o")
    assert any("Say hello" in user_text(call) for call in calls)
    assert not session.platform_calls(RESPONSES)


# -- LiteLLM proxy -----------------------------------------------------------------------------------------

PROXY_ROW = ("oauth-hub export chatgpt --to litellm -o litellm.yaml", 'eval "$(oauth-hub env chatgpt)"',
             'export LITELLM_MASTER_KEY="sk-$(openssl rand -hex 16)"',
             f"litellm --config litellm.yaml --host 127.0.0.1 --port {PROXY_PORT}")


@with_tool("litellm-proxy")
def test_litellm_proxy_api_key_row(session):
    import openai

    env = session.env()
    export, key_line, master_line, run_proxy = (recipe(command) for command in PROXY_ROW)
    session.shell(export, env)
    key_file = session.user / "master-key"  # the test keeps the master key to be the proxy's client
    proxy = start_and_wait(["bash", "-c", f"set -euo pipefail\n{key_line}\n{master_line}\n"
                            f'printf %s "$LITELLM_MASTER_KEY" > {shlex.quote(str(key_file))}\nexec {run_proxy}'],
                           env, session.project / "proxy.log", f"Uvicorn running on http://127.0.0.1:{PROXY_PORT}",
                           session.project)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{PROXY_PORT}/v1", api_key=key_file.read_text(),
                               max_retries=0, timeout=120)
        said = client.chat.completions.create(model="chatgpt-gpt-4o", messages=[
            {"role": "user", "content": "Say hello"}]).choices[0].message.content
    finally:
        stop(proxy)
    assert said == session.openai.reply_text
    (call,) = session.platform_calls(CHAT)  # the deployment is openai/gpt-4o
    direct_call(call, session.api_key, "gpt-4o")
    assert "Say hello" in user_text(call)
    assert not session.platform_calls(RESPONSES)
