"""A real headless Chromium as ``$BROWSER``, for end-to-end login tests.

Where :mod:`oauth_core.testing.browser` follows redirects with ``requests``, this
module hands the sign-in URL to Debian's Chromium (``/usr/bin/chromium``), driven by
Playwright's Python package, so a login test meets everything a person's browser does:
favicon requests, preconnected and kept-alive sockets, cookies, HTML forms, the
identity provider's own pages. Playwright's own browser downloads are never used
(``playwright install`` is not needed and must not be run).

As ``$BROWSER``::

    BROWSER="python -m oauth_core.testing.chromium %s"

It opens the URL in a fresh profile and drives the pages until the loopback callback
page says "You're signed in", then exits 0. On the way it signs in on the development
login page of panva's ``oidc-provider`` (any login name works there) and accepts its
consent page; an identity provider that redirects straight to the callback (the fake
OpenAI IdP) needs nothing. Anything else (an error page, a callback page that says
something else, a timeout) is a failure: a screenshot is saved and it exits 1. It exits 2
when it cannot run at all (Playwright or Chromium missing, bad usage).

From Python, :func:`drive_oidc_login` does the same and returns a :class:`LoginOutcome`;
:func:`read_netlog` lists the requests Chromium made (from its own NetLog, which also
records the favicon requests Playwright does not see).

Environment knobs (all optional):

``OAUTH_HUB_TEST_SCREENSHOT_DIR=<dir>``
    where to save ``signed-in.png`` (success) or ``failure.png`` and ``failure.html``
    (failure), ``step-N-<login|consent|deny>.png`` (each IdP page before it was
    answered), ``result.json`` (the outcome: final URL without its query, page title
    and text, screenshot path, error) and ``netlog.json`` (Chromium's NetLog), each
    overwritten by the next run;
``OAUTH_HUB_TEST_BROWSER_LOG=<file>``
    append every main-frame URL requested (the opened one, then each redirect target),
    one per line, as :mod:`oauth_core.testing.browser` does;
``OAUTH_HUB_TEST_CHROMIUM=<path>``
    the Chromium executable (default ``/usr/bin/chromium``);
``OAUTH_HUB_TEST_OIDC_LOGIN=<name>``
    the login name typed into oidc-provider's login page (default ``alice``);
``OAUTH_HUB_TEST_OIDC_PASSWORD=<password>``
    the password typed with it (oidc-provider ignores it; a Django login checks it);
``OAUTH_HUB_TEST_OIDC_CONSENT=accept|deny``
    press "Continue" (default) or "[ Cancel ]" on oidc-provider's consent page;
``OAUTH_HUB_TEST_BROWSER_EXPECT=<text>``
    the text that marks success (default ``You're signed in``);
``OAUTH_HUB_TEST_CHROMIUM_TIMEOUT=<seconds>``
    give up after this long (default 60).

Nothing is printed on stdout: the login command that started this browser may be
writing JSON there. Diagnostics go to stderr, without query strings (they carry codes).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

__all__ = [
    "CHROMIUM_FLAGS",
    "DEFAULT_CHROMIUM",
    "ChromiumUnavailable",
    "LoginOutcome",
    "NetRequest",
    "browser_command",
    "check_available",
    "chromium_args",
    "drive_oidc_login",
    "main",
    "read_netlog",
    "read_result",
]

DEFAULT_CHROMIUM = "/usr/bin/chromium"
SUCCESS_TEXT = "You're signed in"

ENV_SCREENSHOT_DIR = "OAUTH_HUB_TEST_SCREENSHOT_DIR"
ENV_LOG = "OAUTH_HUB_TEST_BROWSER_LOG"
ENV_EXECUTABLE = "OAUTH_HUB_TEST_CHROMIUM"
ENV_LOGIN = "OAUTH_HUB_TEST_OIDC_LOGIN"
ENV_CONSENT = "OAUTH_HUB_TEST_OIDC_CONSENT"
ENV_PASSWORD = "OAUTH_HUB_TEST_OIDC_PASSWORD"
ENV_EXPECT = "OAUTH_HUB_TEST_BROWSER_EXPECT"
ENV_TIMEOUT = "OAUTH_HUB_TEST_CHROMIUM_TIMEOUT"

# The flags this machine needs (see the issue): no sandbox as root, no GPU, and none of
# Chromium's own background traffic, which a closed network refuses many times over.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Ours: a small /dev/shm (containers) must not crash the renderer; every page in
    # these tests is on loopback, so no proxy, and any other host name fails at once
    # instead of waiting on DNS (oidc-provider's pages @import a Google font; Chromium
    # still asks accounts.google.com and its updater now and then).
    "--disable-dev-shm-usage",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
_STALL = 15.0  # seconds on one unrecognised page before giving up on it


class ChromiumUnavailable(RuntimeError):
    """Playwright or Chromium is missing: the test machine is not set up."""


@dataclass
class LoginOutcome:
    """How a browser sign-in ended. URLs are kept without query and fragment."""

    ok: bool
    final_url: str = ""
    title: str = ""
    text: str = ""
    error: str = ""
    screenshot: str | None = None
    steps: list[str] = field(default_factory=list)  # "login", "consent", "callback", ...
    seconds: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def redact(url: str) -> str:
    """The URL without query or fragment, safe to print (queries carry codes and state)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def browser_command(python: str | None = None) -> str:
    """A ``$BROWSER`` value that runs this module with ``python`` (default: this interpreter)."""
    return f"{shlex.quote(python or sys.executable)} -m oauth_core.testing.chromium %s"


def chromium_args(netlog: str | os.PathLike[str] | None = None) -> list[str]:
    """The command-line flags Chromium is started with (plus a NetLog file if given)."""
    args = list(CHROMIUM_FLAGS)
    if netlog is not None:
        args.append(f"--log-net-log={os.fspath(netlog)}")
    return args


def _import_playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise ChromiumUnavailable(
            "Playwright's Python package is not installed: pip install -e '.[test]' (or pip install playwright). "
            "Do not run `playwright install`; the tests use Debian's Chromium."
        ) from exc
    return sync_playwright


def _check_executable(executable: str) -> None:
    if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
        raise ChromiumUnavailable(
            f"No Chromium at {executable}: run scripts/install-test-deps.sh (it runs apt-get install chromium), "
            f"or point {ENV_EXECUTABLE} at one."
        )


def check_available(executable: str | None = None) -> str:
    """The Chromium executable to use; raises :class:`ChromiumUnavailable` with the fix if it cannot run."""
    executable = executable or os.environ.get(ENV_EXECUTABLE) or DEFAULT_CHROMIUM
    _import_playwright()
    _check_executable(executable)
    return executable


def _callback_prefix(url: str) -> str | None:
    """The redirect URI the authorize URL names (scheme, host, port, path), if any."""
    values = parse_qs(urlsplit(url).query).get("redirect_uri")
    return redact(values[0]) if values else None


# The identity providers' own pages, recognised by their forms: panva's oidc-provider
# (dev login "login", consent "prompt=consent", device code entry and confirmation) and
# django-oauth-toolkit with Django's login form ("username"/"password", the
# "authorizationForm" consent, the device code and accept/deny pages), and FakeOIDC's
# device page.
_STATE_JS = """() => {
  const body = document.body;
  const form = (sel) => !!document.querySelector(sel);
  return {
    url: location.href,
    title: document.title,
    ready: document.readyState,
    text: body ? body.innerText : "",
    login: form('form input[name="login"]') ? "login" : form('form input[name="username"]') ? "username" : "",
    consent: form('form input[name="prompt"][value="consent"]') ? "oidc-provider"
      : form('form#authorizationForm input[name="allow"]') ? "dot"
      : form('form button[name="action"][value="accept"]') ? "dot-device" : "",
    user_code: form('form input[name="user_code"]:not([type="hidden"])'),
    device_confirm: form('form[id="op.deviceConfirmForm"]'),
    decision: form('form button[name="decision"][value="approve"]'),
  };
}"""

# What to press on each consent page: (accept, deny).
_CONSENT_BUTTONS = {
    "oidc-provider": ('form button[type="submit"]', 'a[href*="/abort"]'),
    "dot": ('form#authorizationForm input[name="allow"]',
            'form#authorizationForm input[type="submit"]:not([name="allow"])'),
    "dot-device": ('form button[name="action"][value="accept"]', 'form button[name="action"][value="deny"]'),
}


def drive_oidc_login(
    url: str,
    *,
    login: str = "alice",
    password: str = "any password",  # noqa: S107 (oidc-provider's dev login ignores it)
    consent: str = "accept",
    user_code: str | None = None,
    expect_text: str = SUCCESS_TEXT,
    callback_url: str | None = None,
    timeout: float = 60.0,
    screenshot_dir: str | os.PathLike[str] | None = None,
    netlog: str | os.PathLike[str] | None = None,
    navigation_log: str | os.PathLike[str] | None = None,
    executable: str | None = None,
    linger: float = 1.0,
) -> LoginOutcome:
    """Open ``url`` in a fresh headless Chromium and sign in until ``expect_text`` shows.

    Handles oidc-provider's development interactions: the login page (``login`` is
    typed as the account name; any name is an account there) and the consent page
    (``consent="accept"`` presses Continue, ``"deny"`` presses Cancel, which ends with
    ``error=access_denied`` at the callback). A provider that redirects straight to the
    callback needs no step. Success is the page at ``callback_url`` (by default the
    authorize URL's ``redirect_uri``, port included; any page when there is neither)
    containing ``expect_text``; a callback page without it is a failure at once, as is
    an unknown page that does not move for 15 seconds, or ``timeout``.

    After success the browser stays open ``linger`` seconds, as a person's would, so
    whatever it sends after the page (favicon requests where the page's CSP allows
    them, idle keep-alive and preconnected sockets) meets the callback server while
    the login finishes. With ``screenshot_dir`` the last page is saved there
    (``signed-in.png`` or ``failure.png`` with ``failure.html``). ``netlog`` names a file
    for Chromium's NetLog (see :func:`read_netlog`); ``navigation_log`` one that gets
    every main-frame URL requested, one per line.

    Never raises for a failed sign-in (``LoginOutcome.ok`` is False); raises
    :class:`ChromiumUnavailable` when Playwright or Chromium is missing.
    """
    executable = executable or os.environ.get(ENV_EXECUTABLE) or DEFAULT_CHROMIUM
    sync_playwright = _import_playwright()
    _check_executable(executable)
    if consent not in ("accept", "deny"):
        raise ValueError(f"consent must be 'accept' or 'deny', not {consent!r}")
    callback = redact(callback_url) if callback_url else _callback_prefix(url)
    shots = Path(screenshot_dir) if screenshot_dir is not None else None
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    outcome = LoginOutcome(ok=False)

    def log_navigation(request: Any) -> None:
        if navigation_log is not None and request.is_navigation_request() and request.frame.parent_frame is None:
            with open(navigation_log, "a", encoding="utf-8") as fh:
                fh.write(request.url + "\n")

    with tempfile.TemporaryDirectory(prefix="oauth-hub-chromium-") as profile, sync_playwright() as pw:
        try:
            context = pw.chromium.launch_persistent_context(
                profile,  # a fresh, empty profile every time: no cookies, no IdP session
                executable_path=executable,
                headless=True,
                args=chromium_args(netlog),
                viewport={"width": 900, "height": 700},
                timeout=30_000,
            )
        except Exception as exc:  # playwright's Error: the browser did not start
            raise ChromiumUnavailable(f"{executable} did not start: {_first_line(exc)}") from exc
        page = None
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.on("request", log_navigation)
            page.set_default_timeout(max(1_000, int(timeout * 1000)))
            _drive(page, url, outcome, login=login, password=password, consent=consent, user_code=user_code,
                   expect_text=expect_text, callback=callback, deadline=started + timeout, shots=shots)
            if outcome.ok and linger > 0:
                page.wait_for_timeout(linger * 1000)
        except Exception as exc:  # Playwright errors, timeouts: all mean "the sign-in did not finish"
            outcome.ok = False
            outcome.error = outcome.error or f"{type(exc).__name__}: {_first_line(exc)}"
        finally:
            if page is not None:
                _record_page(page, outcome)
                if shots is not None:
                    _save_screenshot(page, shots, outcome)
            context.close()  # also finishes the NetLog file
    outcome.seconds = round(time.monotonic() - started, 2)
    if shots is not None:
        (shots / "result.json").write_text(outcome.to_json(), encoding="utf-8")
    return outcome


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    # Playwright messages can quote the URL being loaded: keep queries out.
    return _scrub_urls(text[0] if text else "")


def _scrub_urls(text: str) -> str:
    words = []
    for word in text.split(" "):
        words.append(redact(word) if word.startswith(("http://", "https://")) else word)
    return " ".join(words)


def _page_state(page: Any) -> dict[str, Any] | None:
    """What the page shows now, or None while it is between documents."""
    try:
        return page.evaluate(_STATE_JS)
    except Exception:  # "Execution context was destroyed": a navigation is under way
        return None


def _drive(page: Any, url: str, outcome: LoginOutcome, *, login: str, password: str, consent: str,
           user_code: str | None, expect_text: str, callback: str | None, deadline: float,
           shots: Path | None) -> None:
    page.goto(url, wait_until="load")
    last_url, since = "", time.monotonic()
    while True:
        now = time.monotonic()
        if now > deadline:
            outcome.error = f"timed out before the page said {expect_text!r}"
            return
        state = _page_state(page)
        if state is None or state["ready"] != "complete":
            page.wait_for_timeout(100)
            continue
        here = redact(state["url"])
        if here != last_url:
            last_url, since = here, now
        if expect_text in state["text"] and (callback is None or here == callback):
            outcome.ok = True
            outcome.steps.append("callback" if callback is not None else "done")
            return
        if callback is not None and here == callback:
            outcome.steps.append("callback")
            outcome.error = f"the callback page does not say {expect_text!r}: {state['title'] or here}"
            return
        if state["login"]:
            outcome.steps.append("login")
            _step_screenshot(page, shots, outcome)
            field = f'input[name="{state["login"]}"]'
            page.fill(field, login)
            if page.locator('input[name="password"]').count():
                page.fill('input[name="password"]', password)
            with page.expect_navigation(wait_until="load"):
                page.click(f'form:has({field}) [type="submit"]')
            continue
        if state["consent"]:
            outcome.steps.append("consent" if consent == "accept" else "deny")
            _step_screenshot(page, shots, outcome)
            accept, deny = _CONSENT_BUTTONS[state["consent"]]
            with page.expect_navigation(wait_until="load"):
                page.click(accept if consent == "accept" else deny)
            continue
        if state["user_code"] and user_code is not None:
            # A device sign-in's verification page: type the code the terminal showed.
            outcome.steps.append("code")
            field = 'form input[name="user_code"]:not([type="hidden"])'
            page.fill(field, user_code)
            _step_screenshot(page, shots, outcome)
            with page.expect_navigation(wait_until="load"):
                if state["decision"]:  # FakeOIDC's page decides on the same form
                    page.click(f'form button[name="decision"][value="{"approve" if consent == "accept" else "deny"}"]')
                else:
                    page.press(field, "Enter")
            continue
        if state["device_confirm"]:
            outcome.steps.append("confirm" if consent == "accept" else "deny")
            _step_screenshot(page, shots, outcome)
            with page.expect_navigation(wait_until="load"):
                if consent == "accept":
                    page.click('button[type="submit"][form="op.deviceConfirmForm"]:not([name="abort"])')
                else:
                    page.click('button[name="abort"][form="op.deviceConfirmForm"]')
            continue
        if now - since > _STALL:
            outcome.error = f"stuck on {here}: {state['title']!r}: {' '.join(state['text'].split())[:200]!r}"
            return
        page.wait_for_timeout(200)


def _step_screenshot(page: Any, directory: Path | None, outcome: LoginOutcome) -> None:
    """``step-1-login.png`` etc.: what each page looked like before it was answered."""
    if directory is not None:
        try:
            page.screenshot(path=str(directory / f"step-{len(outcome.steps)}-{outcome.steps[-1]}.png"), timeout=10_000)
        except Exception as exc:  # a missing step picture is no reason to fail the sign-in
            print(f"chromium browser: no step screenshot: {type(exc).__name__}", file=sys.stderr)


def _record_page(page: Any, outcome: LoginOutcome) -> None:
    state = _page_state(page)
    if state is not None:
        outcome.final_url = redact(state["url"])
        outcome.title = state["title"]
        outcome.text = state["text"].strip()


def _save_screenshot(page: Any, directory: Path, outcome: LoginOutcome) -> None:
    name = "signed-in" if outcome.ok else "failure"
    try:
        path = directory / f"{name}.png"
        page.screenshot(path=str(path), full_page=True, timeout=10_000)
        outcome.screenshot = str(path)
        if not outcome.ok:
            (directory / "failure.html").write_text(page.content(), encoding="utf-8")
    except Exception as exc:  # a crashed page cannot be photographed; say so, keep the real error
        print(f"chromium browser: no screenshot: {type(exc).__name__}", file=sys.stderr)


def read_result(directory: str | os.PathLike[str]) -> LoginOutcome | None:
    """The outcome the last ``$BROWSER`` run wrote to ``result.json`` in ``directory``."""
    path = Path(directory) / "result.json"
    if not path.exists():
        return None
    return LoginOutcome(**json.loads(path.read_text(encoding="utf-8")))


# -- NetLog ------------------------------------------------------------------------------


@dataclass
class NetRequest:
    """One request Chromium's network stack made (favicon requests included)."""

    method: str
    url: str
    kind: str  # "main frame", "other", ...
    status: int | None = None  # None when no response arrived
    net_error: int | None = None  # e.g. -102 (connection refused), -105 (name not resolved)

    @property
    def path(self) -> str:
        return urlsplit(self.url).path


def _load_netlog(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # A browser that was killed leaves the events list open: close it.
        return json.loads(text.rstrip(",") + "]}")


def read_netlog(path: str | os.PathLike[str]) -> tuple[list[NetRequest], list[str]]:
    """The URL requests in a NetLog file and the URLs Chromium preconnected sockets to.

    Preconnects are the speculative, idle connections a callback server must not wait on.
    """
    data = _load_netlog(Path(path))
    constants = data.get("constants", {})
    names = {number: name for name, number in constants.get("logEventTypes", {}).items()}
    found: list[NetRequest] = []
    current: dict[int, NetRequest] = {}  # per request source: its latest hop (redirects start a new job)
    preconnects: list[str] = []
    for event in data.get("events", []):
        name = names.get(event.get("type"))
        params = event.get("params") or {}
        source = (event.get("source") or {}).get("id")
        if name == "URL_REQUEST_START_JOB" and "url" in params:
            current[source] = NetRequest(method=params.get("method", "GET"), url=params["url"],
                                         kind=params.get("request_type", ""))
            found.append(current[source])
        elif name == "HTTP_TRANSACTION_READ_RESPONSE_HEADERS" and source in current:
            line = (params.get("headers") or [""])[0]
            parts = line.split(" ")
            if len(parts) > 1 and parts[1].isdigit():
                current[source].status = int(parts[1])
        elif name == "REQUEST_ALIVE" and source in current and "net_error" in params:
            current[source].net_error = params["net_error"]
        elif name == "HTTP_STREAM_JOB_CONTROLLER" and params.get("is_preconnect") and "url" in params:
            preconnects.append(params["url"])
    return found, preconnects


# -- the $BROWSER entry point ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m oauth_core.testing.chromium URL``: 0 signed in, 1 failed, 2 cannot run."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m oauth_core.testing.chromium URL", file=sys.stderr)
        return 2
    env = os.environ
    try:
        timeout = float(env.get(ENV_TIMEOUT) or 60)
    except ValueError:
        print(f"chromium browser: bad {ENV_TIMEOUT} value", file=sys.stderr)
        return 2
    shots = env.get(ENV_SCREENSHOT_DIR) or None
    try:
        outcome = drive_oidc_login(
            args[0],
            login=env.get(ENV_LOGIN) or "alice",
            password=env.get(ENV_PASSWORD) or "any password",
            consent=env.get(ENV_CONSENT) or "accept",
            expect_text=env.get(ENV_EXPECT) or SUCCESS_TEXT,
            timeout=timeout,
            screenshot_dir=shots,
            netlog=os.path.join(shots, "netlog.json") if shots else None,
            navigation_log=env.get(ENV_LOG) or None,
        )
    except (ChromiumUnavailable, ValueError) as exc:
        print(f"chromium browser: {exc}", file=sys.stderr)
        return 2
    if not outcome.ok:
        where = f" (screenshot: {outcome.screenshot})" if outcome.screenshot else ""
        print(f"chromium browser: sign-in failed at {outcome.final_url or redact(args[0])}: {outcome.error}{where}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Whatever prints (Playwright included) must not land on the login command's stdout.
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.exit(main())
