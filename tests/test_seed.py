"""seed_sign_in, the helper provider authors start refresh and API tests with."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

from oauth_core.testing.seed import seed_sign_in
from oauth_core.tokens import get_token, needs_refresh


def test_a_negative_expires_in_stores_a_past_expiry_for_opaque_tokens(claude_home, anthropic):
    answer = anthropic.mint_tokens(expires_in=-10)
    assert answer["access_token"].count(".") != 2  # opaque: no JWT exp to fall back on
    before = time.time()
    seeded = seed_sign_in("claude_code", answer, home=claude_home)
    stored = json.loads((claude_home / "claude_code_oauth.json").read_text())
    assert stored["expires_at"] == seeded.expires_at and seeded.expires_at <= before
    assert needs_refresh(seeded)
    assert get_token("claude_code", home=claude_home) != answer["access_token"]  # refreshed on first use
    assert anthropic.count(urlsplit(anthropic.token_url).path, "refresh_token") == 1


def test_a_string_expires_in_is_understood_too(claude_home, anthropic):
    answer = dict(anthropic.mint_tokens(), expires_in="-5")
    assert seed_sign_in("claude_code", answer, home=claude_home).expires_at <= time.time()
