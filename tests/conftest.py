"""Shared fixtures: a private home, the fake OpenAI IdP, a scripted browser, and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import tomli_w

from oauth_core.testing.fake_anthropic import FakeAnthropic
from oauth_core.testing.fake_openai import FakeOpenAI

CLI_TIMEOUT = 60


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty OAUTH_HUB_HOME for this test (also for in-process calls)."""
    path = tmp_path / "home"
    monkeypatch.setenv("OAUTH_HUB_HOME", str(path))
    return path


@pytest.fixture
def idp():
    with FakeOpenAI() as server:
        yield server


def write_config(home: Path, provider: str, **settings) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = home / "config.toml"
    data = {}
    if path.exists():
        import tomllib

        data = tomllib.loads(path.read_text())
    data.setdefault("providers", {}).setdefault(provider, {}).update(settings)
    path.write_text(tomli_w.dumps(data))


@pytest.fixture
def chatgpt_home(home, idp) -> Path:
    """A home whose config points the chatgpt provider at the fake IdP."""
    write_config(home, "chatgpt", issuer=idp.issuer, api_base=idp.api_base, chatgpt_base=idp.chatgpt_base,
                 callback_timeout=20)
    return home


@pytest.fixture
def subscription(idp):
    """A ChatGPT account without an API org: the access token and the Codex backend are used."""
    idp.organization_id = None
    idp.project_id = None
    return idp


@pytest.fixture
def anthropic():
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def claude_home(home, anthropic) -> Path:
    """A home whose config points the claude_code provider at the fake Anthropic."""
    write_config(home, "claude_code", **anthropic.provider_settings(), callback_timeout=20)
    return home


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout)


class Cli:
    """Runs the installed ``oauth-hub`` command in a subprocess, like a person would."""

    def __init__(self, home: Path, tmp_path: Path) -> None:
        self.home = home
        self.browser_log = tmp_path / "browser.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTH_HUB")}
        self.env.update(
            OAUTH_HUB_HOME=str(home),
            BROWSER=f"{sys.executable} -m oauth_core.testing.browser %s",
            OAUTH_HUB_TEST_BROWSER_LOG=str(self.browser_log),
            NO_COLOR="1",
            PYTHONUNBUFFERED="1",
        )
        script = Path(sys.executable).with_name("oauth-hub")
        self.command = [str(script)] if script.exists() else [sys.executable, "-m", "oauth_hub"]

    def __call__(self, *args: str, env: dict | None = None, stdin: str | None = None,
                 timeout: float = CLI_TIMEOUT) -> Result:
        merged = dict(self.env, **(env or {}))
        proc = subprocess.run([*self.command, *args], env=merged, input=stdin, capture_output=True, text=True,
                              timeout=timeout)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def visited(self) -> list[str]:
        return self.browser_log.read_text().splitlines() if self.browser_log.exists() else []


@pytest.fixture
def cli(home, tmp_path) -> Cli:
    return Cli(home, tmp_path)
