"""``oauth_core.doctor``: each check against real sockets, a real HTTP server and real files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from oauth_core import doctor, plugins
from oauth_core.doctor import Check, run_checks
from oauth_core.hookspecs import hookimpl

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="port holders are read from /proc")

NETWORK_VARS = (*doctor.PROXY_VARS, *doctor.NO_PROXY_VARS, *doctor.CA_VARS, "SSL_CERT_DIR")


@pytest.fixture(autouse=True)
def clean_network_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's proxies and CA bundles must not decide these tests."""
    for var in NETWORK_VARS:
        monkeypatch.delenv(var, raising=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def hold() -> Iterator[Callable[[int], socket.socket]]:
    """Listen on a port for the length of the test, like a stale login or another tool would."""
    held: list[socket.socket] = []

    def _hold(port: int) -> socket.socket:
        sock = socket.socket()
        sock.bind(("127.0.0.1", port))
        sock.listen()
        held.append(sock)
        return sock

    yield _hold
    for sock in held:
        sock.close()


@pytest.fixture
def provider_factory() -> Iterator[Callable[..., str]]:
    """Register in-process providers with chosen ports and issuer; unregister them afterwards."""
    names: list[str] = []

    def make(name: str, port: int | None, fallback_ports: list[int] | None = None, issuer: str | None = None) -> str:
        defaults: dict = {"fallback_ports": list(fallback_ports or []), "title": name.title()}
        if port is not None:
            defaults["port"] = port
        if issuer is not None:
            defaults["issuer"] = issuer

        class Plugin:
            @hookimpl
            def provider_defaults(self) -> dict:
                return dict(defaults)

        plugins.register_provider(name, Plugin())
        names.append(name)
        return name

    yield make
    for name in names:
        plugins.unregister_provider(name)


class FakeIssuer:
    """An issuer that answers the discovery URL with a ``Date`` header ``offset`` seconds off."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.requests: list[str] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def date_time_string(self, timestamp: float | None = None) -> str:
                return formatdate(time.time() + issuer.offset, usegmt=True)

            def do_GET(self) -> None:  # noqa: N802
                issuer.requests.append(self.path)
                if self.path == "/.well-known/openid-configuration":
                    body = json.dumps({"issuer": issuer.url}).encode()
                    self.send_response(200)
                else:
                    body = b"{}"
                    self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    server = FakeIssuer()
    yield server
    server.close()


def only(checks: list[Check], name: str, provider: str | None = None) -> Check:
    found = [c for c in checks if c.name == name and (provider is None or c.provider == provider)]
    assert len(found) == 1, f"expected one {name!r} check, got {[c.to_json() for c in checks]}"
    return found[0]


# -- port --------------------------------------------------------------------------


def test_free_port_is_ok(home, provider_factory):
    port, fallback = free_port(), free_port()
    name = provider_factory("doc-free", port, [fallback])
    check = only(run_checks(name, home=home), "port")
    assert check.ok is True and check.fix is None
    assert check.provider == name
    assert str(port) in check.summary and "free" in check.summary


def test_a_provider_without_a_fixed_port_gets_no_port_number_in_its_check(home, provider_factory):
    # Port 0 means "any free port" (Claude, OpenRouter); Copilot signs in with a device
    # code only. "callback port 0 is free" said nothing true about either.
    name = provider_factory("doc-any-port", 0)
    check = only(run_checks(name, home=home), "port")
    assert check.ok is True and "port 0" not in check.summary
    assert "any free port" in check.summary
    check = only(run_checks("copilot", home=home, timeout=0.5), "port")
    assert check.ok is True and "port 0" not in check.summary
    assert "device code" in check.summary and "no callback port needed" in check.summary


@linux_only
def test_busy_port_names_the_holder_and_the_port(home, provider_factory, hold):
    port = free_port()
    hold(port)
    name = provider_factory("doc-busy", port)
    check = only(run_checks(name, home=home), "port")
    assert check.ok is False
    assert f"port {port} in use" in check.summary
    assert f"pid {os.getpid()}" in check.summary  # describe_holder found this very process
    assert "stop" in check.fix
    assert "--no-browser" not in check.fix  # pasting the redirect URL needs the same port: no way out
    assert "--device" not in check.fix  # this provider has no device login to offer


def test_fallback_only_is_a_warning(home, provider_factory, hold):
    port, fallback = free_port(), free_port()
    hold(port)
    name = provider_factory("doc-fallback", port, [fallback])
    check = only(run_checks(name, home=home), "port")
    assert check.ok is None
    assert f"port {port} in use" in check.summary
    assert f"fallback port {fallback}" in check.summary


def test_every_port_busy_fails(home, provider_factory, hold):
    port, fallback = free_port(), free_port()
    hold(port)
    hold(fallback)
    check = only(run_checks(provider_factory("doc-allbusy", port, [fallback]), home=home), "port")
    assert check.ok is False
    assert f"port {port}" in check.summary and f"port {fallback}" in check.summary


def test_a_provider_that_fails_to_load_is_a_failed_check(home, provider_factory):
    name = provider_factory("doc-noport", None)
    checks = run_checks(name, home=home)  # must not raise
    check = only(checks, "provider")
    assert check.ok is False and check.provider == name
    assert "port" in check.summary and check.fix
    assert not [c for c in checks if c.name == "port"]


def test_an_unknown_provider_is_a_failed_check(home):
    check = only(run_checks("doc-nonesuch", home=home), "provider")
    assert check.ok is False and "oauth-hub providers" in check.fix


def test_all_providers_are_checked_when_none_is_named(home, provider_factory):
    a = provider_factory("doc-all-a", free_port())
    b = provider_factory("doc-all-b", free_port())
    checks = run_checks(home=home)
    assert {c.provider for c in checks if c.name == "port"} >= {a, b}


# -- home --------------------------------------------------------------------------


def test_missing_home_will_be_created(home):
    assert not home.exists()
    check = doctor.check_home(home)
    assert check.ok is True and "will be created" in check.summary
    assert not home.exists()  # the doctor only looks


@posix_only
def test_good_home_is_ok(home):
    home.mkdir(mode=0o700)
    os.chmod(home, 0o700)
    token = home / "doc_oauth.json"
    token.write_text("{}")
    os.chmod(token, 0o600)
    check = doctor.check_home(home)
    assert check.ok is True and check.fix is None
    assert "mode 700" in check.summary and "1 token file" in check.summary
    assert sorted(p.name for p in home.iterdir()) == ["doc_oauth.json"]  # the write probe was removed


@posix_only
def test_loose_home_mode_fails_with_chmod_fix(home):
    home.mkdir()
    os.chmod(home, 0o755)  # noqa: S103 (the loose mode is what is being tested)
    check = doctor.check_home(home)
    assert check.ok is False
    assert "755" in check.summary
    assert f"chmod 700 {home}" in check.fix


@posix_only
def test_loose_token_file_fails_with_chmod_fix(home):
    home.mkdir(mode=0o700)
    os.chmod(home, 0o700)
    token = home / "doc_oauth.json"
    token.write_text("{}")
    os.chmod(token, 0o644)
    check = doctor.check_home(home)
    assert check.ok is False
    assert "doc_oauth.json has mode 644" in check.summary
    assert f"chmod 600 {token}" in check.fix
    assert "chmod 700" not in check.fix  # the home itself is fine


@posix_only
def test_home_from_environment_when_not_given(home):
    home.mkdir(mode=0o700)
    check = doctor.check_home()
    assert check.ok is True and str(home) in check.summary  # OAUTH_HUB_HOME, set by the fixture


# -- network and clock -------------------------------------------------------------


def test_reachable_issuer_is_ok_with_status_and_time(home, provider_factory, issuer):
    name = provider_factory("doc-net", free_port(), issuer=issuer.url)
    checks = run_checks(name, home=home)
    check = only(checks, "network")
    assert check.ok is True, check.summary
    assert "HTTP 200" in check.summary and " ms" in check.summary
    assert issuer.requests == ["/.well-known/openid-configuration"]


def test_any_http_answer_counts_as_reachable(home, provider_factory, issuer):
    name = provider_factory("doc-net404", free_port(), issuer=issuer.url + "/tenant")
    check = only(run_checks(name, home=home), "network")
    assert check.ok is True and "HTTP 404" in check.summary


def test_unreachable_issuer_fails_and_clock_is_skipped(home, provider_factory):
    closed = free_port()
    name = provider_factory("doc-down", free_port(), issuer=f"http://127.0.0.1:{closed}")
    checks = run_checks(name, home=home, timeout=2)
    check = only(checks, "network")
    assert check.ok is False
    assert "connection refused" in check.summary and "no proxy" in check.summary
    assert check.fix
    clock = only(checks, "clock")
    assert clock.ok is None and "could not check" in clock.summary


def test_an_unreachable_provider_nobody_uses_is_a_warning_not_a_failure(home, provider_factory):
    """`doctor` without a provider checks every installed one; only those signed in (or named) can fail it."""
    from oauth_core.testing.seed import seed_sign_in

    down = f"http://127.0.0.1:{free_port()}"
    used = provider_factory("doc-used", free_port(), issuer=down)
    unused = provider_factory("doc-unused", free_port(), issuer=down)
    seed_sign_in(used, {"access_token": "at-doc", "expires_in": 3600}, home=home)
    network = {c.provider: c for c in run_checks(home=home, timeout=2) if c.name == "network"}
    assert network[used].ok is False
    assert network[unused].ok is None and "not signed in: not a failure" in network[unused].summary
    assert only(run_checks(unused, home=home, timeout=2), "network").ok is False  # named: it counts


def test_no_issuer_means_no_network_check(home, provider_factory):
    checks = run_checks(provider_factory("doc-noissuer", free_port()), home=home)
    assert not [c for c in checks if c.name == "network"]
    assert only(checks, "clock").ok is None


@pytest.mark.parametrize(("offset", "word"), [(600, "behind"), (-600, "ahead")])
def test_clock_skew_fails(home, provider_factory, issuer, offset, word):
    issuer.offset = offset  # the server's clock is off, so ours looks off the other way
    checks = run_checks(provider_factory("doc-skew", free_port(), issuer=issuer.url), home=home)
    clock = only(checks, "clock")
    assert clock.ok is False
    assert word in clock.summary
    assert "expired" in clock.summary and "NTP" in clock.fix
    seconds = int(clock.summary.split("your clock is ")[1].split(" s ")[0])
    assert 595 <= seconds <= 605


def test_small_clock_skew_is_ok(home, provider_factory, issuer):
    issuer.offset = 2
    checks = run_checks(provider_factory("doc-noskew", free_port(), issuer=issuer.url), home=home)
    clock = only(checks, "clock")
    assert clock.ok is True and clock.fix is None
    assert "clock within" in clock.summary


def test_clock_skew_parsing():
    now = 1_700_000_000.0
    assert doctor.clock_skew(formatdate(now - 90, usegmt=True), now) == pytest.approx(90)
    assert doctor.clock_skew("not a date", now) is None


def test_a_supplied_http_client_is_used_and_left_open(home, provider_factory, issuer):
    from oauth_core.http import HttpClient

    client = HttpClient()
    run_checks(provider_factory("doc-client", free_port(), issuer=issuer.url), home=home, http=client)
    assert client._session is not None  # ours to close, not the doctor's
    client.close()


# -- tls / proxy -------------------------------------------------------------------


def test_nothing_set_is_ok():
    check = doctor.check_tls()
    assert check.ok is True and check.fix is None


def test_missing_ca_bundle_fails(monkeypatch, tmp_path):
    missing = tmp_path / "corp-ca.pem"
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(missing))
    check = doctor.check_tls()
    assert check.ok is False
    assert str(missing) in check.summary and "REQUESTS_CA_BUNDLE" in check.fix


def test_existing_ca_bundle_is_reported(monkeypatch, tmp_path):
    bundle = tmp_path / "corp-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    check = doctor.check_tls()
    assert check.ok is True and f"REQUESTS_CA_BUNDLE={bundle}" in check.summary


def test_proxy_credentials_are_masked(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://alice:s3cr/et@proxy.example:8080")
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    check = doctor.check_tls()
    assert "HTTPS_PROXY=http://***@proxy.example:8080" in check.summary
    assert "NO_PROXY=localhost,127.0.0.1" in check.summary
    assert "s3cr" not in check.summary and "alice" not in check.summary


@pytest.mark.parametrize(("raw", "shown"), [
    ("http://proxy:3128", "http://proxy:3128"),
    ("http://u:p@proxy:3128", "http://***@proxy:3128"),
    ("u:p@w@proxy:3128", "***@proxy:3128"),
])
def test_mask_url(raw, shown):
    assert doctor.mask_url(raw) == shown


def test_network_failure_through_a_proxy_names_it_masked(home, provider_factory, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", f"http://alice:s3cret@127.0.0.1:{free_port()}")
    name = provider_factory("doc-proxy", free_port(), issuer="http://idp.example")
    checks = run_checks(name, home=home, timeout=2)
    check = only(checks, "network")
    assert check.ok is False
    assert "via proxy http://***@127.0.0.1:" in check.summary
    assert "s3cret" not in json.dumps([c.to_json() for c in checks])


# -- browser -----------------------------------------------------------------------


@pytest.fixture
def no_browser_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY", "SSH_CONNECTION", "SSH_TTY", "WSL_DISTRO_NAME"):
        monkeypatch.delenv(var, raising=False)
    from oauth_core import browser

    if browser.is_wsl() or sys.platform in ("darwin", "win32"):
        pytest.skip("needs a plain Linux host")


def test_browser_env_is_ok(monkeypatch):
    monkeypatch.setenv("BROWSER", "/usr/bin/firefox %s")
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")  # $BROWSER wins, as in login
    check = doctor.check_browser()
    assert check.ok is True and "firefox" in check.summary and check.fix is None


def test_ssh_without_display_is_a_warning(monkeypatch, no_browser_env):
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
    check = doctor.check_browser()
    assert check.ok is None
    assert "SSH" in check.summary and "--no-browser" in check.fix


def test_ssh_with_forwarded_display_is_not_the_ssh_warning(monkeypatch, no_browser_env):
    monkeypatch.setenv("SSH_TTY", "/dev/pts/3")
    monkeypatch.setenv("DISPLAY", "localhost:10.0")
    assert "SSH" not in doctor.check_browser().summary


def test_no_display_is_a_warning(no_browser_env):
    check = doctor.check_browser()
    assert check.ok is None and "no display" in check.summary and "--no-browser" in check.fix


def test_wsl_with_wslview_is_ok(monkeypatch, no_browser_env, tmp_path):
    wslview = tmp_path / "wslview"
    wslview.write_text("#!/bin/sh\nexit 0\n")
    wslview.chmod(0o700)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    check = doctor.check_browser()
    assert check.ok is True and "WSL" in check.summary and "wslview" in check.summary


def test_wsl_without_a_launcher_is_a_warning(monkeypatch, no_browser_env, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("WSL_DISTRO_NAME", "Ubuntu")
    check = doctor.check_browser()
    assert check.ok is None and "WSL" in check.summary and "wslu" in check.fix


# -- the whole report ---------------------------------------------------------------


def test_to_json_round_trip(home, provider_factory):
    checks = run_checks(provider_factory("doc-json", free_port()), home=home)
    assert {"home", "browser", "tls", "port", "clock"} <= {c.name for c in checks}
    for check in checks:
        data = json.loads(json.dumps(check.to_json()))
        assert set(data) == {"name", "ok", "status", "summary", "fix", "provider"}
        assert data["status"] == {True: "ok", False: "failed", None: "warning"}[check.ok]
        assert Check.from_json(data) == check


def test_doctor_imports_neither_click_nor_requests():
    code = "import sys, oauth_core.doctor; print(sorted(m for m in ('click', 'requests') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=Path(__file__).parent.parent)
    assert result.stdout.strip() == "[]"
