"""Login where people really are: pasted redirects, device codes, busy ports, Ctrl+C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from oauth_core.paste import PasteError, parse_pasted

URL = re.compile(r"(http://\S+/oauth/authorize\?\S+)")


class Running:
    """A login process whose stderr is read line by line in the background."""

    def __init__(self, cli, *args: str, env: dict | None = None) -> None:
        self.proc = subprocess.Popen([*cli.command, *args], env=dict(cli.env, **(env or {})), text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 20) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.stderr)
            if found:
                return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{pattern!r} never appeared in:\n{self.stderr}")

    def paste(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def finish(self, timeout: float = 30) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(5)
        return code


def redirect_for(authorize_url: str) -> str:
    """What the browser's address bar shows after signing in: the IdP's redirect target."""
    response = requests.get(authorize_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# -- paste-back ------------------------------------------------------------------------


def test_pasted_redirect_url_completes_login_and_wrong_state_is_refused(cli, chatgpt_home, idp):
    login = Running(cli, "login", "chatgpt", "--no-browser")
    url = login.wait_for(URL.pattern).group(1)
    login.wait_for("paste it here")
    redirect = redirect_for(url)
    assert redirect.startswith("http://127.0.0.1:1455/auth/callback?")

    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
    forged = "http://127.0.0.1:1455/auth/callback?" + urlencode(dict(params, state="somebody-else"))
    login.paste(forged)
    login.wait_for("does not match")
    login.paste("hello there")
    login.wait_for("not a redirect URL")
    assert login.proc.poll() is None, "bad pastes must not end the login"
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()

    login.paste(redirect)
    assert login.finish() == 0, login.stderr
    assert "Got it." in login.stderr and "Signed in to chatgpt" in login.stderr
    assert json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())["access_token"]
    assert idp.count("/oauth/token", "authorization_code") == 1


def test_pasted_query_string_and_code_hash_state_forms(cli, chatgpt_home, idp):
    login = Running(cli, "login", "chatgpt", "--no-browser")
    url = login.wait_for(URL.pattern).group(1)
    params = {k: v[0] for k, v in parse_qs(urlsplit(redirect_for(url)).query).items()}
    login.paste(f"{params['code']}#{params['state']}")
    assert login.finish() == 0, login.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("http://127.0.0.1:1455/auth/callback?code=c1&state=s1", {"code": "c1", "state": "s1"}),
    ("  'http://localhost:1455/auth/callback?code=c1&state=s1&scope=x'  ", {"code": "c1", "state": "s1", "scope": "x"}),
    ("?code=c2&state=s2", {"code": "c2", "state": "s2"}),
    ("code=c3&state=s3", {"code": "c3", "state": "s3"}),
    ("c4#s4", {"code": "c4", "state": "s4"}),
    ("https://platform.example/oauth/code/callback#code=c5&state=s5", {"code": "c5", "state": "s5"}),
    ("http://127.0.0.1:1455/auth/callback?error=access_denied&state=s6", {"error": "access_denied", "state": "s6"}),
])
def test_parse_pasted_accepts_the_documented_forms(text, expected):
    assert parse_pasted(text) == expected


@pytest.mark.parametrize("text", ["", "   ", "just words", "http://127.0.0.1:1455/auth/callback", "state=only",
                                  "x" * 20000])
def test_parse_pasted_rejects_junk(text):
    with pytest.raises(PasteError):
        parse_pasted(text)


# -- device code -------------------------------------------------------------------------


def test_device_login_polls_until_approved(cli, chatgpt_home, idp):
    idp.device_poll_interval = "0.3"  # a string, as the real endpoint sometimes sends
    login = Running(cli, "login", "chatgpt", "--device")
    code = login.wait_for(r"\n\s+([A-Z0-9]{4}-[A-Z0-9]{4,})\s*\n").group(1)
    assert f"{idp.issuer}/codex/device" in login.stderr
    deadline = time.monotonic() + 10
    while idp.count("/api/accounts/deviceauth/token") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    pending = idp.requests_to("/api/accounts/deviceauth/token")
    assert len(pending) >= 2 and all(r.status in (403, 404) for r in pending)
    idp.approve_device(code)
    assert login.finish() == 0, login.stderr
    exchange = [r for r in idp.requests_to("/oauth/token") if r.form and r.form.get("grant_type") ==
                "authorization_code"]
    assert exchange and exchange[0].form["redirect_uri"] == f"{idp.issuer}/deviceauth/callback"
    stored = json.loads((chatgpt_home / "chatgpt_oauth.json").read_text())
    assert stored["refresh_token"] and stored["api_key"]


def test_device_code_that_expires_fails_clearly(cli, chatgpt_home, idp):
    idp.device_poll_interval = "0.3"
    idp.device_code_ttl = 1
    result = cli("login", "chatgpt", "--device")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: The device sign-in stopped") and "--device" in last
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


def test_device_login_times_out(cli, chatgpt_home, idp):
    idp.device_poll_interval = "0.3"
    result = cli("login", "chatgpt", "--device", "--timeout", "1.5")
    assert result.returncode == 1
    assert "not approved within 1 seconds" in result.stderr and "--device" in result.stderr


def test_device_login_unsupported_provider_suggests_paste(home):
    from oauth_core import plugins
    from oauth_core.errors import LoginError
    from oauth_core.hookspecs import hookimpl
    from oauth_core.login import device_login

    class NoDevice:
        @hookimpl
        def provider_defaults(self):
            return {"port": 18765}

    plugins.register_provider("nodevice", NoDevice())
    try:
        with pytest.raises(LoginError, match="does not offer device-code sign-in.*--no-browser"):
            device_login("nodevice", home=home)
    finally:
        plugins.unregister_provider("nodevice")


# -- busy ports ------------------------------------------------------------------------------


def test_stale_oauth_hub_login_gives_way(cli, chatgpt_home, idp):
    stale = Running(cli, "login", "chatgpt", "--no-browser")
    stale.wait_for("Waiting for the sign-in on http://127.0.0.1:1455")
    fresh = cli("login", "chatgpt")
    assert fresh.returncode == 0, fresh.stderr
    assert "older login" in fresh.stderr
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A1455" in fresh.stderr
    assert stale.finish() == 130
    assert "newer login" in stale.stderr


@pytest.fixture
def squatter():
    """Listening sockets that never answer, like an IDE sitting on a port."""
    held: list[socket.socket] = []

    def hold(port: int) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past connections may linger in TIME_WAIT
        sock.bind(("127.0.0.1", port))
        sock.listen(8)
        held.append(sock)

    yield hold
    for sock in held:
        sock.close()


def test_busy_port_that_ignores_cancel_moves_login_to_1457(cli, chatgpt_home, idp, squatter):
    squatter(1455)
    result = cli("login", "chatgpt")
    assert result.returncode == 0, result.stderr
    assert "Port 1455 is busy; using port 1457" in result.stderr
    visited = cli.visited()
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A1457%2Fauth%2Fcallback" in visited[0]
    assert any(v.startswith("http://127.0.0.1:1457/auth/callback?") for v in visited)


def test_both_ports_busy_is_a_clear_error(cli, chatgpt_home, idp, squatter):
    squatter(1455)
    squatter(1457)
    result = cli("login", "chatgpt")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    message = lines[0]
    assert "1455" in message and "1457" in message and "already in use" in message
    assert f"pid {os.getpid()}" in message  # the OS told us who holds it: this test process
    assert "--device" in message
    # Not --no-browser: pasting the redirect URL needs the same callback port, so that
    # advice only led to the same error again.
    assert "--no-browser" not in message
    pasted = cli("login", "chatgpt", "--no-browser", stdin="")
    assert pasted.returncode == 1 and "already in use" in pasted.stderr
    assert not (chatgpt_home / "chatgpt_oauth.json").exists()


# -- time ------------------------------------------------------------------------------------


def test_ctrl_c_stops_cleanly(cli, chatgpt_home, idp):
    login = Running(cli, "login", "chatgpt", "--no-browser")
    login.wait_for("Waiting for the sign-in")
    login.proc.send_signal(signal.SIGINT)
    assert login.finish() == 130
    assert "nothing was saved" in login.stderr and "Traceback" not in login.stderr
    assert sorted(p.name for p in chatgpt_home.iterdir()) == ["config.toml"]
    assert port_is_free(1455)


def test_timeout_stops_and_leaves_nothing(cli, chatgpt_home, idp):
    result = cli("login", "chatgpt", "--no-browser", "--timeout", "2")
    assert result.returncode == 1
    # A wait of a minute or less was chosen so: no "less than a minute left" right at the start.
    assert "Less than a minute left" not in result.stderr
    assert "No sign-in arrived within 2 seconds" in result.stderr
    assert sorted(p.name for p in chatgpt_home.iterdir()) == ["config.toml"]
    assert port_is_free(1455)


def test_the_last_minute_is_announced_when_it_starts(cli, chatgpt_home, idp):
    login = Running(cli, "login", "chatgpt", "--no-browser", "--timeout", "61")
    login.wait_for("Waiting for the sign-in on http://127.0.0.1:1455 \\(up to 1:01")
    login.wait_for("Less than a minute left: finish signing in now")
    login.proc.send_signal(signal.SIGINT)
    assert login.finish() == 130
    assert login.stderr.count("Less than a minute left") == 1


# -- browsers --------------------------------------------------------------------------------


def _no_browser_env(cli) -> dict:
    env = {k: v for k, v in cli.env.items() if k not in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY")}
    return env


def test_ssh_session_does_not_start_a_browser(cli, chatgpt_home, idp):
    env = _no_browser_env(cli)
    env["SSH_CONNECTION"] = "10.0.0.1 50000 10.0.0.2 22"
    proc = subprocess.run([*cli.command, "login", "chatgpt", "--timeout", "1"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 1
    assert "Could not open a browser here (this is an SSH session)" in proc.stderr
    assert "paste it here" in proc.stderr
    assert f"{idp.issuer}/oauth/authorize?" in proc.stderr


def test_wsl_uses_the_windows_browser(cli, chatgpt_home, idp, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "wslview.log"
    script = bin_dir / "wslview"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$1\" >> {log}\nexec {sys.executable} -m "
                      "oauth_core.testing.browser \"$1\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = _no_browser_env(cli)
    env.update(WSL_DISTRO_NAME="Ubuntu", PATH=f"{bin_dir}{os.pathsep}{env['PATH']}")
    proc = subprocess.run([*cli.command, "login", "chatgpt"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Opened the sign-in page in your browser" in proc.stderr
    assert log.read_text().startswith(f"{idp.issuer}/oauth/authorize?")


# -- doctor ----------------------------------------------------------------------------------


def test_doctor_reports_busy_port_and_loose_home(cli, chatgpt_home, idp, squatter):
    squatter(1455)
    squatter(1457)
    os.chmod(chatgpt_home, 0o755)  # noqa: S103 - the loose mode under test
    result = cli("doctor", "chatgpt")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    port = next(line for line in lines if line.split()[1:2] == ["port:"])
    assert port.startswith("FAIL") and "1455" in port and f"pid {os.getpid()}" in port
    home = next(line for line in lines if line.split()[1:2] == ["home:"])
    assert home.startswith("FAIL") and "755" in home
    assert f"chmod 700 {chatgpt_home}" in result.stdout
    network = next(line for line in lines if line.split()[1:2] == ["network:"])
    assert network.startswith("ok")
    as_json = cli("doctor", "chatgpt", "--json")
    statuses = {c["name"]: c["status"] for c in as_json.json}
    assert statuses["port"] == "failed" and statuses["home"] == "failed" and statuses["network"] == "ok"


def test_doctor_all_clear(cli, chatgpt_home, idp):
    result = cli("doctor", "chatgpt", env={"BROWSER": "true"})
    assert result.returncode == 0, result.stdout
    assert not [line for line in result.stdout.splitlines() if line.startswith("FAIL")]


def test_wsl_without_wslview_hands_the_url_to_powershell_outside_the_command(cli, chatgpt_home, idp, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "powershell.log"
    script = bin_dir / "powershell.exe"
    # Records its arguments and the URL it was given through the environment, then "opens" it.
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" \"$OAUTH_HUB_OPEN_URL\" > {log}\n"
                      f"exec {sys.executable} -m oauth_core.testing.browser \"$OAUTH_HUB_OPEN_URL\"\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    env = _no_browser_env(cli)
    env.update(WSL_DISTRO_NAME="Ubuntu", PATH=f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    proc = subprocess.run([*cli.command, "login", "chatgpt"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    arguments, url = log.read_text().splitlines()[:2]
    assert "Start-Process $env:OAUTH_HUB_OPEN_URL" in arguments
    assert "authorize?" not in arguments, "the URL never appears in PowerShell's command text"
    assert url.startswith(f"{idp.issuer}/oauth/authorize?")
