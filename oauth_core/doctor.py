"""``oauth-hub doctor``: find what will break a login before a login breaks on it.

A browser login fails late and far from its cause: the callback port is held by a
stale process, there is no browser (SSH, WSL, a container), the home has the wrong
permissions, a proxy or TLS-intercepting CA blocks the identity provider, or the clock
is so far off that fresh tokens look expired. Each of those is one :class:`Check`
here, with one line saying what was found and one saying what to do.

The checks only look: no browser is opened, no file is changed (a temp file is created
and removed to prove the home is writable), and a bound port is released at once.
Nothing they report holds a secret: proxy credentials are masked and token files are
named, never read.

The engine stays free of the CLI framework (no click) and ``requests`` is imported
only when a network check runs, through :class:`~oauth_core.http.HttpClient`, so that
proxies and CA bundles are honoured exactly as a login would honour them.
"""

from __future__ import annotations

import errno
import os
import shlex
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import plugins
from .errors import ProviderNotFound, scrub
from .http import HttpClient
from .loopback import BIND_ADDRESS
from .portinfo import describe_holder
from .provider import Provider
from .store import HOME_ENV, Store, resolve_home

MAX_CLOCK_SKEW = 60.0  # seconds; beyond this, token "exp"/"iat"/"nbf" checks go wrong
CA_VARS = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")
# What webbrowser falls back to without a display: they cannot run a provider's sign-in page.
TEXT_BROWSERS = frozenset({"www-browser", "links", "elinks", "lynx", "w3m"})


@dataclass
class Check:
    """The result of one check.

    ``ok`` is three-valued because "cannot tell" and "will probably work, but" are
    common (no clock check without network; a fallback port in use) and must not be
    shown as failures. ``provider`` says which provider a per-provider check is about
    (``None`` for the machine-wide ones) so a UI can group them.
    """

    name: str  # short id: "provider", "port", "browser", "home", "network", "clock", "tls"
    ok: bool | None  # True passed, False failed, None warning / could not tell
    summary: str  # one line: what was found
    fix: str | None  # one line: what to do (None when ok)
    provider: str | None = None

    @property
    def status(self) -> str:
        """``"ok"``, ``"warning"`` or ``"failed"``, for printing and JSON."""
        return "ok" if self.ok else "failed" if self.ok is False else "warning"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "status": self.status,
            "summary": self.summary,
            "fix": self.fix,
            "provider": self.provider,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Check:
        return cls(name=data["name"], ok=data["ok"], summary=data["summary"], fix=data.get("fix"),
                   provider=data.get("provider"))


def check_storage(home: str | os.PathLike[str] | None = None) -> Check:
    """Where sign-ins are kept: the ``storage`` setting, the backend it uses here, and the records.

    With ``keyring`` (or ``auto`` finding one) it names the keyring backend in use (as
    ``keyring --list-backends`` would), and warns about records still in files or in
    the keyring while the setting says otherwise: the next refresh of each moves it, and
    ``oauth-hub config set storage …`` moves them all at once.
    """
    from . import keyring_storage
    from .tokens import storage_setting

    store = Store(home)
    setting = storage_setting(store)
    backend = ""
    try:
        where = keyring_storage.resolve(setting)
        if setting != "file":
            backend = f" ({keyring_storage.describe_backend()})"
    except keyring_storage.KeyringError as exc:
        return Check("storage", False, f"storage = {setting!r}, but {exc}",
                     "unlock or install a keyring backend, or run `oauth-hub config set storage file`")
    kinds: dict[str, list[str]] = {"file": [], "keyring": []}
    for name, account in store.records():
        from .errors import OAuthHubError
        from .store import read_json, record_name

        record = record_name(name, account)
        try:
            data = read_json(store.tokens_path(record))
        except OAuthHubError:
            continue
        kinds["keyring" if keyring_storage.is_stub(data) else "file"].append(record)
    summary = f"storage = {setting!r}: sign-ins are kept in the {'OS keyring' if where == 'keyring' else 'home'}" \
              f"{backend}"
    elsewhere = kinds["file" if where == "keyring" else "keyring"]
    if elsewhere:
        return Check("storage", None, f"{summary}; {', '.join(elsewhere)} still in the "
                     f"{'home' if where == 'keyring' else 'keyring'}",
                     f"run `oauth-hub config set storage {setting}` to move them now (a refresh moves each one)")
    return Check("storage", True, summary, None)


def run_checks(
    provider: str | None = None,
    *,
    home: str | os.PathLike[str] | None = None,
    http: HttpClient | None = None,
    timeout: float = 5.0,
) -> list[Check]:
    """Run every check and return the results in a stable order; never raises for a finding.

    ``provider``: check only this provider (else every installed one). ``home``: the
    oauth-hub home (else ``$OAUTH_HUB_HOME`` or the platform directory). ``http``: the
    client to use for the network checks (one is made and closed if not given).
    ``timeout``: seconds per network request, so a dead network costs seconds, not minutes.
    """
    checks: list[Check] = [_guard("home", check_home, home), _guard("storage", check_storage, home),
                           _guard("browser", check_browser), _guard("tls", check_tls)]
    names = [provider] if provider is not None else plugins.provider_names(home)
    if not names:
        checks.append(Check("provider", None, "no providers are installed",
                            "reinstall oauth-hub (its built-in providers register through entry points)"))
    store = Store(home)
    loaded: list[Provider] = []
    for name in names:
        try:
            loaded.append(Provider.load(name, store))
        except Exception as exc:  # a broken plugin or config is a finding, not a crash
            checks.append(_load_failure(name, exc))
    for item in loaded:
        checks.append(_guard("port", check_ports, item, provider=item.name))

    probes: list[_Probe] = []
    with_issuer = [item for item in loaded if item.settings.get("issuer")]
    if with_issuer:
        client = http or HttpClient()
        try:
            for item in with_issuer:
                check, probe = _check_network(item, client, timeout)
                if check.ok is False and provider is None and item.name not in _signed_in(store):
                    # Not asked about and not in use: an unreachable host is worth knowing, not a failure.
                    check = replace(check, ok=None, summary=f"{check.summary} (not signed in: not a failure)")
                checks.append(check)
                if probe is not None:
                    probes.append(probe)
        finally:
            if http is None:
                client.close()
    checks.append(_check_clock(probes, asked=bool(with_issuer)))
    return checks


def _signed_in(store: Store) -> set[str]:
    try:
        return set(store.signed_in_providers())
    except OSError:  # an unreadable home is the home check's finding
        return set()


def _guard(name: str, check: Callable[..., Check], *args: Any, provider: str | None = None) -> Check:
    """Run one check; an unexpected error becomes a failed check, so one surprise cannot hide the rest."""
    try:
        return check(*args)
    except Exception as exc:
        detail = scrub(f"{type(exc).__name__}: {exc}", 200)
        return Check(name, False, f"could not run this check ({detail})",
                     "fix the cause named, or report it to oauth-hub", provider=provider)


def _load_failure(name: str, exc: Exception) -> Check:
    message = scrub(str(exc) or type(exc).__name__, 300)
    if isinstance(exc, ProviderNotFound):
        fix = "run `oauth-hub providers` to see the installed providers"
    else:
        fix = "fix the cause named above, or uninstall that plugin; `oauth-hub providers` shows the error too"
    return Check("provider", False, f"{name}: cannot be loaded: {message}", fix, provider=name)


# -- port --------------------------------------------------------------------------


def port_problem(port: int) -> str | None:
    """Why ``port`` cannot be bound on the loopback address right now, or ``None`` if it can.

    SO_REUSEADDR matches the callback server: a TIME_WAIT socket left by the last login
    is no obstacle, a live listener is. On Windows that option would let the bind
    succeed over a live listener, so SO_EXCLUSIVEADDRUSE is used there instead.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if os.name == "nt":
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_EXCLUSIVEADDRUSE", socket.SO_REUSEADDR), 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((BIND_ADDRESS, port))
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)):
            return f"in use ({describe_holder(port) or 'holder unknown'})"
        if exc.errno == errno.EACCES:
            return "not allowed (permission denied)"
        return f"cannot be bound ({exc.strerror or exc})"
    finally:
        sock.close()
    return None


def check_ports(provider: Provider) -> Check:
    """Can the login's callback server listen? The redirect URI only allows these ports."""
    name = provider.name
    if not provider.has("build_auth_url") and provider.has("start_device_login"):
        return Check("port", True, f"{name}: signs in with a device code; no callback port needed", None,
                     provider=name)
    ports = provider.ports
    primary, fallbacks = ports[0], ports[1:]
    if primary == 0:  # the IdP takes any loopback port (RFC 8252 7.3): the OS picks a free one at login
        return Check("port", True, f"{name}: the callback takes any free port, chosen at login", None,
                     provider=name)
    problems = {port: port_problem(port) for port in ports}
    free = [port for port in ports if problems[port] is None]
    busy = "; ".join(f"port {port} {problems[port]}" for port in ports if problems[port] is not None)
    if problems[primary] is None:
        summary = f"{name}: callback port {primary} is free"
        if busy:
            summary += f" (fallback {busy})"
        elif fallbacks:
            summary += f", fallback {_join(fallbacks)} too"
        return Check("port", True, summary, None, provider=name)
    if free:
        return Check(
            "port", None,
            f"{name}: callback port {primary} {problems[primary]}; login will use fallback port {free[0]}",
            f"nothing needed; to use port {primary}, stop the program holding it",
            provider=name,
        )
    hint = f"oauth-hub login {name}"
    fix = "stop the program holding it"
    if provider.has("start_device_login"):
        fix += f", or use `{hint} --device`"
    if provider.settings.get("manual_redirect_uri"):  # not --no-browser: pasting needs the port too
        fix += f", or use `{hint} --manual`"
    label = "port" if len(ports) == 1 else "ports"
    return Check("port", False, f"{name}: no callback {label} free: {busy}", fix, provider=name)


def _join(items: list[int]) -> str:
    return ", ".join(str(item) for item in items)


# -- browser -----------------------------------------------------------------------


def check_browser() -> Check:
    """Will ``oauth-hub login`` open the sign-in page? Never opens anything.

    Uses the same rules as :func:`oauth_core.browser.open_in_browser`, so the answer
    predicts what the login will do rather than what a browser could do in theory.
    """
    from . import browser

    no_browser_fix = "use --no-browser and open the printed URL elsewhere, then paste the redirect URL back"
    browser_env = os.environ.get("BROWSER", "").strip()
    if browser_env:
        words = browser_env.split(os.pathsep)[0].split()
        program = Path(words[0]).name if words else browser_env
        return Check("browser", True, f"$BROWSER is set ({program}); login will use it", None)
    if browser.is_wsl():
        launcher = shutil.which("wslview") or shutil.which("powershell.exe")
        if launcher:
            return Check(
                "browser", True,
                f"WSL: login opens your Windows browser with {Path(launcher).name}; it reaches the callback "
                "through WSL's localhost forwarding",
                None,
            )
        return Check("browser", None, "WSL, but neither wslview nor powershell.exe is on PATH",
                     "install wslu (for wslview), or " + no_browser_fix)
    if browser.is_ssh():
        return Check(
            "browser", None,
            "SSH session without a display: login will not open a browser, and one on your own machine "
            "cannot reach this machine's 127.0.0.1 callback unless the port is forwarded",
            no_browser_fix + " (or forward the callback port: `ssh -L PORT:127.0.0.1:PORT`)",
        )
    if not browser.has_display():
        return Check("browser", None, "no display (DISPLAY/WAYLAND_DISPLAY unset): login will not open a browser",
                     no_browser_fix)
    import webbrowser

    try:
        found = webbrowser.get()
    except webbrowser.Error:
        return Check("browser", None, "a display but no browser Python can start",
                     "set BROWSER to your browser command, or " + no_browser_fix)
    found_name = str(getattr(found, "name", "") or type(found).__name__)
    if Path(found_name).name in TEXT_BROWSERS:
        return Check(
            "browser", None,
            f"only a text browser was found ({found_name}); provider sign-in pages need a graphical browser",
            "set BROWSER to a graphical browser, or " + no_browser_fix,
        )
    return Check("browser", True, f"browser available ({found_name})", None)


# -- home --------------------------------------------------------------------------


def check_home(home: str | os.PathLike[str] | None = None) -> Check:
    """The home must be writable and private (0700), and token files 0600: they hold live credentials."""
    path = resolve_home(home)
    if not path.exists():
        ancestor = next((parent for parent in path.parents if parent.exists()), None)
        if ancestor is None or not os.access(ancestor, os.W_OK | os.X_OK):
            return Check(
                "home", False, f"{path} does not exist and cannot be created ({ancestor} is not writable)",
                f"set {HOME_ENV} to a directory you can write to",
            )
        return Check("home", True, f"{path} does not exist yet; it will be created on first login", None)
    if not path.is_dir():
        return Check("home", False, f"{path} exists but is not a directory",
                     f"move it out of the way, or set {HOME_ENV} to a directory")

    problems: list[str] = []
    fixes: list[str] = []
    quoted = shlex.quote(str(path))
    try:
        fd, probe = tempfile.mkstemp(prefix=".doctor-", suffix=".tmp", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        problems.append(f"not writable ({exc.strerror or exc})")
        fixes.append(f"`chmod u+rwx {quoted}` (or set {HOME_ENV} to a writable directory)")

    facts = [str(path)]
    token_files = sorted(path.glob("*_oauth.json"))
    if os.name == "posix":
        mode = stat.S_IMODE(path.stat().st_mode)
        facts.append(f"mode {mode:o}")
        if mode & 0o077:
            problems.append(f"mode {mode:o} lets other users in (should be 700)")
            fixes.append(f"`chmod 700 {quoted}`")
        loose = []
        for file in token_files:
            try:
                file_mode = stat.S_IMODE(file.stat().st_mode)
            except OSError:
                continue
            if file_mode != 0o600:
                loose.append(file)
                problems.append(f"{file.name} has mode {file_mode:o} (should be 600)")
        if loose:
            fixes.append("`chmod 600 " + " ".join(shlex.quote(str(file)) for file in loose) + "`")
    if problems:
        return Check("home", False, f"{path}: " + "; ".join(problems), " and ".join(fixes))
    plural = "" if len(token_files) == 1 else "s"
    facts.append(f"writable, {len(token_files)} token file{plural}" + (" all 600" if token_files else ""))
    return Check("home", True, ", ".join(facts), None)


# -- tls / proxy -------------------------------------------------------------------


def mask_url(value: str) -> str:
    """``value`` with any ``user:password@`` replaced by ``***@``.

    Everything up to the *last* ``@`` is masked, so a password holding ``/`` or ``@``
    cannot leak half-parsed.
    """
    if "@" not in value:
        return value
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    masked = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{masked}" if sep else masked


def network_environment() -> list[str]:
    """``NAME=value`` for every proxy and CA variable set, proxy credentials masked."""
    found = []
    for var in (*PROXY_VARS, *NO_PROXY_VARS, *CA_VARS):
        value = os.environ.get(var)
        if value is None:
            continue
        shown = mask_url(value) if var in PROXY_VARS else value
        found.append(f"{var}={shown}" if value else f"{var} (empty)")
    return found


def check_tls() -> Check:
    """Proxies and CA bundles decide whether the IdP is reachable; a CA path that is gone breaks every request."""
    found = network_environment()
    if not found:
        return Check("tls", True, "no proxy or CA bundle variables set; requests uses its own CA bundle", None)
    missing = [var for var in CA_VARS if os.environ.get(var) and not os.path.exists(os.environ[var])]
    if missing:
        return Check(
            "tls", False,
            "; ".join(f"{var} points at a missing file ({os.environ[var]})" for var in missing),
            " and ".join(f"point {var} at an existing PEM bundle, or unset it" for var in missing),
        )
    summary = ", ".join(found)
    requests_ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if os.environ.get("SSL_CERT_FILE") and not requests_ca:
        return Check(
            "tls", None, summary + "; requests ignores SSL_CERT_FILE",
            "if a proxy re-signs HTTPS, also set REQUESTS_CA_BUNDLE=$SSL_CERT_FILE",
        )
    return Check("tls", True, summary, None)


# -- network and clock ---------------------------------------------------------------


@dataclass
class _Probe:
    """A server's answer kept for the clock check: its ``Date`` and our time when it came."""

    host: str
    date: str | None
    local_time: float


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def _proxy_for(url: str) -> str:
    """How ``requests`` will route ``url``: through which (masked) proxy, and with which CA bundle."""
    import requests.utils

    parts = []
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    parts.append(f"via proxy {mask_url(proxy)}" if proxy else "no proxy")
    ca = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    parts.append(f"CA bundle {ca}" if ca else "default CA bundle")
    return ", ".join(parts)


def _check_network(provider: Provider, http: HttpClient, timeout: float) -> tuple[Check, _Probe | None]:
    """Any HTTP answer from the issuer proves DNS, proxy and TLS work; its status does not matter here."""
    import requests

    from .http import _describe_network_error

    name = provider.name
    url = discovery_url(str(provider.settings["issuer"]))
    host = urlsplit(url).netloc.rsplit("@", 1)[-1] or url
    started_wall, started = time.time(), time.monotonic()
    try:
        response = http.session.get(url, timeout=timeout, allow_redirects=False)
    except requests.exceptions.RequestException as exc:
        kind = _describe_network_error(exc)
        route = _proxy_for(url)
        if isinstance(exc, requests.exceptions.SSLError):
            fix = "if a proxy or antivirus re-signs HTTPS, set REQUESTS_CA_BUNDLE to its CA bundle (PEM)"
        elif isinstance(exc, requests.exceptions.ProxyError):
            fix = "check the proxy variables (host, port, credentials) or unset them"
        else:
            fix = (f"check your network, VPN or firewall and the issuer setting; behind a proxy set HTTPS_PROXY "
                   f"(`oauth-hub config get {name}.issuer` shows the issuer)")
        return Check("network", False, f"{name}: cannot reach {host}: {kind} ({route})", fix, provider=name), None
    elapsed = time.monotonic() - started
    response.close()
    check = Check("network", True, f"{name}: {host} reachable (HTTP {response.status_code} in {elapsed * 1000:.0f} ms)",
                  None, provider=name)
    # The server stamps Date while answering: halfway through the round trip is our best guess.
    return check, _Probe(host, response.headers.get("Date"), started_wall + elapsed / 2)


def clock_skew(date_header: str, local_time: float) -> float | None:
    """``local_time`` minus the time in an HTTP ``Date`` header, in seconds; ``None`` if unparsable."""
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        return None
    if server.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means a malformed header
        return None
    return local_time - server.timestamp()


def _check_clock(probes: list[_Probe], *, asked: bool) -> Check:
    """Tokens carry absolute times (exp, iat): a skewed clock makes good tokens look expired or not yet valid."""
    if not probes:
        reason = "no provider's issuer was reachable" if asked else "no loaded provider has an issuer to ask"
        return Check("clock", None, f"could not check the clock: {reason}", "fix the network check first"
                     if asked else None)
    for probe in probes:
        if probe.date is None:
            continue
        skew = clock_skew(probe.date, probe.local_time)
        if skew is None:
            continue
        if abs(skew) > MAX_CLOCK_SKEW:
            direction = "ahead of" if skew > 0 else "behind"
            return Check(
                "clock", False,
                f"your clock is {abs(skew):.0f} s {direction} {probe.host}; tokens will look expired or not yet valid",
                "enable NTP (automatic time sync), e.g. `sudo timedatectl set-ntp true`, and check the time zone",
            )
        return Check("clock", True, f"clock within {abs(skew):.0f} s of {probe.host}", None)
    return Check("clock", None, "could not check the clock: the servers sent no usable Date header", None)
