"""``OAUTH_HUB_TRACE_PLUGINS=1``: a line on stderr for every hook call, never a secret.

Like Datasette's ``DATASETTE_TRACE_PLUGINS``: when a plugin misbehaves, the trace shows
which hooks the engine called, in which order, which plugin answered and what kind of
answer came back. Hook arguments and answers carry tokens, codes, verifiers and API
keys, so the trace shows their *shape* only: argument names, the keys of a dict, the
length of a list or string, and for an exception its type (plus the message of an
:class:`~oauth_core.errors.OAuthHubError`, which is written to be shown and is scrubbed).
Booleans, ``None`` and integers are shown as they are. Lines look like::

    oauth-hub trace: provider acme: refresh_tokens(settings, http, credentials)
        -> dict{access_token, expires_in, refresh_token}

(one line each in the real output).
"""

from __future__ import annotations

import os
import sys
from typing import Any

TRACE_ENV = "OAUTH_HUB_TRACE_PLUGINS"
PREFIX = "oauth-hub trace:"


def enabled() -> bool:
    return os.environ.get(TRACE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


def shape(value: Any) -> str:
    """What ``value`` is, without showing anything that could be a secret."""
    if value is None or isinstance(value, bool) or (isinstance(value, int) and abs(value) < 1 << 32):
        return repr(value)
    if isinstance(value, dict):
        return "dict{" + ", ".join(sorted(str(k) for k in value)) + "}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)}"
    if isinstance(value, str):
        return f"str ({len(value)} chars)"
    return type(value).__name__


def _write(line: str) -> None:
    try:
        sys.stderr.write(f"{PREFIX} {line}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed stderr must not break a hook call
        pass


def watch(pm: Any, kind: str, name: str) -> None:
    """Log every hook call of ``pm`` (one plugin ``name`` of ``kind``) when tracing is on."""
    if not enabled():
        return

    def before(hook_name: str, hook_impls: Any, kwargs: dict[str, Any]) -> None:
        pass

    def after(outcome: Any, hook_name: str, hook_impls: Any, kwargs: dict[str, Any]) -> None:
        call = f"{kind} {name}: {hook_name}({', '.join(kwargs)})"
        if not hook_impls:
            _write(f"{call} -> not implemented")
            return
        exc = getattr(outcome, "exception", None)
        if exc is not None:
            from .errors import OAuthHubError, scrub

            detail = f": {scrub(str(exc), 200)}" if isinstance(exc, OAuthHubError) else ""
            _write(f"{call} raised {type(exc).__name__}{detail}")
            return
        _write(f"{call} -> {shape(outcome.get_result())}")

    pm.add_hookcall_monitoring(before, after)
