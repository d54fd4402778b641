"""Taking over the Codex CLI's sign-in (``oauth-hub import codex``).

The Codex CLI keeps its sign-in in ``$CODEX_HOME/auth.json`` (``~/.codex`` by default),
as its source's ``codex-rs/login/src/auth/storage.rs`` (``AuthDotJson``) and
``token_data.rs`` (``TokenData``) define it::

    {"auth_mode": "chatgpt", "OPENAI_API_KEY": null | "sk-…",
     "tokens": {"id_token": "<JWT>", "access_token": "<JWT>", "refresh_token": "rt_…", "account_id": "…"},
     "last_refresh": "2026-11-30T09:15:02.123456Z"}

``auth_mode`` is absent in files older versions wrote; ``tokens.id_token`` was once
written as an object of parsed claims instead of the JWT (the reader of every version
accepts both). A sign-in kept in the OS keyring (``cli_auth_credentials_store =
"keyring"``) has no file to read.

Refresh tokens rotate, and OpenAI ends the whole sign-in when a spent one is used again:
if the Codex CLI and oauth-hub both refreshed this sign-in, the second would end it
for both. So the import *takes it over*: once oauth-hub has stored it, the Codex CLI's
copy is deleted (without revoking it, which would end it too) and the person is told
to run ``codex login`` to give Codex a sign-in of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oauth_core.errors import OAuthHubError
from oauth_core.importing import read_vendor_json, vendor_file

SOURCE = "codex"


def auth_path(environ: dict[str, str]) -> Path:
    return vendor_file(environ, "CODEX_HOME", ".codex", "auth.json")


def _load(path: Path) -> dict[str, Any]:
    return read_vendor_json(
        path, not_ours="a Codex auth.json",
        missing=f"The Codex CLI has no sign-in in {path} (set CODEX_HOME if it keeps one elsewhere; a sign-in kept "
                "in the OS keyring cannot be imported: run `oauth-hub login chatgpt` instead).")


def read(path: Path) -> dict[str, Any]:
    """The token answer (and what else Codex stored) of the sign-in in ``path``."""
    data = _load(path)
    tokens = data.get("tokens")
    mode = data.get("auth_mode")
    if not isinstance(tokens, dict) or mode not in (None, "chatgpt"):
        what = "an API key only" if data.get("OPENAI_API_KEY") and not tokens else f"auth_mode {mode!r}"
        raise OAuthHubError(f"The Codex CLI is signed in with {what} in {path}, not a ChatGPT sign-in with a "
                            "refresh token; there is nothing to take over. Run `oauth-hub login chatgpt`.")
    access, refresh = tokens.get("access_token"), tokens.get("refresh_token")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise OAuthHubError(f"{path} holds no access and refresh token (the Codex sign-in has ended). "
                            "Run `oauth-hub login chatgpt`.")
    answer: dict[str, Any] = {"access_token": access, "refresh_token": refresh}
    id_token = tokens.get("id_token")
    if isinstance(id_token, dict):  # written by an older Codex: parsed claims; the JWT may be kept in raw_jwt
        id_token = id_token.get("raw_jwt")
    if isinstance(id_token, str) and id_token.count(".") == 2:
        answer["id_token"] = id_token
    found: dict[str, Any] = {"answer": answer}
    last = _iso_seconds(data.get("last_refresh"))
    if last is not None:
        found["last_refresh"] = last
    if isinstance(data.get("OPENAI_API_KEY"), str) and data["OPENAI_API_KEY"]:
        found["api_key"] = data["OPENAI_API_KEY"]
    return found


def _iso_seconds(value: Any) -> str | None:
    """Codex writes ``last_refresh`` as chrono does, often with nanoseconds
    (``2026-11-30T09:15:02.123456789Z``); keep it to the second, as oauth-hub stores it."""
    import re
    from datetime import UTC, datetime

    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)", value.strip())
    if not match:
        return None
    try:
        moment = datetime.fromisoformat(match.group(1) + match.group(2).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def release(path: Path, credentials: Any) -> str:
    """Delete Codex's copy if it still is the sign-in that was imported (never a newer one)."""
    try:
        current = read(path)
    except OAuthHubError:
        return f"{path} no longer holds the imported sign-in; it was left as it is."
    if current["answer"].get("refresh_token") != credentials.refresh_token:
        return f"{path} holds another sign-in now (Codex signed in again); it was left as it is."
    try:
        path.unlink()
    except OSError as exc:
        return (f"Could not delete {path} ({exc.strerror or exc}): delete it yourself before Codex runs again, "
                "or both will refresh one sign-in and end it.")
    return (f"Deleted {path}: the sign-in is oauth-hub's now (two programs refreshing one sign-in end it for "
            "both). Run `codex login` to give the Codex CLI a sign-in of its own.")
