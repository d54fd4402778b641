"""The README's Python SDK recipe, run exactly as written against the fakes.

The block after the ``recipe: python-sdks`` marker is taken verbatim and run in a
fresh interpreter with the real ``openai`` and ``anthropic`` packages. The SDKs read
their base URL from ``OPENAI_BASE_URL`` / ``ANTHROPIC_BASE_URL``, which point at the
fakes; the home holds a ChatGPT sign-in with an API key and a Claude subscription. Both
credentials are already refused by the fakes, so the recipe only works if the auth
recovers from the 401 as the README promises.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from oauth_core.testing.seed import seed_sign_in

README = Path(__file__).resolve().parents[1] / "README.md"


def recipe(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- recipe: {re.escape(name)}\b[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert match, f"README.md has no python block marked `recipe: {name}`"
    return match.group(1)


def test_the_sdk_recipe_works_as_written_and_survives_a_401(tmp_path, home, chatgpt_home, claude_home, idp,
                                                            anthropic, cli):
    seed_sign_in("chatgpt", idp.mint_tokens(), home=home, api_key="sk-revoked-before-the-recipe-runs")
    anthropic.require_claude_code_system = True  # as the real API treats a subscription's token
    seed_sign_in("claude_code", anthropic.mint_tokens(), home=home)
    anthropic.expire_access_tokens()
    script = tmp_path / "recipe.py"
    script.write_text(recipe("python-sdks"))

    env = dict(cli.env, OPENAI_BASE_URL=idp.api_base, ANTHROPIC_BASE_URL=anthropic.api_base)
    env.pop("OPENAI_API_KEY", None)
    env.pop("ANTHROPIC_API_KEY", None)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    models_line, reply_line = done.stdout.strip().splitlines()
    assert json.loads(models_line.replace("'", '"')) == list(idp.models)
    assert reply_line == anthropic.reply_text

    assert [c.status for c in idp.requests_to("/v1/models")] == [401, 200]
    assert [c.status for c in anthropic.requests_to("/v1/messages")] == [401, 200]
