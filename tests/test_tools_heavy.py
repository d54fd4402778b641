"""aider, Code Puppy and the LiteLLM proxy on what `oauth-hub export` writes, through a real `oauth-hub serve`.

These tools pin packages that clash with the test extra (aider its own litellm and openai),
so each lives in its own venv under ``.tools/``, installed at pinned versions by
``scripts/install-test-deps.sh`` from ``tests/tools/<tool>/requirements.txt``.

Each test is a person's session in a temporary home: both subscriptions signed in
(against the strict fakes of the Codex backend and of Anthropic's Messages API),
``oauth-hub serve --stable-key`` started as its own process on its default port 4141,
``oauth-hub export`` run as the README's subscription table writes it, then the tool's
command from that table, word for word (each is checked to be in README.md), run in a
shell. What is checked is what the tool printed and what the fakes received: the gateway
applied each backend's rules (``store: false`` and ``instructions`` for Codex, the Claude
Code system line and OAuth beta for Anthropic) to the tool's own requests.

The tools' own network calls (update checks, analytics, model price lists) are turned
off through their settings, as a script running them would.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import tomli_w

from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX, FakeAnthropic
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

from .test_serve import seed_models
from .toolrun import BIN, TOOLS, person_env, recipe, shell, start_and_wait, stop, tool_bin, user_text

CODEX = "/backend-api/codex/responses"
MESSAGES = "/v1/messages"
SONNET = "claude-sonnet-4-20250514"
SERVE_PORT = 4141  # serve's default, which the README's commands name
PROXY_PORT = 4000
# What the README tells a person to run once, before any tool.
START_SERVE = "oauth-hub serve --stable-key"
GIVE_KEY = 'export OAUTH_HUB_SERVE_KEY="$(oauth-hub serve --print-key)"'


@dataclass
class Session:
    user: Path  # $HOME
    project: Path  # the directory the tool runs in
    codex: FakeOpenAI
    claude: FakeAnthropic
    serve_log: Path
    path: str

    def env(self, **extra: str) -> dict[str, str]:
        """A person's environment: an isolated HOME and XDG dirs, the tool first on PATH, no real API keys."""
        return person_env(self.user, self.path, **extra)

    def shell(self, command: str, env: dict[str, str], timeout: int = 300) -> str:
        """Run README commands in bash after the README's key line; their output (stdout and stderr)."""
        return shell(command, env, self.project, prelude=GIVE_KEY, timeout=timeout)

    def served(self) -> list[str]:
        """The requests serve logged (`POST /v1/... -> 200`)."""
        return [line.split(" (")[0].strip() for line in self.serve_log.read_text().splitlines()
                if line.strip().startswith(("POST ", "GET "))]


def session_for(venv: str, tmp_path: Path) -> Iterator[Session]:
    user = tmp_path / "user"
    hub = user / ".config" / "oauth-hub"
    hub.mkdir(parents=True, mode=0o700)
    project = user / "project"
    project.mkdir()
    with FakeOpenAI(organization_id=None, project_id=None) as codex, FakeAnthropic(stream_delay=0) as claude:
        (hub / "config.toml").write_text(tomli_w.dumps({"providers": {
            "chatgpt": {"issuer": codex.issuer, "api_base": codex.api_base, "chatgpt_base": codex.chatgpt_base},
            "claude_code": claude.provider_settings(),
        }}))
        for provider, fake in (("chatgpt", codex), ("claude_code", claude)):
            seed_sign_in(provider, fake.mint_tokens(), home=hub)
            seed_models(provider, hub)
        path = f"{TOOLS / venv / 'bin'}:{BIN}:{os.environ.get('PATH', '')}"
        session = Session(user, project, codex, claude, tmp_path / "serve.log", path)
        serve = start_and_wait(["bash", "-c", f"exec {START_SERVE}"], session.env(), session.serve_log,
                               f"is listening on http://127.0.0.1:{SERVE_PORT}", project, timeout=60)
        try:
            yield session
        finally:
            stop(serve)


def codex_rules(call: Any) -> None:
    """The Codex backend accepted it, with its rules applied by the gateway."""
    assert call.status == 200 and call.headers["authorization"].startswith("Bearer ey")
    assert call.json["model"] == "gpt-5" and call.json["store"] is False and call.json["stream"] is True
    assert isinstance(call.json["instructions"], str) and call.json["instructions"]


def claude_rules(call: Any) -> None:
    """Anthropic accepted it as a subscription call: Claude Code's system line first, the OAuth beta."""
    assert call.status == 200 and call.json["model"] == SONNET
    assert call.json["system"][0] == {"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}
    assert "oauth-2025-04-20" in call.headers["anthropic-beta"].split(",")
    assert call.headers["authorization"].startswith("Bearer sk-ant-oat") and "x-api-key" not in call.headers


# -- aider -------------------------------------------------------------------------------------------------

AIDER = {
    "chatgpt": (
        "oauth-hub export chatgpt --to aider",
        'OPENAI_API_BASE=http://127.0.0.1:4141/v1 OPENAI_API_KEY="$OAUTH_HUB_SERVE_KEY" aider'
        ' --model openai/chatgpt/gpt-5 --weak-model openai/chatgpt/gpt-5 --message "Say hello"',
    ),
    "claude_code": (
        "oauth-hub export claude_code --to aider",
        f'ANTHROPIC_API_BASE=http://127.0.0.1:4141 ANTHROPIC_API_KEY="$OAUTH_HUB_SERVE_KEY" aider'
        f' --model anthropic/claude_code/{SONNET} --weak-model anthropic/claude_code/{SONNET} --message "Say hello"',
    ),
}
# What a script running aider sets: no questions (it would ask to create a git repo), no
# update check, no analytics (aider's documented AIDER_* settings).
AIDER_SCRIPTED = {"AIDER_YES_ALWAYS": "true", "AIDER_CHECK_UPDATE": "false", "AIDER_ANALYTICS": "false",
                  "LITELLM_LOCAL_MODEL_COST_MAP": "True"}


@pytest.fixture
def aider_session(tmp_path):
    tool_bin("aider", "aider")
    yield from session_for("aider", tmp_path)


@pytest.mark.parametrize("provider", ["chatgpt", "claude_code"])
def test_aider_runs_the_readme_recipe_through_serve(aider_session, provider):
    session = aider_session
    export, run_aider = (recipe(command) for command in AIDER[provider])
    env = session.env(**AIDER_SCRIPTED)
    session.shell(export, env)
    assert f"{provider}/" in (session.user / ".aider.model.metadata.json").read_text()

    output = session.shell(run_aider, env)
    assert "Aider v0.86.2" in output
    # aider read the exported metadata (else it warns the model's context window is unknown).
    assert "Unknown context window" not in output and "Unknown model" not in output, output[-3000:]
    assert session.codex.reply_text in output.splitlines(), output[-3000:]
    if provider == "chatgpt":
        (call,) = session.codex.requests_to(CODEX)
        codex_rules(call)
        assert call.json["instructions"].startswith("Act as an expert software developer")  # aider's own prompt
        assert "Say hello" in user_text(call)
        assert session.served() == ["POST /v1/chat/completions -> 200"]
        assert not session.claude.requests_to(MESSAGES)
    else:
        (call,) = session.claude.requests_to(MESSAGES)
        claude_rules(call)
        assert call.json["stream"] is True
        assert call.json["system"][1]["text"].startswith("Act as an expert software developer")
        assert "Say hello" in user_text(call)
        assert session.served() == ["POST /v1/messages -> 200"]
        assert not session.codex.requests_to(CODEX)


# -- Code Puppy --------------------------------------------------------------------------------------------

PUPPY_EXPORT = "oauth-hub export chatgpt && oauth-hub export claude_code"
PUPPY_RUNS = {
    "chatgpt": 'code-puppy -m chatgpt-gpt-5 -p "List the files here"',
    "claude_code": f'code-puppy -m claude-code-{SONNET} -p "List the files here"',
}


@pytest.fixture
def puppy_session(tmp_path):
    tool_bin("code-puppy", "code-puppy")
    yield from session_for("code-puppy", tmp_path)


def test_code_puppy_runs_both_subscriptions_with_a_tool_call(puppy_session):
    session = puppy_session
    env = session.env(NO_VERSION_UPDATE="1")  # Code Puppy's switch for its PyPI version check
    # What Code Puppy's first run asks for (the puppy's name and yours), answered beforehand; with
    # XDG_CONFIG_HOME set it keeps puppy.cfg there (and reads extra_models.json from XDG_DATA_HOME).
    config = Path(env["XDG_CONFIG_HOME"]) / "code_puppy"
    config.mkdir(parents=True)
    (config / "puppy.cfg").write_text("[puppy]\npuppy_name = Rex\nowner_name = Tester\n")
    (session.project / "notes-for-the-puppy.txt").write_text("hello\n")
    for fake in (session.codex, session.claude):  # the model asks for Code Puppy's list_files, then answers
        fake.tool_call_name, fake.tool_call_arguments = "list_files", '{"directory": "."}'
    session.shell(recipe(PUPPY_EXPORT), env)
    exported = (Path(env["XDG_DATA_HOME"]) / "code_puppy" / "extra_models.json").read_text()
    assert '"chatgpt-gpt-5"' in exported and f'"claude-code-{SONNET}"' in exported

    for command in PUPPY_RUNS.values():
        output = session.shell(recipe(command), env)
        assert "list_files" in output and session.codex.reply_text in output.splitlines(), output[-3000:]

    codex = session.codex.requests_to(CODEX)
    claude = session.claude.requests_to(MESSAGES)
    assert len(codex) == 2 and len(claude) == 2  # the turn that calls list_files, the turn after its result
    for call in codex:
        codex_rules(call)
        assert "Rex" in call.json["instructions"]  # Code Puppy's own system prompt, as instructions
        assert "list_files" in [t["name"] for t in call.json["tools"]]
        assert "List the files here" in user_text(call)
    (result,) = [i for i in codex[1].json["input"] if i.get("type") == "function_call_output"]
    assert "notes-for-the-puppy.txt" in str(result["output"])
    for call in claude:
        claude_rules(call)
        assert call.json["stream"] is True and any("Rex" in block["text"] for block in call.json["system"][1:])
    (result,) = [b for b in claude[1].json["messages"][-1]["content"] if b.get("type") == "tool_result"]
    assert "notes-for-the-puppy.txt" in str(result["content"])
    assert session.served() == ["POST /v1/responses -> 200"] * 2 + ["POST /v1/messages -> 200"] * 2


# -- LiteLLM proxy -----------------------------------------------------------------------------------------

PROXY_EXPORT = ("oauth-hub export chatgpt --to litellm -o litellm.yaml"
                " && oauth-hub export claude_code --to litellm -o litellm.yaml")
PROXY_KEY_LINE = 'export LITELLM_MASTER_KEY="sk-$(openssl rand -hex 16)"'
PROXY_RUN = f"litellm --config litellm.yaml --host 127.0.0.1 --port {PROXY_PORT}"


@pytest.fixture
def proxy_session(tmp_path):
    tool_bin("litellm-proxy", "litellm")
    yield from session_for("litellm-proxy", tmp_path)


def test_litellm_proxy_serves_both_subscriptions_in_every_api(proxy_session):
    import anthropic
    import openai

    session = proxy_session
    env = session.env(LITELLM_LOCAL_MODEL_COST_MAP="True")
    printed = session.shell(recipe(PROXY_EXPORT), env)
    assert PROXY_KEY_LINE in printed and "litellm.yaml --host 127.0.0.1 --port 4000" in printed  # export says so too
    # The README's two lines: a master key, then the proxy; the test keeps the key to be the proxy's client.
    key_file = session.user / "master-key"
    proxy = start_and_wait(["bash", "-c", f'{GIVE_KEY}\n{recipe(PROXY_KEY_LINE)}\n'
                            f'printf %s "$LITELLM_MASTER_KEY" > {shlex.quote(str(key_file))}\n'
                            f"exec {recipe(PROXY_RUN)}"], env,
                           session.project / "proxy.log", f"Uvicorn running on http://127.0.0.1:{PROXY_PORT}",
                           session.project)
    try:
        master_key = key_file.read_text()
        assert master_key.startswith("sk-") and len(master_key) == 35
        base = f"http://127.0.0.1:{PROXY_PORT}"
        refused = requests.post(f"{base}/v1/chat/completions", timeout=60, headers={"Authorization": "Bearer sk-no"},
                                json={"model": "chatgpt-gpt-5", "messages": [{"role": "user", "content": "hi"}]})
        assert refused.status_code in (400, 401), refused.text

        client = openai.OpenAI(base_url=f"{base}/v1", api_key=master_key, max_retries=0, timeout=120)
        said = client.chat.completions.create(model="chatgpt-gpt-5", messages=[
            {"role": "user", "content": "Say hello"}]).choices[0].message.content
        assert said == session.codex.reply_text
        chunks = client.chat.completions.create(model=f"claude-code-{SONNET}", stream=True, messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}])
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == session.claude.reply_text
        answer = client.responses.create(model=f"claude-code-{SONNET}", input="Say hello")
        assert answer.output_text == session.claude.reply_text
        message = anthropic.Anthropic(base_url=base, api_key=master_key, max_retries=0, timeout=120).messages.create(
            model="chatgpt-gpt-5", max_tokens=100, messages=[{"role": "user", "content": "Say hello"}])
        assert [b.text for b in message.content if b.type == "text"] == [session.codex.reply_text]
    finally:
        stop(proxy)

    codex = session.codex.requests_to(CODEX)
    claude = session.claude.requests_to(MESSAGES)
    assert len(codex) == 2 and len(claude) == 2  # the refused request reached nobody
    for call in codex:
        codex_rules(call)
        assert "Say hello" in user_text(call)
    for call in claude:
        claude_rules(call)
        assert "Say hello" in user_text(call)
    assert claude[0].json["stream"] is True and claude[0].json["system"][1]["text"] == "Be brief."
    # The proxy calls serve's /v1 in the API each deployment was exported with.
    assert sorted(line for line in session.served() if line.startswith("POST")) == (
        ["POST /v1/messages -> 200"] * 2 + ["POST /v1/responses -> 200"] * 2)
