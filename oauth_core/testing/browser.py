"""A scripted "browser" for end-to-end login tests.

Python's :mod:`webbrowser` runs ``$BROWSER`` with the URL as its argument and
waits for it to exit, so a login test can point ``$BROWSER`` at this module and
get the whole real round trip: authorize URL -> 302 from the fake issuer -> the
loopback callback of the code under test, just as a person's browser would do it.

Set ``$BROWSER`` to :func:`browser_command` (``<python> -m
oauth_core.testing.browser %s``): :mod:`webbrowser` shlex-splits a value that
contains ``%s``. A value without ``%s`` must name a single executable;
:func:`write_browser_script` writes one.

Environment knobs:

``OAUTH_HUB_TEST_BROWSER_LOG=<file>``
    append every URL navigated to (the opened one, then each redirect target),
    one per line, so a test can assert the authorize URL's parameters;
``OAUTH_HUB_TEST_BROWSER_PAGE=<file>``
    write the last page reached there: its HTTP status on the first line, then its
    text (tags stripped), so a test can check what the person was shown;
``OAUTH_HUB_TEST_BROWSER_DELAY=<seconds>``
    sleep before doing anything (a slow user);
``OAUTH_HUB_TEST_BROWSER_FAIL=1``
    exit 1 at once (a browser that cannot be opened).

Exit status is 0 whenever a page was reached, whatever its HTTP status (a real
browser shows an error page too), and 2 when a request could not be made at all.
Error messages never include query strings: they carry codes and state.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

__all__ = ["browser_command", "follow", "main", "write_browser_script"]

ENV_LOG = "OAUTH_HUB_TEST_BROWSER_LOG"
ENV_DELAY = "OAUTH_HUB_TEST_BROWSER_DELAY"
ENV_PAGE = "OAUTH_HUB_TEST_BROWSER_PAGE"
ENV_FAIL = "OAUTH_HUB_TEST_BROWSER_FAIL"

_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) oauth-hub-test-browser/1.0"
_TIMEOUT = 30.0
_MAX_REDIRECTS = 20


def _redact(url: str) -> str:
    """The URL without query or fragment, safe to print."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _log(url: str) -> None:
    path = os.environ.get(ENV_LOG)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(url + "\n")


def follow(url: str, *, timeout: float = _TIMEOUT) -> tuple[str, int, str]:
    """GET ``url`` following redirects like a browser; return (final_url, status, body).

    Also fetches ``/favicon.ico`` from the final host, as real browsers do: a
    callback server that treats any second request as a second callback, or
    that shuts down mid-response, is caught by this. Proxies from the
    environment are ignored because every hop is on loopback.
    Raises :class:`requests.RequestException` when a request cannot be made.
    """
    with requests.Session() as session:
        session.trust_env = False
        session.headers.update({"User-Agent": _USER_AGENT, "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
        # Redirects are followed by hand so each URL is logged *before* it is
        # requested: a test still sees the callback URL when the callback
        # server refused the connection.
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            _log(current)
            resp = session.get(current, allow_redirects=False, timeout=timeout)
            location = resp.headers.get("Location")
            if resp.status_code in (301, 302, 303, 307, 308) and location:
                resp.close()
                current = urljoin(current, location)
                continue
            break
        else:
            raise requests.TooManyRedirects(f"more than {_MAX_REDIRECTS} redirects")
        final = urlsplit(current)
        if final.scheme in ("http", "https"):
            favicon = urlunsplit((final.scheme, final.netloc, "/favicon.ico", "", ""))
            try:
                session.get(favicon, timeout=min(timeout, 5.0)).close()
            except requests.RequestException:
                pass  # the callback server may already be gone: not the page's failure
        return current, resp.status_code, resp.text


def browser_command(python: str | None = None) -> str:
    """A ``$BROWSER`` value that runs this module with ``python`` (default: this interpreter)."""
    return f"{shlex.quote(python or sys.executable)} -m oauth_core.testing.browser %s"


def write_browser_script(directory: str | os.PathLike[str], python: str | None = None) -> str:
    """Write an executable wrapper for ``$BROWSER`` into ``directory``; return its path.

    The wrapper runs this module with ``python`` (default: the running
    interpreter) and puts the project root on ``PYTHONPATH`` so it works from a
    source checkout as well as an installed package.
    """
    root = str(Path(__file__).resolve().parents[2])
    script = Path(directory) / "oauth-hub-test-browser"
    interpreter = shlex.quote(python or sys.executable)
    script.write_text(
        "#!/bin/sh\n"
        f'PYTHONPATH={shlex.quote(root)}"${{PYTHONPATH:+:$PYTHONPATH}}"\n'
        "export PYTHONPATH\n"
        f'exec {interpreter} -m oauth_core.testing.browser "$@"\n',
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(script)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: ``python -m oauth_core.testing.browser URL``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if os.environ.get(ENV_FAIL, "").strip() not in ("", "0"):
        print("test browser: configured to fail", file=sys.stderr)
        return 1
    if len(args) != 1:
        print("usage: python -m oauth_core.testing.browser URL", file=sys.stderr)
        return 2
    delay = os.environ.get(ENV_DELAY)
    if delay:
        try:
            time.sleep(max(0.0, float(delay)))
        except ValueError:
            print(f"test browser: bad {ENV_DELAY} value", file=sys.stderr)
            return 2
    url = args[0]
    try:
        _, status, body = follow(url)
    except requests.RequestException as exc:
        print(
            f"test browser: request to {_redact(url)} failed: {type(exc).__name__}",
            file=sys.stderr,
        )
        return 2
    page = os.environ.get(ENV_PAGE)
    if page:
        Path(page).write_text(f"{status}\n{page_text(body)}\n", encoding="utf-8")
    return 0


def page_text(body: str) -> str:
    """What a person reads on an HTML page: tags dropped, entities decoded, spaces collapsed."""
    import html
    import re

    body = re.sub(r"<(head|style|script)\b.*?</\1\s*>", " ", body, flags=re.DOTALL | re.IGNORECASE)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


if __name__ == "__main__":
    sys.exit(main())
