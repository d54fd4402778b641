"""Running another tool's README recipe as a person would: shared by the tool tests.

``recipe`` ties a command to README.md (so the docs and the test cannot drift),
``person_env`` is a temporary user's environment (isolated HOME and XDG dirs, no real
API keys), ``shell`` runs README lines in bash, ``start_and_wait``/``stop`` run a
server a recipe starts (``oauth-hub serve``, the LiteLLM proxy). The tools pinned in
their own venvs under ``.tools/`` come from ``scripts/install-test-deps.sh``.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
TOOLS = REPO / ".tools"
BIN = Path(sys.executable).parent  # the venv with oauth-hub, llm and the LiteLLM library
#: Variables a person's shell must not bring in: real keys, another home, the tools' own settings.
FOREIGN_ENV = ("OAUTH_HUB", "OPENAI", "ANTHROPIC", "OPENROUTER", "XDG_", "LITELLM", "LLM_", "AIDER", "PUPPY",
               "CHATGPT_")


def tool_bin(venv: str, command: str) -> Path:
    path = TOOLS / venv / "bin" / command
    if not path.exists():
        pytest.fail(f"{path} is missing: run `bash scripts/install-test-deps.sh` (it installs {venv} into "
                    f".tools/{venv} from tests/tools/{venv}/requirements.txt)", pytrace=False)
    return path


def recipe(command: str) -> str:
    """A command exactly as a README table writes it (so the two cannot drift)."""
    assert f"`{command}`" in README, f"README.md no longer gives this command: {command}"
    return command


def person_env(user: Path, path: str, **extra: str) -> dict[str, str]:
    """A person's environment: an isolated HOME and XDG dirs, ``path`` as PATH, no real API keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env.update(HOME=str(user), XDG_CONFIG_HOME=str(user / ".config"), XDG_DATA_HOME=str(user / ".local/share"),
               XDG_CACHE_HOME=str(user / ".cache"), XDG_STATE_HOME=str(user / ".local/state"), PATH=path,
               NO_COLOR="1", **extra)
    return env


def shell(command: str, env: dict[str, str], cwd: Path, prelude: str = "", timeout: int = 300) -> str:
    """Run README lines in bash (after ``prelude``, lines the README says to run first); their output."""
    script = f"set -euo pipefail\n{prelude}\n{command}\n"
    done = subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{output[-4000:]}"
    return output


def start_and_wait(command: list[str], env: dict[str, str], log: Path, ready: str, cwd: Path,
                   timeout: float = 240) -> subprocess.Popen:
    """Start a server process, its output into `log`, and wait until it prints `ready` (or fail, with the log)."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while ready not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            pytest.fail(f"{shlex.join(command)} did not start (exit {process.returncode}):\n"
                        f"{log.read_text()[-4000:]}", pytrace=False)
        try:
            process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    return process


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def user_text(call: Any) -> str:
    """Everything a request carried as user text (Chat Completions or Messages messages, Responses input)."""
    items = call.json.get("input") or call.json.get("messages") or []
    if isinstance(items, str):
        return items
    texts = []
    for item in items:
        if item.get("role") != "user":
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        else:
            texts.extend(part.get("text", "") for part in content if isinstance(part, dict))
    return "\n".join(texts)
