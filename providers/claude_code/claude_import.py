"""Taking over Claude Code's sign-in (``oauth-hub import claude-code``).

Claude Code (2.1.332, read from its npm package's strings) keeps a Claude.ai sign-in in
``.credentials.json`` in its config directory (``$CLAUDE_CONFIG_DIR``, by default
``~/.claude``) on Linux and Windows, under ``claudeAiOauth``::

    {"claudeAiOauth": {"accessToken": "sk-ant-oat01-…", "refreshToken": "sk-ant-ort01-…",
                       "expiresAt": 1767225600000, "scopes": ["user:inference", …],
                       "subscriptionType": "max", "rateLimitTier": "…", "clientId": "…",
                       "accountUuid": "…", "organizationUuid": "…", …},
     "mcpOAuth": {…}, …}

``expiresAt`` is in milliseconds; an ended sign-in has an empty ``refreshToken``. On
macOS it is in the Keychain instead (no file to read). Other keys of the file (MCP
servers' tokens and so on) belong to Claude Code and are kept.

Claude rotates refresh tokens too, so the import *takes the sign-in over*: once
oauth-hub has stored it, ``claudeAiOauth`` is removed from the file (nothing revoked;
the file is rewritten atomically, private, with everything else in it) and the person is
told to run ``claude`` and sign in again for a sign-in of Claude Code's own.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from oauth_core.errors import OAuthHubError
from oauth_core.importing import read_vendor_json, vendor_file

SOURCE = "claude-code"
KEY = "claudeAiOauth"


def credentials_path(environ: dict[str, str]) -> Path:
    return vendor_file(environ, "CLAUDE_CONFIG_DIR", ".claude", ".credentials.json")


def _load(path: Path) -> dict[str, Any]:
    return read_vendor_json(
        path, not_ours="Claude Code's credentials file",
        missing=f"Claude Code has no sign-in in {path} (set CLAUDE_CONFIG_DIR if it keeps one elsewhere; on macOS "
                "it is in the Keychain and cannot be imported: run `oauth-hub login claude_code` instead).")


def read(path: Path) -> dict[str, Any]:
    data = _load(path)
    oauth = data.get(KEY)
    if not isinstance(oauth, dict):
        raise OAuthHubError(f"{path} holds no Claude.ai sign-in ({KEY}); Claude Code may use an API key. "
                            "Run `oauth-hub login claude_code`.")
    access, refresh = oauth.get("accessToken"), oauth.get("refreshToken")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise OAuthHubError(f"The Claude Code sign-in in {path} has ended (no refresh token). "
                            "Run `oauth-hub login claude_code`.")
    answer: dict[str, Any] = {"access_token": access, "refresh_token": refresh}
    scopes = oauth.get("scopes")
    if isinstance(scopes, list) and all(isinstance(s, str) for s in scopes):
        answer["scope"] = " ".join(scopes)
    found: dict[str, Any] = {"answer": answer}
    expires = oauth.get("expiresAt")
    if isinstance(expires, (int, float)) and not isinstance(expires, bool) and expires > 0:
        found["expires_at"] = expires / 1000.0
    if isinstance(oauth.get("accountUuid"), str):
        found.setdefault("account", {})["account_id"] = oauth["accountUuid"]
    if isinstance(oauth.get("organizationUuid"), str):
        found.setdefault("account", {})["organization_id"] = oauth["organizationUuid"]
    return found


def release(path: Path, credentials: Any) -> str:
    """Take ``claudeAiOauth`` out of the file if it is still the imported sign-in; keep the rest."""
    try:
        data = _load(path)
    except OAuthHubError:
        return f"{path} could not be read again; it was left as it is."
    oauth = data.get(KEY)
    if not isinstance(oauth, dict) or oauth.get("refreshToken") != credentials.refresh_token:
        return f"{path} holds another sign-in now (Claude Code signed in again); it was left as it is."
    rest = {k: v for k, v in data.items() if k != KEY}
    try:
        if rest:
            fd, tmp = tempfile.mkstemp(prefix=".credentials.", suffix=".tmp", dir=path.parent)  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(rest, handle, indent=2)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        else:
            path.unlink()
    except OSError as exc:
        return (f"Could not update {path} ({exc.strerror or exc}): remove its {KEY} yourself before Claude Code "
                "runs again, or both will refresh one sign-in and end it.")
    return (f"Took the sign-in out of {path}: it is oauth-hub's now (two programs refreshing one sign-in end it "
            "for both). Run `claude` and sign in to give Claude Code a sign-in of its own.")
