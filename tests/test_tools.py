"""The real tools on what `oauth-hub export` writes for them, through `oauth-hub serve`, on both subscriptions.

llm and LiteLLM come with the test extra, opencode from npm (``tests/tools/opencode``,
installed by ``scripts/install-test-deps.sh``). Each test exports the signed-in
ChatGPT and Claude subscriptions into the tool's own file, runs the tool in its own
process with an isolated home as a person would (the commands the README gives), and
checks what the strict fakes of the Codex backend and of Anthropic's Messages API
accepted. The tools' other network calls are turned off or have nowhere to go.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import yaml

from oauth_core import serve as hub_serve
from oauth_core.exporters import export_models
from oauth_core.testing.fake_anthropic import CLAUDE_CODE_SYSTEM_PREFIX, FakeAnthropic
from oauth_core.testing.fake_openai import FakeOpenAI
from oauth_core.testing.seed import seed_sign_in

from .test_serve import seed_models

CODEX = "/backend-api/codex/responses"
MESSAGES = "/v1/messages"
SONNET = "claude-sonnet-4-20250514"
BIN = Path(sys.executable).parent
OPENCODE = Path(__file__).parent / "tools" / "opencode" / "node_modules" / ".bin" / "opencode"


@dataclass
class Stack:
    home: Path
    codex: FakeOpenAI
    claude: FakeAnthropic
    server: Any
    tmp: Path
    key: str  # serve's stable key, as `oauth-hub serve --stable-key` uses and `--print-key` prints

    def env(self, **extra: str) -> dict[str, str]:
        """A person's environment: an isolated HOME and XDG dirs, serve's key, no real API keys."""
        user = self.tmp / "user"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("OAUTH_HUB", "OPENAI", "ANTHROPIC", "LLM_", "XDG_", "LITELLM"))}
        env.update(HOME=str(user), XDG_CONFIG_HOME=str(user / ".config"), XDG_DATA_HOME=str(user / ".local/share"),
                   XDG_CACHE_HOME=str(user / ".cache"), XDG_STATE_HOME=str(user / ".local/state"),
                   OAUTH_HUB_HOME=str(self.home), OAUTH_HUB_SERVE_KEY=self.key, PATH=f"{BIN}:{env.get('PATH', '')}",
                   LITELLM_LOCAL_MODEL_COST_MAP="True", NO_COLOR="1", **extra)
        return env

    def export(self, provider: str, tool: str, target: Path) -> Any:
        return export_models(provider, tool, output=target, home=self.home, serve_port=self.server.port)

    def codex_calls(self) -> list[Any]:
        return self.codex.requests_to(CODEX)

    def claude_calls(self) -> list[Any]:
        return self.claude.requests_to(MESSAGES)


@pytest.fixture
def stack(tmp_path):
    home = tmp_path / "hub"
    home.mkdir(mode=0o700)
    (tmp_path / "user").mkdir()
    with FakeOpenAI(organization_id=None, project_id=None) as codex, FakeAnthropic(stream_delay=0) as claude:
        (home / "config.toml").write_text(tomli_w.dumps({"providers": {
            "chatgpt": {"issuer": codex.issuer, "api_base": codex.api_base, "chatgpt_base": codex.chatgpt_base},
            "claude_code": claude.provider_settings(),
        }}))
        seed_sign_in("chatgpt", codex.mint_tokens(), home=home)
        seed_models("chatgpt", home)
        seed_sign_in("claude_code", claude.mint_tokens(), home=home)
        seed_models("claude_code", home)
        key = hub_serve.stable_key(home)
        server = hub_serve.make_server(port=0, key=key, home=home)
        hub_serve.start_in_thread(server)
        try:
            yield Stack(home, codex, claude, server, tmp_path, key)
        finally:
            server.shutdown()
            server.server_close()


def run(command: list[str], env: dict[str, str], timeout: int = 180, cwd: Path | None = None
        ) -> subprocess.CompletedProcess:
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def codex_rules(call: Any) -> None:
    """The Codex backend accepted it, with its rules applied by the gateway."""
    assert call.status == 200 and call.headers["authorization"].startswith("Bearer ey")
    assert call.json["model"] == "gpt-5" and call.json["store"] is False and call.json["stream"] is True
    assert isinstance(call.json["instructions"], str) and call.json["instructions"]


def claude_rules(call: Any) -> None:
    assert call.status == 200
    assert call.json["model"] == SONNET
    assert call.json["system"][0] == {"type": "text", "text": CLAUDE_CODE_SYSTEM_PREFIX}
    assert "oauth-2025-04-20" in call.headers["anthropic-beta"].split(",")
    assert call.headers["authorization"].startswith("Bearer sk-ant-oat") and "x-api-key" not in call.headers


# -- llm -------------------------------------------------------------------------------------------------


def test_llm_runs_both_subscriptions_from_the_exported_file(stack):
    env = stack.env()
    llm_dir = Path(env["XDG_CONFIG_HOME"]) / "io.datasette.llm"
    target = llm_dir / "extra-openai-models.yaml"
    chatgpt = stack.export("chatgpt", "llm", target)
    stack.export("claude_code", "llm", target)
    items = {i["model_id"]: i for i in yaml.safe_load(target.read_text())}
    assert items["chatgpt-gpt-5"]["responses"] is True and "responses" not in items[f"claude-code-{SONNET}"]
    # The instruction export printed, run as written.
    (store_key,) = [line.split(": ", 1)[1] for line in chatgpt.instructions if "llm keys set" in line]
    run(["sh", "-c", store_key], env)
    assert "chatgpt-gpt-5" in run([str(BIN / "llm"), "models", "list"], env).stdout

    assert run([str(BIN / "llm"), "-m", "chatgpt-gpt-5", "Say hello"], env).stdout.strip() == stack.codex.reply_text
    assert run([str(BIN / "llm"), "-m", "chatgpt-gpt-5", "-s", "Be brief", "--no-stream", "Say hello"],
               env).stdout.strip() == stack.codex.reply_text
    plain, system = stack.codex_calls()
    codex_rules(plain)
    assert plain.json["instructions"] == "You are a helpful assistant."  # llm sends none without -s
    assert system.json["instructions"] == "Be brief"
    assert [i["content"] for i in plain.json["input"]] == ["Say hello"]

    said = run([str(BIN / "llm"), "-m", f"claude-code-{SONNET}", "Say hello"], env).stdout.strip()
    assert said == stack.claude.reply_text
    (call,) = stack.claude_calls()
    claude_rules(call)
    assert call.json["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]


@pytest.mark.parametrize("model", ["chatgpt-gpt-5", f"claude-code-{SONNET}"])
def test_llm_tool_calls_go_round_through_the_gateway(stack, model):
    env = stack.env()
    target = Path(env["XDG_CONFIG_HOME"]) / "io.datasette.llm" / "extra-openai-models.yaml"
    stack.export("chatgpt" if model.startswith("chatgpt") else "claude_code", "llm", target)
    run([str(BIN / "llm"), "keys", "set", "oauth-hub-serve", "--value", stack.key], env)
    for fake in (stack.codex, stack.claude):
        fake.tool_call_name, fake.tool_call_arguments = "llm_version", "{}"
    done = run([str(BIN / "llm"), "-m", model, "-T", "llm_version", "--td", "Which llm version is this?"], env)
    assert "llm_version" in done.stdout + done.stderr and done.stdout.strip().endswith(stack.codex.reply_text)
    if model.startswith("chatgpt"):
        offered, answered = stack.codex_calls()
        codex_rules(answered)
        assert [t["name"] for t in offered.json["tools"]] == ["llm_version"]
        call = next(i for i in answered.json["input"] if i.get("type") == "function_call")
        result = next(i for i in answered.json["input"] if i.get("type") == "function_call_output")
    else:
        offered, answered = stack.claude_calls()
        claude_rules(answered)
        call = next(b for b in answered.json["messages"][1]["content"] if b["type"] == "tool_use")
        result = answered.json["messages"][2]["content"][0]
        call, result = {"call_id": call["id"]}, {"call_id": result["tool_use_id"], "output": result["content"]}
    version = subprocess.run([str(BIN / "llm"), "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert result["call_id"] == call["call_id"] and version in json.dumps(result["output"])


# -- LiteLLM (library) -------------------------------------------------------------------------------------

LITELLM_SCRIPT = textwrap.dedent("""
    import json, sys, yaml, litellm
    config = yaml.safe_load(open(sys.argv[1]))
    router = litellm.Router(model_list=config["model_list"])
    for stream in (False, True):
        answer = router.completion(model=sys.argv[2], stream=stream, max_tokens=100, messages=[
            {"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}])
        if stream:
            print("".join(chunk.choices[0].delta.content or "" for chunk in answer))
        else:
            print(answer.choices[0].message.content)
""")


@pytest.mark.parametrize("provider", ["chatgpt", "claude_code"])
def test_litellm_library_runs_the_exported_model_list(stack, provider):
    config = stack.tmp / "litellm.yaml"
    stack.export(provider, "litellm", config)
    script = stack.tmp / "litellm_router.py"
    script.write_text(LITELLM_SCRIPT)
    model = "chatgpt-gpt-5" if provider == "chatgpt" else f"claude-code-{SONNET}"
    out = run([sys.executable, str(script), str(config), model], stack.env(), timeout=300).stdout
    fake = stack.codex if provider == "chatgpt" else stack.claude
    assert out.strip().splitlines() == [fake.reply_text] * 2
    calls = stack.codex_calls() if provider == "chatgpt" else stack.claude_calls()
    assert len(calls) == 2
    for call in calls:
        (codex_rules if provider == "chatgpt" else claude_rules)(call)
        if provider == "chatgpt":
            assert call.json["instructions"] == "Be brief." and "max_output_tokens" not in call.json
        else:
            assert call.json["system"][1]["text"] == "Be brief." and call.json["max_tokens"] == 100


# -- opencode ----------------------------------------------------------------------------------------------


def test_opencode_runs_both_subscriptions_from_the_exported_config(stack):
    env = stack.env(OPENCODE_DISABLE_MODELS_FETCH="1", OPENCODE_DISABLE_AUTOUPDATE="1")
    config = Path(env["XDG_CONFIG_HOME"]) / "opencode" / "opencode.json"
    stack.export("chatgpt", "opencode", config)
    result = stack.export("claude_code", "opencode", config)
    blocks = json.loads(config.read_text())["provider"]
    assert blocks["oauth-hub-chatgpt"]["npm"] == "@ai-sdk/openai"
    assert blocks["oauth-hub-claude_code"]["npm"] == "@ai-sdk/anthropic"
    assert any("opencode -m oauth-hub-claude_code/claude-" in line for line in result.instructions)
    work = stack.tmp / "project"
    work.mkdir()
    for model in ("oauth-hub-chatgpt/gpt-5", f"oauth-hub-claude_code/{SONNET}"):
        out = run([str(OPENCODE), "run", "-m", model, "Say hello"], env, timeout=240, cwd=work)
        assert stack.codex.reply_text in out.stdout, out.stderr[-2000:]
    codex = stack.codex_calls()
    claude = stack.claude_calls()
    # A title request, the turn (the fake calls opencode's first tool), and the turn after the tool's result.
    assert len(codex) >= 3 and len(claude) >= 3
    for call in codex:
        codex_rules(call)
        assert "max_output_tokens" not in call.json and not any(i.get("role") == "developer"
                                                                  for i in call.json["input"])
    assert any(i.get("type") == "function_call_output" for i in codex[-1].json["input"])
    assert any(t.get("strict") is False for t in codex[-1].json["tools"])
    for call in claude:
        claude_rules(call)
    assert any(b.get("type") == "tool_result" for b in claude[-1].json["messages"][-1]["content"])
