"""Reading a callback that the person pastes instead of the browser delivering it.

Over SSH, in a container or on another machine, the browser's redirect to
``http://127.0.0.1:1455/...`` lands nowhere (or on the wrong machine). The address bar
then shows the full redirect URL; pasting it into the terminal completes the same login.
Accepted forms:

- the whole redirect URL: ``http://127.0.0.1:1455/auth/callback?code=…&state=…``
- its query string, with or without the leading ``?``: ``code=…&state=…``
- ``code#state``, the form some providers display for manual copying

The parameters are then judged exactly like an HTTP callback (the ``state`` must match).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from .loopback import CallbackServer, Verdict, first_values

MAX_PASTE = 16 * 1024


class PasteError(ValueError):
    """The text is none of the accepted forms."""


def parse_pasted(text: str) -> dict[str, str]:
    """The callback parameters in ``text``; :class:`PasteError` when there are none."""
    text = text.strip().strip("'\"<>").strip()
    if not text:
        raise PasteError("empty")
    if len(text) > MAX_PASTE:
        raise PasteError("too long to be a redirect URL")
    if "://" in text:
        parts = urlsplit(text)
        params = first_values(parts.query)
        if not params and parts.fragment:
            params = first_values(parts.fragment)
    elif "=" in text:
        params = first_values(text.lstrip("?"))
    elif "#" in text:
        code, _, state = text.partition("#")
        params = {"code": code, "state": state}
    else:
        raise PasteError("not a URL, a query string or code#state")
    if not params.get("code") and not params.get("error"):
        raise PasteError("it carries no authorization code")
    return params


def read_pastes(
    lines: Iterable[str], server: CallbackServer, report: Callable[[bool, str], None]
) -> threading.Thread:
    """Feed pasted lines to ``server`` from a daemon thread until one is accepted.

    ``report(accepted, message)`` tells the UI how each paste was judged. The thread
    ends at end of input, on acceptance, or when the login finishes by other means.
    """

    def run() -> None:
        for line in lines:
            if server.finished:
                return
            if not line.strip():
                continue
            try:
                params = parse_pasted(line)
            except PasteError as exc:
                report(False, f"That is not a redirect URL ({exc}). Paste the whole address the browser ended on.")
                continue
            verdict: Verdict = server.submit(params)
            if verdict.status == 409:
                return
            report(verdict.accepted, "Got it." if verdict.accepted else f"{verdict.title}. {verdict.message}")
            if server.finished:
                return

    thread = threading.Thread(target=run, name="oauth-hub-paste", daemon=True)
    thread.start()
    return thread
