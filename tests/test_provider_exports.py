"""What `oauth-hub export` writes for Copilot and OpenRouter, loaded and used by the real llm and LiteLLM.

Each tool runs in its own process, as a person would run it, against the strict fakes:
OpenRouter entries go straight to the (fake) OpenRouter API with the key; Copilot
entries go through `oauth-hub serve`, which adds the fresh Copilot token and the
headers the Copilot API insists on.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from oauth_core import serve as hub_serve
from oauth_core.exporters import export_models, exporter_names
from oauth_core.testing.fake_copilot import FakeCopilot
from oauth_core.testing.fake_openrouter import FakeOpenRouter
from oauth_core.testing.seed import seed_sign_in

from .conftest import write_config
from .test_serve import seed_models

SERVE_KEY = "local-serve-key-for-the-export-tests-0001"
LLM = str(Path(sys.executable).with_name("llm"))


@pytest.fixture
def openrouter(home):
    with FakeOpenRouter() as fake:
        write_config(home, "openrouter", **fake.provider_settings())
        key = fake.mint_key()
        seed_sign_in("openrouter", {"access_token": key, "user_id": fake.user_id}, home=home, api_key=key)
        seed_models("openrouter", home)
        fake.key = key
        yield fake


@pytest.fixture
def copilot(home):
    with FakeCopilot() as fake:
        write_config(home, "copilot", **fake.provider_settings())
        seed_sign_in("copilot", fake.mint_tokens(), home=home)
        seed_models("copilot", home)
        yield fake


@pytest.fixture
def serve(home):
    server = hub_serve.make_server(port=0, key=SERVE_KEY, home=home)
    hub_serve.start_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


def tool_env(cli, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(cli.env, LLM_USER_PATH=str(tmp_path / "llm"), LITELLM_LOCAL_MODEL_COST_MAP="True", **extra)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"  # llm and oauth-hub, as installed
    env.pop("OPENAI_API_KEY", None)
    return env


def sh(command: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=120)


def llm_answers(env: dict[str, str], model: str) -> str:
    listed = subprocess.run([LLM, "models", "list"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert model in listed.stdout
    said = subprocess.run([LLM, "-m", model, "--no-stream", "hello"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert said.returncode == 0, said.stderr
    return said.stdout.strip()


LITELLM_SCRIPT = textwrap.dedent("""
    import sys, yaml, litellm
    config = yaml.safe_load(open(sys.argv[1]))
    router = litellm.Router(model_list=config["model_list"])
    for stream in (False, True):
        answer = router.completion(model=sys.argv[2], messages=[{"role": "user", "content": "hello"}],
                                   stream=stream)
        if stream:
            print("".join(chunk.choices[0].delta.content or "" for chunk in answer))
        else:
            print(answer.choices[0].message.content)
""")


def litellm_answers(env: dict[str, str], config: Path, model: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "litellm_router.py"
    script.write_text(LITELLM_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(config), model], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()


def test_every_exporter_takes_both_providers(home, openrouter, copilot, serve):
    for name in exporter_names():
        for provider in ("openrouter", "copilot"):
            result = export_models(provider, name, print_only=True, home=home, serve_port=serve.port)
            assert result.keys, (provider, name, result.skipped)


def test_openrouter_entries_in_llm_and_litellm(cli, home, openrouter, tmp_path):
    env = tool_env(cli, tmp_path)
    (tmp_path / "llm").mkdir()
    result = export_models("openrouter", "llm", output=tmp_path / "llm" / "extra-openai-models.yaml", home=home)
    assert not result.via_serve
    # The instruction export prints, run as written: llm keeps the key in its own key store.
    (store_key,) = [line.split(": ", 1)[1] for line in result.instructions if "llm keys set" in line]
    assert sh(store_key, env).returncode == 0
    assert llm_answers(env, "openrouter-openai/gpt-4o") == openrouter.reply_text
    (call,) = openrouter.requests_to(openrouter.chat_url)
    assert call.headers["authorization"] == f"Bearer {openrouter.key}"
    assert call.headers["x-openrouter-title"] == "oauth-hub" and call.json["model"] == "openai/gpt-4o"

    config = tmp_path / "litellm.yaml"
    export_models("openrouter", "litellm", output=config, home=home)
    env_lines = cli("env", "openrouter").stdout  # what `eval "$(oauth-hub env openrouter)"` sets
    key = env_lines.strip().split("=", 1)[1]
    answers = litellm_answers(dict(env, OPENROUTER_API_KEY=key), config, "openrouter-anthropic/claude-sonnet-4.5",
                              tmp_path)
    assert answers == [openrouter.reply_text] * 2
    calls = openrouter.requests_to(openrouter.chat_url)[1:]
    assert [c.json.get("stream", False) for c in calls] == [False, True]
    assert all(c.headers["authorization"] == f"Bearer {key}" and c.headers["x-openrouter-title"] == "oauth-hub"
               and c.json["model"] == "anthropic/claude-sonnet-4.5" for c in calls)


def test_copilot_entries_in_llm_and_litellm_through_serve(cli, home, copilot, serve, tmp_path):
    env = tool_env(cli, tmp_path, OAUTH_HUB_SERVE_KEY=SERVE_KEY)
    (tmp_path / "llm").mkdir()
    target = tmp_path / "llm" / "extra-openai-models.yaml"
    result = export_models("copilot", "llm", output=target, home=home, serve_port=serve.port)
    items = {i["model_id"]: i for i in yaml.safe_load(target.read_text())}
    assert result.via_serve and not result.skipped
    assert set(items) == {"copilot-gpt-4.1", "copilot-gpt-5-mini", "copilot-gpt-5-codex", "copilot-claude-sonnet-4.5"}
    assert items["copilot-gpt-5-codex"].get("responses") is True  # Copilot serves it through /responses only
    assert sh(f"llm keys set oauth-hub-serve --value {SERVE_KEY}", env).returncode == 0
    assert llm_answers(env, "copilot-gpt-4.1") == copilot.reply_text
    assert llm_answers(env, "copilot-gpt-5-codex") == copilot.reply_text

    config = tmp_path / "litellm.yaml"
    export_models("copilot", "litellm", output=config, home=home, serve_port=serve.port)
    assert litellm_answers(env, config, "copilot-claude-sonnet-4.5", tmp_path) == [copilot.reply_text] * 2

    token = cli("token", "copilot").stdout.strip()
    calls = copilot.inference_requests()
    assert [(c.path.rsplit("/", 1)[-1], c.json["model"]) for c in calls] == [
        ("completions", "gpt-4.1"), ("responses", "gpt-5-codex"), ("completions", "claude-sonnet-4.5"),
        ("completions", "claude-sonnet-4.5")]
    for call in calls:
        # serve swapped its local key for the Copilot token and added what the Copilot API wants.
        assert call.status == 200 and call.path.startswith("/api.individual.githubcopilot.com/")
        assert call.headers["authorization"] == f"Bearer {token}"
        assert SERVE_KEY not in str(call.headers)
        assert call.headers["copilot-integration-id"] == "vscode-chat"
        assert call.headers["editor-version"] == "vscode/1.104.3"
        assert call.headers["x-initiator"] == "user"
