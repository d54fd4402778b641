"""`oauth-hub login chatgpt` through a real headless Chromium, against the fake OpenAI IdP.

The scripted browser of tests/test_chatgpt_e2e.py follows redirects with ``requests``;
this one is Debian's Chromium: its own HTTP stack, with preconnected and kept-alive
sockets and whatever else it sends to the loopback callback server. The real CLI runs in
a subprocess with ``$BROWSER`` pointing at :mod:`oauth_core.testing.chromium`.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from oauth_core.testing.chromium import read_netlog, read_result

from ..conftest import write_config

pytestmark = pytest.mark.browser

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CALLBACK_PORTS = (1455, 1457)  # the only ones OpenAI (and the fake) accept


def login_retrying_busy_port(cli, env, attempts: int = 5):
    """Run the login; retry while another process holds both callback ports.

    Other test sessions on this machine use 1455/1457 too. Only that one failure is
    retried: any other result is returned as it is.
    """
    for attempt in range(attempts):
        result = cli("login", "chatgpt", env=env, timeout=90)
        if result.returncode == 0 or "Cannot listen for the sign-in callback" not in result.stderr:
            return result
        time.sleep(2 + attempt)
    return result


def test_login_chatgpt_through_headless_chromium(cli, chatgpt_home, idp, chromium_browser_env, screenshot_dir):
    # Fall back to 1457 rather than ask a busy 1455 to give way (GET /cancel): the
    # holder may be another engineer's test session, not a stale login of ours.
    write_config(chatgpt_home, "chatgpt", cancel_busy_port=False)

    result = login_retrying_busy_port(cli, chromium_browser_env)
    outcome = read_result(screenshot_dir)
    assert result.returncode == 0, f"{result.stderr}\nbrowser: {outcome}"
    assert "Signed in to chatgpt" in result.stderr and "user@example.com" in result.stderr

    # The browser's own account: it reached the callback and the page said so.
    assert outcome is not None and outcome.ok, outcome
    assert outcome.title.startswith("You're signed in")
    assert "You're signed in" in outcome.text and "close this tab" in outcome.text
    callback = urlsplit(outcome.final_url)
    assert callback.hostname == "127.0.0.1" and callback.port in CALLBACK_PORTS
    assert callback.path == "/auth/callback"
    shot = screenshot_dir / "signed-in.png"
    assert outcome.screenshot == str(shot)
    assert shot.read_bytes()[:8] == PNG_MAGIC and shot.stat().st_size > 2_000
    assert not (screenshot_dir / "failure.png").exists()

    # Chromium was sent to the URL the CLI printed, then redirected to the callback.
    visited = cli.visited()
    assert visited and visited[0] in result.stderr
    assert visited[0].startswith(f"{idp.issuer}/oauth/authorize?")
    assert urlsplit(visited[-1]).path == "/auth/callback"

    # Tokens from the fake, saved privately; one code exchange, no second callback.
    stored = json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())
    assert idp.verify_jwt(stored["access_token"])
    assert stored["refresh_token"] and stored["id_token"] and stored["api_key"] in idp.issued_api_keys
    assert (chatgpt_home / "chatgpt_oauth.json").stat().st_mode & 0o777 == 0o600
    assert idp.count("/oauth/token", "authorization_code") == 1
    assert json.loads((chatgpt_home / "chatgpt_models.json").read_text())

    # What Chromium's network stack did to the callback server (its NetLog also has the
    # requests Playwright does not report, favicons among them).
    requests, _preconnects = read_netlog(screenshot_dir / "netlog.json")
    origin = f"http://127.0.0.1:{callback.port}"
    to_callback = [r for r in requests if r.url.startswith(origin + "/")]
    callbacks = [r for r in to_callback if r.path == "/auth/callback"]
    assert len(callbacks) == 1, to_callback  # no retry, no second callback over a kept-alive socket
    assert callbacks[0].status == 200 and callbacks[0].net_error is None
    for other in to_callback:
        if other.path == "/favicon.ico":
            # Answered (404) while the server ran, or refused once the login had ended:
            # either way it did not disturb the callback above.
            assert other.status == 404 or other.net_error == -102, other
        else:
            assert other is callbacks[0], other
    # Chromium's callback page makes no favicon request today (the page's CSP,
    # default-src 'none', stops it); the scripted browser's favicon fetch covers that.
    # Chromium asks for keep-alive and may preconnect idle sockets (read_netlog lists them);
    # the server answers "Connection: close" and does not wait on them (the login above
    # finished; speed is measured in benchmarks/, not asserted here).
